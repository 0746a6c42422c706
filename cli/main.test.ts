// The command table: each entry's words name the command it loads, and running a command loads
// only that command's module graph (the sidecar process never loads the operator's Kubernetes client).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { COMMAND_ENTRIES, helpText, loadCommands } from './main.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('the command table', () => {
  it('names every command by the words of the command it loads', async () => {
    const commands = await loadCommands();
    expect(commands.map((command) => command.path)).toEqual(COMMAND_ENTRIES.map((entry) => entry.path));
    expect(new Set(COMMAND_ENTRIES.map((entry) => entry.path.join(' '))).size).toBe(COMMAND_ENTRIES.length);
  });

  it('lists every command in the help', async () => {
    const help = await helpText();
    for (const command of await loadCommands()) expect(help).toContain(command.usage);
  });

  it('loads only the command that runs', () => {
    const log = path.join(mkdtempSync(path.join(os.tmpdir(), 'gatehouse-imports-')), 'imports.log');
    const run = (args: string[]) => {
      writeFileSync(log, '');
      const result = spawnSync('node', ['--import', 'tsx', '--import', './cli/testdata/register-import-log.mjs', 'cli/main.ts', ...args], {
        cwd: repoRoot, encoding: 'utf8', env: { ...process.env, GATEHOUSE_IMPORT_LOG: log },
      });
      expect(result.status).toBe(0);
      return readFileSync(log, 'utf8');
    };
    const kubernetesClient = /@kubernetes\/client-node/;
    // The hook sees imports at all: the operator's help loads its Kubernetes client, the sidecar's does not.
    expect(run(['operator', '--help'])).toMatch(kubernetesClient);
    expect(run(['sidecar', '--help'])).not.toMatch(kubernetesClient);
    rmSync(path.dirname(log), { recursive: true, force: true });
  });
});
