// Test fixture: a real PostgreSQL with a small payments schema, and a Sidecar in this process in
// front of it, configured from manifests like a user's config folder. Tests talk to it with real
// clients (psql, node-postgres, pgbench).
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { silentLogger, type Logger } from '../../../api/logging/logger.js';
import { loadConfigFromTexts } from '../../../api/manifests/config.js';
import { SqlClassifier, loadSqlParser } from '../../../api/sql/classify.js';
import { buildSnapshotFromConfig, type SidecarSnapshot } from '../../../api/snapshot/sidecar-snapshot.js';
import { startPostgres, type PostgresServer, type PostgresServerOptions, type PostgresUser } from '../../../testing/postgres-server.js';
import { createSidecarMetrics, type SidecarMetrics } from '../../metrics/sidecar-metrics.js';
import { FileSessionRecorder } from '../../recording/session-recorder.js';
import { Sidecar, type SidecarOptions } from '../../sidecar.js';
import { eventually as pollUntil } from '../../../testing/async-checks.js';

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

/** The login the fixture creates (SCRAM-SHA-256, owner of the payments tables). */
export const APP_OWNER: PostgresUser = { user: 'app_owner', password: 'owner-secret' };

/** What the ProtectedResource says about TLS; `caPem` becomes a CA Secret the resource references. */
export interface ResourceTlsSettings {
  readonly mode: 'disable' | 'prefer' | 'require' | 'verify-full';
  readonly caPem?: string;
  readonly serverName?: string;
}

function indent(text: string, spaces: number): string {
  return text.split('\n').map((line) => `${' '.repeat(spaces)}${line}`).join('\n');
}

function tlsManifest(tls: ResourceTlsSettings): { spec: string; secret: string } {
  const ca = tls.caPem ? ', caSecretRef: {name: db-ca}' : '';
  const serverName = tls.serverName ? `, serverName: ${tls.serverName}` : '';
  const secret = tls.caPem
    ? `---\napiVersion: v1\nkind: Secret\nmetadata: {name: db-ca}\nstringData:\n  ca.crt: |\n${indent(tls.caPem.trim(), 4)}\n`
    : '';
  return { spec: `{mode: ${tls.mode}${ca}${serverName}}`, secret };
}

export function manifests(
  server: PostgresServer,
  user: PostgresUser,
  policyRules: string,
  extra = '',
  tls: ResourceTlsSettings = { mode: 'disable' },
): string {
  const tlsParts = tlsManifest(tls);
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
  tls: ${tlsParts.spec}
  credentials: {strategy: static, secretRef: {name: db-login}}
  sidecar: {port: 15432}
---
apiVersion: v1
kind: Secret
metadata: {name: db-login}
stringData: {username: ${user.user}, password: '${user.password}'}
${tlsParts.secret}---
apiVersion: gatehouse.dev/v1alpha1
kind: AccessPolicy
metadata: {name: app-policy}
spec:
  subjects: [{identity: app}]
  resources: [db]
${policyRules}
${extra}`;
}

export interface ProcessResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

export interface PsqlOptions {
  readonly extraArgs?: readonly string[];
  /** Fed to psql's standard input (COPY ... FROM STDIN). */
  readonly input?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** One recorded event: a JSON line of a session recording. */
export type RecordedEvent = Record<string, unknown> & { readonly type: string };

export interface SidecarFixture {
  readonly server: PostgresServer;
  readonly sidecar: Sidecar;
  readonly metrics: SidecarMetrics;
  readonly port: number;
  readonly recordings: string;
  /** Re-applies the manifests with new policy rules (a policy edit); login and TLS stay. */
  reload(policyRules: string, extra?: string): Promise<void>;
  /** psql through the sidecar, as an app that knows neither the real user nor the password. */
  psql(sql: string, options?: PsqlOptions): Promise<ProcessResult>;
  /** psql as the server's superuser straight to the app database, bypassing the sidecar. */
  adminPsql(sql: string): Promise<string>;
  /** A node-postgres client connected through the sidecar (the caller ends it). */
  pgClient(config?: pg.ClientConfig): Promise<pg.Client>;
  /** Runs `use` with a node-postgres client through the sidecar and ends the client however `use` ends. */
  withClient<T>(use: (client: pg.Client) => Promise<T>, config?: pg.ClientConfig): Promise<T>;
  /** Every session recording so far, by session id, each as its events in order. */
  recordedSessions(): Promise<Map<string, RecordedEvent[]>>;
  stop(): Promise<void>;
}

export function snapshotFrom(text: string): SidecarSnapshot {
  const config = loadConfigFromTexts([{ file: 'test.yaml', text }]);
  if (config.problems.length > 0) throw new Error(JSON.stringify(config.problems, null, 2));
  return buildSnapshotFromConfig(config, 'app');
}

/** Runs a command to completion, never throwing on a non-zero exit (tests look at the code). */
export function runProcess(command: string, args: readonly string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({
      stdout: Buffer.concat(out).toString('utf8').trim(),
      stderr: Buffer.concat(err).toString('utf8').trim(),
      code: code ?? 1,
    }));
    child.stdin.end(options.input ?? '');
  });
}

/** psql as the superuser on database `app` (server.psql goes to `postgres`). */
export async function adminPsqlOn(server: PostgresServer, sql: string): Promise<string> {
  const { stdout } = await run('psql', ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(server.port),
    '-U', server.admin.user, '-d', 'app', '-c', sql], { env: { ...process.env, PGPASSWORD: server.admin.password } });
  return stdout.trim();
}

/** Creates the app_owner login and the payments schema on a fresh server. */
export async function preparePaymentsDatabase(server: PostgresServer): Promise<void> {
  await server.psql(`CREATE ROLE ${APP_OWNER.user} LOGIN PASSWORD '${APP_OWNER.password}'; GRANT ALL ON DATABASE app TO ${APP_OWNER.user}`);
  await adminPsqlOn(server, `GRANT ALL ON SCHEMA public TO ${APP_OWNER.user}`);
  await run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(server.port), '-U', server.admin.user, '-d', 'app', '-c',
    `SET ROLE ${APP_OWNER.user}; ${PAYMENTS_SCHEMA}`], { env: { ...process.env, PGPASSWORD: server.admin.password } });
}

async function readRecordings(dir: string): Promise<Map<string, RecordedEvent[]>> {
  const sessions = new Map<string, RecordedEvent[]>();
  for (const file of await readdir(dir).catch(() => [] as string[])) {
    if (!file.endsWith('.jsonl')) continue;
    const text = await readFile(join(dir, file), 'utf8');
    const events = text.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as RecordedEvent);
    sessions.set(file.slice(0, -'.jsonl'.length), events);
  }
  return sessions;
}

export interface SidecarFixtureOptions {
  readonly policyRules: string;
  readonly extra?: string;
  /** A server shared between fixtures; the fixture then neither prepares nor stops it. */
  readonly server?: PostgresServer;
  /** How to start the fixture's own server (ignored with `server`). */
  readonly serverOptions?: PostgresServerOptions;
  /** The resource credential; app_owner (SCRAM) by default. */
  readonly login?: PostgresUser;
  readonly tls?: ResourceTlsSettings;
  readonly logger?: Logger;
  readonly sidecar?: Partial<SidecarOptions>;
}

export async function startSidecarFixture(options: SidecarFixtureOptions): Promise<SidecarFixture> {
  await loadSqlParser();
  const server = options.server ?? (await startPostgres(options.serverOptions));
  if (!options.server) await preparePaymentsDatabase(server);
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
  const login = options.login ?? APP_OWNER;
  const render = (rules: string, extra = '') => manifests(server, login, rules, extra, options.tls);
  await sidecar.apply(snapshotFrom(render(options.policyRules, options.extra)));
  const port = sidecar.portOf('db')!;
  const pgClient = async (config: pg.ClientConfig = {}): Promise<pg.Client> => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'whoever', password: 'app-does-not-know-it', database: 'whatever', ...config });
    await client.connect();
    return client;
  };
  return {
    server,
    sidecar,
    metrics,
    port,
    recordings,
    async reload(rules, extra) {
      await sidecar.apply(snapshotFrom(render(rules, extra)));
    },
    psql(sql, psqlOptions = {}) {
      const args = ['-X', '-q', '-t', '-A', '-h', '127.0.0.1', '-p', String(port), '-U', 'whoever', '-d', 'whatever',
        ...(psqlOptions.extraArgs ?? []), '-c', sql];
      const env = { ...process.env, PGPASSWORD: 'app-does-not-know-it', PGCONNECT_TIMEOUT: '5', ...psqlOptions.env };
      return runProcess('psql', args, { ...(psqlOptions.input !== undefined ? { input: psqlOptions.input } : {}), env });
    },
    adminPsql: (sql) => adminPsqlOn(server, sql),
    pgClient,
    async withClient(use, config) {
      const client = await pgClient(config);
      try {
        return await use(client);
      } finally {
        await client.end();
      }
    },
    recordedSessions: () => readRecordings(recordings),
    async stop() {
      await sidecar.stop(1000);
      if (!options.server) await server.stop();
      await rm(recordings, { recursive: true, force: true });
    },
  };
}

/** Sum of a metric's samples whose labels include `labels` (prom-client's own reading, no text parsing). */
export async function metricSum(
  metric: { get(): Promise<{ values: readonly { value: number; labels: Record<string, string | number>; metricName?: string }[] }> },
  labels: Record<string, string> = {},
  sampleName?: string,
): Promise<number> {
  const { values } = await metric.get();
  return values
    .filter((sample) => sampleName === undefined || sample.metricName === sampleName)
    .filter((sample) => Object.entries(labels).every(([name, value]) => String(sample.labels[name]) === value))
    .reduce((sum, sample) => sum + sample.value, 0);
}

/** The DatabaseError a statement through the sidecar fails with; throws if it succeeds. */
export async function rejection(promise: Promise<unknown>): Promise<pg.DatabaseError> {
  try {
    await promise;
  } catch (error) {
    return error as pg.DatabaseError;
  }
  throw new Error('expected the statement to fail');
}

/** Polls `check` until it holds (for effects that land asynchronously, like a session's end). */
export function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  return pollUntil('condition', check, timeoutMs, 25);
}
