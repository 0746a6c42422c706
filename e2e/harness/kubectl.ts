// Runs the real kubectl and helm (from scripts/kube-tools.sh) against a kubeconfig and returns what
// they printed, so e2e scenarios drive the cluster exactly as an administrator would.
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { GatehouseError } from '../../api/errors.js';

const execFileAsync = promisify(execFile);

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface KubeToolOptions {
  readonly kubeconfigPath: string;
  /** Text fed to stdin (for `apply -f -`). */
  readonly stdin?: string;
  readonly timeoutMs?: number;
  readonly cwd?: string;
  /** Added to (and overriding) the minimal environment, e.g. a private HOME for kubectl's and helm's caches. */
  readonly env?: Readonly<Record<string, string>>;
}

const toolFolders = new Map<string, Promise<string>>();

/** The folder holding kubectl and helm, put there once per checkout by scripts/kube-tools.sh. */
export function kubeToolsFolder(repoRoot: string): Promise<string> {
  let folder = toolFolders.get(repoRoot);
  if (!folder) {
    folder = execFileAsync('bash', [path.join(repoRoot, 'scripts/kube-tools.sh')], { cwd: repoRoot })
      .then(({ stdout }) => stdout.trim().split('\n').pop() ?? '')
      .catch((error: unknown) => {
        toolFolders.delete(repoRoot);
        throw new GatehouseError('GH_ERR_E2E_KUBE_TOOLS', { detail: error instanceof Error ? error.message : String(error) }, { cause: error });
      });
    toolFolders.set(repoRoot, folder);
  }
  return folder;
}

/** Runs a binary to completion; a non-zero exit is a result, not an exception, so tests can assert on it. */
export function runTool(binary: string, args: readonly string[], options: KubeToolOptions): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [...args], {
      cwd: options.cwd,
      // Only what the tools need: the scenario's kubeconfig, never the developer's own cluster.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, KUBECONFIG: options.kubeconfigPath, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8'); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${options.timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 60_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new GatehouseError('GH_ERR_E2E_KUBE_TOOLS', { detail: `${binary}: ${error.message}` }, { cause: error }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, exitCode: code ?? (signal ? 128 : 1) });
    });
    child.stdin.end(options.stdin ?? '');
  });
}

export interface Kubectl {
  /** Runs `kubectl ARGS`; never throws for a non-zero exit. */
  (args: readonly string[], options?: { stdin?: string; timeoutMs?: number }): Promise<CommandResult>;
  /** Runs `kubectl ARGS -o json` and parses stdout; throws GH_ERR_E2E_KUBECTL_FAILED on a non-zero exit. */
  json<T = unknown>(args: readonly string[]): Promise<T>;
  /** Runs `helm ARGS` with the same kubeconfig. */
  helm(args: readonly string[], options?: { stdin?: string; timeoutMs?: number }): Promise<CommandResult>;
  readonly kubeconfigPath: string;
}

export async function kubectlFor(repoRoot: string, kubeconfigPath: string): Promise<Kubectl> {
  const folder = await kubeToolsFolder(repoRoot);
  const run = (binary: string) => (args: readonly string[], options: { stdin?: string; timeoutMs?: number } = {}) =>
    runTool(path.join(folder, binary), args, { kubeconfigPath, cwd: repoRoot, ...options });
  const kubectl = run('kubectl');
  return Object.assign(kubectl, {
    kubeconfigPath,
    helm: run('helm'),
    json: async <T>(args: readonly string[]): Promise<T> => {
      const result = await kubectl([...args, '-o', 'json']);
      if (result.exitCode !== 0) throw kubectlFailed(args, result);
      return JSON.parse(result.stdout) as T;
    },
  });
}

export function kubectlFailed(args: readonly string[], result: CommandResult): GatehouseError {
  return new GatehouseError('GH_ERR_E2E_KUBECTL_FAILED', { args: args.join(' '), exitCode: result.exitCode, stderr: result.stderr.trim() || '(no stderr)' });
}
