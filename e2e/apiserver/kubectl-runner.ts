// Runs the real kubectl and helm (from scripts/kube-tools.sh) against a loopback API server, for tests:
// a private kubeconfig and HOME in a temporary folder, stdout/stderr and the exit code returned, never
// thrown. The processes are run by the e2e harness's runTool, the one way this repo runs kubectl.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { kubeToolsFolder, runTool } from '../harness/kubectl.js';
import type { LoopbackApiServer } from './loopback-api-server.js';

export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface KubeTools {
  kubectl(args: readonly string[], input?: string): Promise<CommandResult>;
  helm(args: readonly string[]): Promise<CommandResult>;
  /** Helm 3 (the chart must work with both majors). */
  helm3(args: readonly string[]): Promise<CommandResult>;
  readonly kubeconfig: string;
  cleanup(): Promise<void>;
}

export async function kubeTools(server: LoopbackApiServer, options: { token?: string; namespace?: string } = {}): Promise<KubeTools> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-kubectl-'));
  const kubeconfigPath = join(dir, 'kubeconfig');
  await server.writeKubeconfig(kubeconfigPath, options);
  const bin = await kubeToolsFolder(REPO_ROOT);
  // HOME in the temp folder keeps kubectl's discovery cache and helm's state out of the user's home.
  const env = { HOME: dir, HELM_CACHE_HOME: join(dir, 'helm-cache'), HELM_CONFIG_HOME: join(dir, 'helm-config'), HELM_DATA_HOME: join(dir, 'helm-data') };
  const run = async (binary: string, args: readonly string[], input?: string): Promise<CommandResult> => {
    const result = await runTool(join(bin, binary), args, { kubeconfigPath, cwd: REPO_ROOT, env, ...(input !== undefined ? { stdin: input } : {}) });
    return { code: result.exitCode, stdout: result.stdout, stderr: result.stderr };
  };
  return {
    kubeconfig: kubeconfigPath,
    kubectl: (args, input) => run('kubectl', args, input),
    helm: (args) => run('helm', args),
    helm3: (args) => run('helm3', args),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
