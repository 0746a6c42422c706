// The Gatehouse sidecar as a benchmark target, as it runs in a pod: `gatehouse sidecar` (the built
// CLI) as a child process, so its RSS is its own, fed its policy snapshot over TLS by a real
// discovery server that runs in the harness process and keeps the uploaded session recordings (the
// operator's part, not measured). Guardrails on: every statement classified and decided, the wide
// table's sensitive columns masked, sessions recorded.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { GatehouseError } from '../../../api/errors.js';
import { silentLogger } from '../../../api/logging/logger.js';
import { loadConfigFromTexts } from '../../../api/manifests/config.js';
import { loadDiscoveryProto } from '../../../api/proto/discovery-proto.js';
import { toResourceSets } from '../../../api/proto/snapshot-resources.js';
import { generateCheckpointSigner } from '../../../api/recordings/checkpoint.js';
import { buildSnapshotFromConfig } from '../../../api/snapshot/sidecar-snapshot.js';
import { createControlPlaneMetrics } from '../../../operator/control-plane/control-plane-metrics.js';
import { SnapshotCache } from '../../../operator/control-plane/snapshot-cache.js';
import type { NodeAuthenticator } from '../../../operator/control-plane/node-stream.js';
import { startDiscoveryServer } from '../../../operator/control-plane/stream-server.js';
import { startRecordingService } from '../../../operator/recordings/recording-service.js';
import { freePort } from '../../../testing/postgres-server.js';
import { BenchError } from '../bench-errors.js';
import { waitForListening } from '../child-processes.js';
import { WIDE_TABLE } from '../wide-table.js';
import { spawnNode, type BenchTarget, type TargetContext, type Upstream } from './target.js';

const CLI = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));
/** The operator's test serving certificate (for 127.0.0.1) and its CA: good enough for loopback. */
const TLS_DIR = fileURLToPath(new URL('../../../operator/control-plane/testdata/', import.meta.url));
const NODE_ID = 'bench/bench-pod';
const TOKEN = 'bench-token';

export function sidecarManifests(upstream: Upstream, port: number): string {
  return `apiVersion: gatehouse.dev/v1alpha1
kind: NonHumanIdentity
metadata: {name: bench}
spec: {serviceAccountName: bench}
---
apiVersion: gatehouse.dev/v1alpha1
kind: ProtectedResource
metadata: {name: bench-db}
spec:
  protocol: postgres
  address: ${upstream.host}:${upstream.port}
  database: ${upstream.database}
  tls: {mode: disable}
  credentials: {strategy: static, secretRef: {name: bench-login}}
  sidecar: {port: ${port}}
---
apiVersion: v1
kind: Secret
metadata: {name: bench-login}
stringData: {username: ${JSON.stringify(upstream.user)}, password: ${JSON.stringify(upstream.password)}}
---
apiVersion: gatehouse.dev/v1alpha1
kind: AccessPolicy
metadata: {name: bench-read-only}
spec:
  subjects: [{identity: bench}]
  resources: [bench-db]
  rules:
    - {name: read, effect: allow, operations: [read, transaction, session]}
    - {name: no-changes, effect: deny, operations: [write, delete, truncate, ddl, dcl, admin, call]}
  masking:
    - columns: [${WIDE_TABLE.maskedColumns.map((column) => `${WIDE_TABLE.name}.${column}`).join(', ')}]
      strategy: redact
`;
}

const AUTHENTICATOR: NodeAuthenticator = {
  authenticate: async (token) => (token === TOKEN ? { nodeId: NODE_ID } : new GatehouseError('GH_ERR_TOKEN_EXPIRED', { detail: 'not the bench token' })),
};

/**
 * A discovery server on 127.0.0.1 that serves the bench identity's snapshot to the one node that
 * shows TOKEN and stores its session recordings under `dir`; resolves with its port and how to stop it.
 */
async function startControlPlane(upstream: Upstream, port: number, dir: string): Promise<{ port: number; close(): Promise<void> }> {
  const config = loadConfigFromTexts([{ file: 'bench.yaml', text: sidecarManifests(upstream, port) }]);
  if (config.problems.length > 0) throw new BenchError('GH_BENCH_TARGET_UNAVAILABLE', { target: 'sidecar', detail: JSON.stringify(config.problems) });
  const cache = new SnapshotCache();
  cache.setSnapshot(NODE_ID, toResourceSets(buildSnapshotFromConfig(config, 'bench')));
  const registry = new Registry();
  const recordings = await startRecordingService({
    dir: join(dir, 'recordings'), signer: await generateCheckpointSigner(), registry, logger: silentLogger(), authenticator: AUTHENTICATOR,
  });
  const server = await startDiscoveryServer({
    proto: loadDiscoveryProto(),
    watcher: cache,
    authenticator: AUTHENTICATOR,
    metrics: createControlPlaneMetrics({ registry, status: cache }),
    logger: silentLogger(),
    transport: { kind: 'tls', keyPem: await readFile(join(TLS_DIR, 'server.key')), certPem: await readFile(join(TLS_DIR, 'server.crt')) },
    host: '127.0.0.1',
    port: 0,
    extraHandlers: { ReportEvents: recordings.reportEvents },
  });
  return {
    port: server.port,
    async close() {
      await server.close(0);
      await recordings.close();
    },
  };
}

/** @param nodeOptions flags for the node process, as the sidecar's container would pass them */
export function sidecarTarget(context: TargetContext, nodeOptions: readonly string[] = []): BenchTarget {
  return {
    name: 'sidecar',
    async start(upstream) {
      if (!existsSync(CLI)) {
        throw new BenchError('GH_BENCH_TARGET_UNAVAILABLE', { target: 'sidecar', detail: 'dist/cli/main.js is missing; run `npm run build`' });
      }
      const dir = join(context.workDir, 'sidecar');
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'token'), TOKEN);
      const port = await freePort();
      const controlPlane = await startControlPlane(upstream, port, dir);
      const proc = spawnNode(context, 'sidecar', [
        ...nodeOptions, CLI, 'sidecar', '--control-plane', `127.0.0.1:${controlPlane.port}`, '--ca-file', join(TLS_DIR, 'ca.crt'),
        '--token-file', join(dir, 'token'), '--node-id', NODE_ID, '--admin-host', '127.0.0.1', '--admin-port', '0',
        '--recording-spool', join(dir, 'spool'), '--log-level', 'warn',
      ]);
      const stop = async (): Promise<void> => {
        await proc.stop();
        await controlPlane.close();
      };
      try {
        await waitForListening(proc, '127.0.0.1', port, context.startTimeoutMs);
      } catch (error) {
        await stop();
        throw error;
      }
      return { host: '127.0.0.1', port, pid: proc.pid, stop };
    },
  };
}
