// Shared set-up for the in-process `gatehouse operator` CLI tests: a loopback API server, a working
// folder holding its kubeconfig and the test TLS files, and the flags every run starts from.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { silentLogger } from '../../../api/logging/logger.js';
import { startLoopbackApiServer, type LoopbackApiServer } from '../../../e2e/apiserver/loopback-api-server.js';
import { TEST_TLS } from '../../../operator/control-plane/testing/discovery-fixture.js';
import { createKubeClient, loadKubeConfig, type KubeClient } from '../../../operator/kube/kube-client.js';
import { createKubeMetrics } from '../../../operator/kube/kube-metrics.js';

/** How long an operator may take to print `ready`: it connects, syncs its caches and elects itself. */
export const OPERATOR_START_MS = 20_000;

/** Every port on 0 and the kubeconfig in the working folder, so runs never collide. */
export const OPERATOR_ARGS: readonly string[] = ['operator', '--kubeconfig', 'kubeconfig', '--host', '127.0.0.1', '--control-plane-port', '0', '--webhook-port', '0', '--admin-port', '0', '--log-level', 'silent'];
/** The serving certificate files that `startOperatorCliFolder` writes. */
export const OPERATOR_TLS_ARGS: readonly string[] = ['--tls-cert-file', 'tls.crt', '--tls-key-file', 'tls.key', '--tls-ca-file', 'ca.crt'];

export interface OperatorCliFolder {
  readonly apiServer: LoopbackApiServer;
  /** The working folder the CLI runs in (its cwd). */
  readonly dir: string;
  /** A client of the loopback API server, as the operator sees it. */
  kubeClient(): KubeClient;
  close(): Promise<void>;
}

/** Starts a loopback API server and writes its kubeconfig and the test TLS files into a fresh folder. */
export async function startOperatorCliFolder(prefix: string): Promise<OperatorCliFolder> {
  const apiServer = await startLoopbackApiServer({ crdDir: 'crds', logger: silentLogger() });
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await apiServer.writeKubeconfig(join(dir, 'kubeconfig'));
  await writeFile(join(dir, 'tls.crt'), TEST_TLS.certPem);
  await writeFile(join(dir, 'tls.key'), TEST_TLS.keyPem);
  await writeFile(join(dir, 'ca.crt'), TEST_TLS.caPem);
  return {
    apiServer,
    dir,
    kubeClient: () => createKubeClient({ kubeConfig: loadKubeConfig({ kubeconfigPath: join(dir, 'kubeconfig') }), metrics: createKubeMetrics(new Registry()) }),
    close: async () => {
      await apiServer.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
