// The Gatehouse sidecar as a benchmark target: `gatehouse dev` (the built CLI) as a child process,
// so its RSS is its own, with guardrails on: every statement classified and decided, the wide
// table's sensitive columns masked, sessions recorded.
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../../testing/postgres-server.js';
import { BenchError } from '../bench-errors.js';
import { waitForListening } from '../child-processes.js';
import { WIDE_TABLE } from '../wide-table.js';
import type { BenchTarget, TargetContext, Upstream } from './target.js';

const CLI = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));

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

/** @param nodeOptions flags for the node process, as the sidecar's container would pass them */
export function sidecarTarget(context: TargetContext, nodeOptions: readonly string[] = []): BenchTarget {
  return {
    name: 'sidecar',
    async start(upstream) {
      if (!existsSync(CLI)) {
        throw new BenchError('GH_BENCH_TARGET_UNAVAILABLE', { target: 'sidecar', detail: 'dist/cli/main.js is missing; run `npm run build`' });
      }
      const dir = join(context.workDir, 'sidecar');
      await mkdir(join(dir, 'config'), { recursive: true });
      const port = await freePort();
      await writeFile(join(dir, 'config', 'bench.yaml'), sidecarManifests(upstream, port));
      const proc = context.processes.spawn('sidecar', process.execPath, [
        ...nodeOptions, CLI, 'dev', '--config', join(dir, 'config'), '--identity', 'bench',
        '--admin-port', '0', '--recordings', join(dir, 'recordings'), '--log-level', 'warn',
      ]);
      try {
        await waitForListening(proc, '127.0.0.1', port);
      } catch (error) {
        await proc.stop();
        throw error;
      }
      return { host: '127.0.0.1', port, pid: proc.pid, stop: () => proc.stop() };
    },
  };
}
