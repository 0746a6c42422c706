import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OPERATOR_IMAGE_NODE_OPTIONS } from './webhook-cluster.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('the benchmark\'s operator process', () => {
  it('runs with the node flags of the operator image', async () => {
    const dockerfile = await readFile(path.join(repoRoot, 'images/operator.Dockerfile'), 'utf8');
    const flags = /^ENV .*\bNODE_OPTIONS=("[^"]*"|\S+)/m.exec(dockerfile)?.[1]?.replace(/"/g, '');
    expect(flags?.split(/\s+/)).toEqual([...OPERATOR_IMAGE_NODE_OPTIONS]);
  });
});
