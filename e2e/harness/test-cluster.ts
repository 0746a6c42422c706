// Starts what an e2e scenario runs against: the loopback API server with the CRDs from crds/, a
// kubeconfig for it in a temp folder, and the real kubectl/helm bound to that kubeconfig.
// With KUBECONFIG set it targets that cluster instead (no loopback server is started).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startLoopbackApiServer, type LoopbackApiServer } from '../apiserver/loopback-api-server.js';
import type { Logger } from '../../api/logging/logger.js';
import { kubectlFor, type Kubectl } from './kubectl.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface TestClusterOptions {
  readonly repoRoot?: string;
  /** CRDs registered at start; `crds/` of the checkout by default, null for none. */
  readonly crdDir?: string | null;
  /** Use this kubeconfig (a real cluster) instead of starting the loopback API server. */
  readonly externalKubeconfig?: string;
  readonly logger?: Logger;
}

export interface TestCluster {
  /** The loopback API server; undefined when running against an external cluster. */
  readonly apiServer: LoopbackApiServer | undefined;
  readonly kubeconfigPath: string;
  readonly kubectl: Kubectl;
  /** A temp folder for the scenario's files, removed by close(). */
  readonly workDir: string;
  /** A kubeconfig authenticating with `token` instead of the admin token (loopback only). */
  writeKubeconfig(name: string, options: { token: string; namespace?: string }): Promise<string>;
  close(): Promise<void>;
}

export async function startTestCluster(options: TestClusterOptions = {}): Promise<TestCluster> {
  const repoRoot = options.repoRoot ?? REPO_ROOT;
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-e2e-'));
  try {
    let apiServer: LoopbackApiServer | undefined;
    let kubeconfigPath: string;
    if (options.externalKubeconfig) {
      kubeconfigPath = options.externalKubeconfig;
    } else {
      const crdDir = options.crdDir === undefined ? path.join(repoRoot, 'crds') : options.crdDir ?? undefined;
      apiServer = await startLoopbackApiServer({ crdDir, logger: options.logger });
      kubeconfigPath = path.join(workDir, 'kubeconfig');
      await apiServer.writeKubeconfig(kubeconfigPath);
    }
    const kubectl = await kubectlFor(repoRoot, kubeconfigPath);
    const server = apiServer;
    return {
      apiServer, kubeconfigPath, kubectl, workDir,
      async writeKubeconfig(name, kubeconfigOptions) {
        if (!server) throw new Error('writeKubeconfig needs the loopback API server; against a real cluster use its own kubeconfig');
        const file = path.join(workDir, name);
        await server.writeKubeconfig(file, kubeconfigOptions);
        return file;
      },
      async close() {
        await server?.close();
        await rm(workDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(workDir, { recursive: true, force: true });
    throw error;
  }
}
