// Test fixture: a real PostgreSQL with a small payments schema, and a Sidecar in this process in
// front of it, configured from manifests like a user's config folder. Tests talk to it with real
// clients (psql, node-postgres, pgbench).
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { silentLogger, type Logger } from '../../../api/logging/logger.js';
import { loadConfigFromTexts } from '../../../api/manifests/config.js';
import { SqlClassifier, loadSqlParser } from '../../../api/sql/classify.js';
import { buildSnapshotFromConfig, type SidecarSnapshot } from '../../../api/snapshot/sidecar-snapshot.js';
import { startPostgres, type PostgresServer } from '../../../testing/postgres-server.js';
import { createSidecarMetrics, type SidecarMetrics } from '../../metrics/sidecar-metrics.js';
import { FileSessionRecorder } from '../../recording/session-recorder.js';
import { Sidecar, type SidecarOptions } from '../../sidecar.js';

const run = promisify(execFile);

export const PAYMENTS_SCHEMA = `
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text NOT NULL, card_number text, notes text);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers(id), total numeric(10,2) NOT NULL, created_at timestamptz DEFAULT now());
INSERT INTO customers (name, email, card_number, notes) VALUES
  ('Ada Lovelace', 'ada@example.com', '4111 1111 1111 1111', 'prefers email'),
  ('Alan Turing', 'alan@example.org', '5500-0000-0000-0004', 'paid with card 4012888888881881 last time'),
  ('Grace Hopper', 'grace@example.net', NULL, NULL);
INSERT INTO orders (customer_id, total) SELECT 1 + (i % 3), i * 1.5 FROM generate_series(1, 50) AS i;
`;

export function manifests(server: PostgresServer, user: { user: string; password: string }, policyRules: string, extra = ''): string {
  return `
apiVersion: gatehouse.dev/v1alpha1
kind: NonHumanIdentity
metadata: {name: app}
spec: {serviceAccountName: app, groups: [apps]}
---
apiVersion: gatehouse.dev/v1alpha1
kind: ProtectedResource
metadata: {name: db}
spec:
  protocol: postgres
  address: 127.0.0.1:${server.port}
  database: app
  tls: {mode: disable}
  credentials: {strategy: static, secretRef: {name: db-login}}
  sidecar: {port: 15432}
---
apiVersion: v1
kind: Secret
metadata: {name: db-login}
stringData: {username: ${user.user}, password: '${user.password}'}
---
apiVersion: gatehouse.dev/v1alpha1
kind: AccessPolicy
metadata: {name: app-policy}
spec:
  subjects: [{identity: app}]
  resources: [db]
${policyRules}
${extra}`;
}

export interface SidecarFixture {
  readonly server: PostgresServer;
  readonly sidecar: Sidecar;
  readonly metrics: SidecarMetrics;
  readonly port: number;
  readonly recordings: string;
  /** Re-applies a new set of manifests (a policy edit). */
  reload(text: string): Promise<void>;
  psql(sql: string, options?: { extraArgs?: string[] }): Promise<{ stdout: string; stderr: string; code: number }>;
  stop(): Promise<void>;
}

export function snapshotFrom(text: string): SidecarSnapshot {
  const config = loadConfigFromTexts([{ file: 'test.yaml', text }]);
  if (config.problems.length > 0) throw new Error(JSON.stringify(config.problems, null, 2));
  return buildSnapshotFromConfig(config, 'app');
}

export async function startSidecarFixture(options: {
  policyRules: string;
  extra?: string;
  server?: PostgresServer;
  logger?: Logger;
  sidecar?: Partial<SidecarOptions>;
}): Promise<SidecarFixture> {
  await loadSqlParser();
  const server = options.server ?? (await startPostgres());
  if (!options.server) {
    await server.psql(`CREATE ROLE app_owner LOGIN PASSWORD 'owner-secret'; GRANT ALL ON SCHEMA public TO app_owner`);
    await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(server.port), '-U', server.admin.user, '-d', 'app', '-c',
      `GRANT ALL ON SCHEMA public TO app_owner; SET ROLE app_owner; ${PAYMENTS_SCHEMA}`], { env: { ...process.env, PGPASSWORD: server.admin.password } });
  }
  const recordings = await mkdtemp(join(tmpdir(), 'gh-recordings-'));
  const metrics = createSidecarMetrics({ defaultMetrics: false });
  const sidecar = new Sidecar({
    logger: options.logger ?? silentLogger(),
    metrics,
    classifier: new SqlClassifier(),
    recorder: new FileSessionRecorder(recordings),
    hashKey: Buffer.from('test-hash-key-0123456789abcdef'),
    portFor: () => 0,
    ...options.sidecar,
  });
  const login = { user: 'app_owner', password: 'owner-secret' };
  await sidecar.apply(snapshotFrom(manifests(server, login, options.policyRules, options.extra)));
  const port = sidecar.portOf('db')!;
  return {
    server,
    sidecar,
    metrics,
    port,
    recordings,
    async reload(text) {
      await sidecar.apply(snapshotFrom(manifests(server, login, text)));
    },
    async psql(sql, psqlOptions = {}) {
      try {
        const { stdout, stderr } = await run('psql', ['-X', '-q', '-t', '-A', '-h', '127.0.0.1', '-p', String(port), '-U', 'whoever', '-d', 'whatever',
          ...(psqlOptions.extraArgs ?? []), '-c', sql], { env: { ...process.env, PGPASSWORD: 'app-does-not-know-it', PGCONNECT_TIMEOUT: '5' } });
        return { stdout: stdout.trim(), stderr: stderr.trim(), code: 0 };
      } catch (error) {
        const failure = error as { stdout?: string; stderr?: string; code?: number };
        return { stdout: (failure.stdout ?? '').trim(), stderr: (failure.stderr ?? '').trim(), code: failure.code ?? 1 };
      }
    },
    async stop() {
      await sidecar.stop(1000);
      if (!options.server) await server.stop();
      await rm(recordings, { recursive: true, force: true });
    },
  };
}
