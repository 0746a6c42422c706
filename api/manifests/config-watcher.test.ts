import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GatehouseConfig } from './config.js';
import { watchConfigDir } from './config-watcher.js';

describe('watchConfigDir', () => {
  test('reloads once edits settle and reports the new content', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gh-watch-'));
    await cp(join(process.cwd(), 'config/samples'), dir, { recursive: true });
    const configs: GatehouseConfig[] = [];
    const watcher = watchConfigDir({ dir, debounceMs: 50, onConfig: (config) => configs.push(config), onError: (error) => { throw error; } });
    try {
      const file = join(dir, 'policies/ci-read-only.yaml');
      const text = await readFile(file, 'utf8');
      await writeFile(file, text.replace('credentialTTL: 10m', 'credentialTTL: 5m'));
      const deadline = Date.now() + 3000;
      while (configs.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      const policy = configs.at(-1)?.policies.find((candidate) => candidate.metadata.name === 'ci-read-only');
      expect(policy?.spec.credentialTTL).toBe('5m');
    } finally {
      watcher.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
