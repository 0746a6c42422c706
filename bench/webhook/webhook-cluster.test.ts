import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OPERATOR_IMAGE_NODE_OPTIONS, parseGcLine } from './webhook-cluster.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('the benchmark\'s operator process', () => {
  it('runs with the node flags of the operator image', async () => {
    const dockerfile = await readFile(path.join(repoRoot, 'images/operator.Dockerfile'), 'utf8');
    const flags = /^ENV .*\bNODE_OPTIONS=("[^"]*"|\S+)/m.exec(dockerfile)?.[1]?.replace(/"/g, '');
    expect(flags?.split(/\s+/)).toEqual([...OPERATOR_IMAGE_NODE_OPTIONS]);
  });

  it('gc-observer.mjs reports the collections of a process it is loaded into, as lines parseGcLine reads', async () => {
    const observer = path.join(repoRoot, 'bench/webhook/gc-observer.mjs');
    // Enough short-lived garbage for several scavenges, and a pause before exit so the observer's entries are delivered.
    const script = 'let keep = []; for (let i = 0; i < 3e5; i++) { keep.push({ i, s: String(i) }); if (keep.length > 1000) keep = []; } setTimeout(() => console.log("done"), 50);';
    const started = Date.now();
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--max-semi-space-size=1', '--import', observer, '-e', script], (error, out) => (error ? reject(error) : resolve(out)));
    });
    const lines = stdout.trim().split('\n');
    const pauses = lines.map(parseGcLine).filter((pause) => pause !== undefined);
    expect(lines).toContain('done');
    expect(pauses.length).toBeGreaterThan(0);
    expect(pauses.length).toBe(lines.length - 1);
    for (const pause of pauses) {
      expect(pause.startMs).toBeGreaterThanOrEqual(started - 1_000);
      expect(pause.startMs).toBeLessThanOrEqual(Date.now());
      expect(pause.durationMs).toBeGreaterThanOrEqual(0);
    }
    expect(pauses.some((pause) => pause.kind === 1)).toBe(true);
    expect(parseGcLine('{"level":30,"msg":"operator ready"}')).toBeUndefined();
    expect(parseGcLine('gatehouse-bench-gc x 1.0 1')).toBeUndefined();
  });
});
