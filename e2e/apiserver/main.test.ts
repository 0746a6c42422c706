// The runnable entry: starts, writes a kubeconfig kubectl can use, prints `ready <url>`, exits 0 on SIGTERM.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { REPO_ROOT } from './kubectl-runner.js';

const run = promisify(execFile);

it('serves until SIGTERM with the CRDs loaded', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-main-'));
  const kubeconfig = join(dir, 'kubeconfig');
  const child = spawn(process.execPath, ['--import', 'tsx', 'e2e/apiserver/main.ts', '--crds', 'crds', '--kubeconfig', kubeconfig], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /^ready (https:\/\/127\.0\.0\.1:\d+)$/m.exec(out);
        if (match !== null) resolve(match[1]);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const bin = (await run('bash', [join(REPO_ROOT, 'scripts', 'kube-tools.sh')])).stdout.trim();
    const { stdout } = await run(join(bin, 'kubectl'), ['--kubeconfig', kubeconfig, 'get', 'crds', '-o', 'name'], { env: { PATH: process.env.PATH, HOME: dir } });
    expect(stdout).toContain('customresourcedefinition.apiextensions.k8s.io/accesspolicies.gatehouse.dev');
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const exit = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await expect(exit).resolves.toBe(0);
  } finally {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
});
