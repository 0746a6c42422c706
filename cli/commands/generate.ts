// `gatehouse generate crds [--out DIR] [--check]`: writes crds/ from api/kinds/kinds.ts, or checks it is current.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { renderCrdFiles } from '../../api/kinds/crd.js';
import type { CliCommand } from '../io.js';

export const generateCommand: CliCommand = {
  path: ['generate', 'crds'],
  summary: 'write the CustomResourceDefinitions in crds/ from the API source of truth',
  usage: 'gatehouse generate crds [--out DIR] [--check]',
  async run(args, io) {
    const { values } = parseArgs({
      args,
      options: { out: { type: 'string', default: 'crds' }, check: { type: 'boolean', default: false } },
    });
    const dir = resolve(io.cwd, values.out!);
    let stale = 0;
    if (!values.check) await mkdir(dir, { recursive: true });
    for (const [name, content] of renderCrdFiles()) {
      const file = join(dir, name);
      const current = await readFile(file, 'utf8').catch(() => undefined);
      if (current === content) continue;
      if (values.check) {
        stale++;
        io.stderr(`${file} is out of date; run \`npm run generate\`\n`);
      } else {
        await writeFile(file, content);
        io.stdout(`wrote ${file}\n`);
      }
    }
    return stale === 0 ? 0 : 1;
  },
};
