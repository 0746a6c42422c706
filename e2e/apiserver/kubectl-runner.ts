// Runs the real kubectl and helm (from scripts/kube-tools.sh) against a loopback API server, for tests:
// a private kubeconfig in a temporary folder, stdout/stderr and the exit code returned, never thrown.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { LoopbackApiServer } from './loopback-api-server.js';

const run = promisify(execFile);
export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface KubeTools {
  kubectl(args: readonly string[], input?: string): Promise<CommandResult>;
  helm(args: readonly string[]): Promise<CommandResult>;
  readonly kubeconfig: string;
  cleanup(): Promise<void>;
}

let toolsDir: Promise<string> | undefined;

function kubeToolsDir(): Promise<string> {
  toolsDir ??= run('bash', [join(REPO_ROOT, 'scripts', 'kube-tools.sh')]).then(({ stdout }) => stdout.trim());
  return toolsDir;
}

async function exec(binary: string, args: readonly string[], env: NodeJS.ProcessEnv, input?: string): Promise<CommandResult> {
  return new Promise((resolvePromise) => {
    const child = execFile(binary, [...args], { cwd: REPO_ROOT, env, maxBuffer: 16 * 1024 * 1024, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1;
      resolvePromise({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

export async function kubeTools(server: LoopbackApiServer, options: { token?: string; namespace?: string } = {}): Promise<KubeTools> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-kubectl-'));
  const kubeconfig = join(dir, 'kubeconfig');
  await server.writeKubeconfig(kubeconfig, options);
  const bin = await kubeToolsDir();
  // HOME in the temp folder keeps kubectl's discovery cache and helm's state out of the user's home.
  const env = { PATH: process.env.PATH, HOME: dir, KUBECONFIG: kubeconfig, HELM_CACHE_HOME: join(dir, 'helm-cache'), HELM_CONFIG_HOME: join(dir, 'helm-config'), HELM_DATA_HOME: join(dir, 'helm-data') };
  return {
    kubeconfig,
    kubectl: (args, input) => exec(join(bin, 'kubectl'), args, env, input),
    helm: (args) => exec(join(bin, 'helm'), args, env),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
