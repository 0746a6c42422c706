// The PostgreSQL listener and its upstream side against a real PostgreSQL 15 with TLS: one
// loopback listener per resource, upstream login with SCRAM-SHA-256, MD5 and cleartext over
// verify-full TLS, cancel requests mapped to the real backend, revocation and drain. The upstream
// credential never reaches the app or the logs, even when the login fails.
import { spawn } from 'node:child_process';
import { connect, createServer, type AddressInfo } from 'node:net';
import pg from 'pg';
import { createLogger } from '../../api/logging/logger.js';
import { startPostgres, type PostgresServer, type PostgresUser } from '../../testing/postgres-server.js';
import { encodeQuery } from './protocol/frontend-encoders.js';
import { encodeCancelRequest, encodeStartupMessage } from './protocol/startup-messages.js';
import { RawClient, firstError } from './testing/raw-client.js';
import {
  APP_OWNER, eventually, metricSum, preparePaymentsDatabase, startSidecarFixture, type ResourceTlsSettings, type SidecarFixture,
} from './testing/sidecar-fixture.js';
import { LogCapture } from '../../testing/log-capture.js';

const RULES = `  rules:
    - {name: app-access, effect: allow, operations: [read, write, call, transaction, session]}
`;

let server: PostgresServer;
const fixtures: SidecarFixture[] = [];

beforeAll(async () => {
  server = await startPostgres({ tls: true });
  await preparePaymentsDatabase(server);
});

afterAll(async () => {
  for (const fixture of fixtures) await fixture.stop();
  await server?.stop();
});

async function fixture(options: { login?: PostgresUser; tls?: ResourceTlsSettings; extra?: string; logs?: LogCapture } = {}): Promise<SidecarFixture> {
  const started = await startSidecarFixture({
    policyRules: RULES,
    server,
    ...(options.login ? { login: options.login } : {}),
    tls: options.tls ?? { mode: 'verify-full', caPem: server.caPem! },
    ...(options.extra ? { extra: options.extra } : {}),
    ...(options.logs ? { logger: createLogger({ level: 'debug', destination: options.logs }) } : {}),
  });
  fixtures.push(started);
  return started;
}

describe('upstream login', () => {
  it.each([
    ['SCRAM-SHA-256', () => APP_OWNER],
    ['MD5', () => server.md5User],
    ['cleartext password', () => server.cleartextUser],
  ])('logs in with %s over verify-full TLS', async (_method, login) => {
    const f = await fixture({ login: login() });
    const result = await f.psql('SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    expect(result).toMatchObject({ code: 0, stdout: `${login().user}|t` });
  });

  it('follows tls.mode: disable is plaintext, require is encrypted', async () => {
    const plain = await fixture({ tls: { mode: 'disable' } });
    expect((await plain.psql('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).stdout).toBe('f');
    const required = await fixture({ tls: { mode: 'require' } });
    expect((await required.psql('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).stdout).toBe('t');
  });

  it('refuses a server certificate that does not name the host, with a clear FATAL', async () => {
    const f = await fixture({ tls: { mode: 'verify-full', caPem: server.caPem!, serverName: 'orders-db.example.internal' } });
    const client = await RawClient.open(f.port);
    client.send(encodeStartupMessageFor('app'));
    const error = firstError(await client.untilReady());
    expect(error?.get('S')).toBe('FATAL');
    expect(error?.get('C')).toBe('08001');
    expect(error?.get('M')).toMatch(/cannot connect to db: TLS with PostgreSQL at 127\.0\.0\.1:\d+ failed/);
    await client.closed();
  });

  it('keeps a failed login from showing the credential to the app or in the logs', async () => {
    const logs = new LogCapture();
    const wrong = { user: APP_OWNER.user, password: 'wrong-password-0xC0FFEE' };
    const f = await fixture({ login: wrong, logs });
    const client = await RawClient.open(f.port);
    client.send(encodeStartupMessageFor('app'));
    const error = firstError(await client.untilReady());
    expect(error?.get('C')).toBe('08001');
    expect(error?.get('M')).toMatch(/refused the session of user app_owner: password authentication failed/);
    await client.closed();
    expect(client.received.includes(wrong.password)).toBe(false);
    expect(logs.text).toContain('upstream connection failed');
    expect(logs.text).not.toContain(wrong.password);
    expect(await metricSum(f.metrics.upstreamErrors, { resource: 'db', kind: 'GH_ERR_PG_UPSTREAM_REJECTED' })).toBe(1);
  });
});

describe('socket reads (ADR 0006)', () => {
  it('reads both sides directly on this Node: no fallback is logged, and large messages cross intact both ways', async () => {
    const logs = new LogCapture();
    const f = await fixture({ tls: { mode: 'disable' }, logs });
    // 640 kB back from the server, and a 100 kB statement to it: many reads into the sessions' regions.
    const rows = "SELECT string_agg(md5(i::text), '') FROM generate_series(1, 20000) i";
    const through = await f.psql(rows);
    expect(through.code).toBe(0);
    expect(through.stdout.length).toBe(640_000);
    expect(through.stdout).toBe(await server.psql(rows));
    const literal = `SELECT md5('${'0123456789abcdef'.repeat(6_400)}')`;
    expect((await f.psql(literal)).stdout).toBe(await server.psql(literal));
    expect(logs.text).not.toContain('stream reads');
  });
});

function encodeStartupMessageFor(user: string): Buffer {
  return encodeStartupMessage({ user, database: 'app' });
}

describe('cancel', () => {
  async function waitForActiveSleep(): Promise<void> {
    await eventually(async () => (await server.psql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%' AND state = 'active'")) === '1', 5000);
  }

  it("maps psql's cancel (SIGINT) to the real backend: the query ends with 57014 within a couple of seconds", async () => {
    const f = await fixture();
    const started = Date.now();
    const child = spawn('psql', ['-X', '-v', 'VERBOSITY=verbose', '-h', '127.0.0.1', '-p', String(f.port), '-U', 'x', '-d', 'y', '-c', 'SELECT pg_sleep(30)'],
      { env: { ...process.env, PGPASSWORD: 'x' } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await waitForActiveSleep();
    child.kill('SIGINT');
    expect(await exited).not.toBe(0);
    expect(stderr).toMatch(/57014/);
    expect(stderr).toMatch(/canceling statement due to user request/);
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it("maps node-postgres's key (the sidecar's own) to the real backend", async () => {
    const f = await fixture();
    const client = await f.pgClient();
    const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
    const sleeping = client.query('SELECT pg_sleep(30)').catch((error: pg.DatabaseError) => error);
    await waitForActiveSleep();
    const started = Date.now();
    const socket = connect({ host: '127.0.0.1', port: f.port });
    socket.end(encodeCancelRequest({ processId: processID, secretKey: secretKey >>> 0 }));
    const error = await sleeping;
    expect((error as pg.DatabaseError).code).toBe('57014');
    expect(Date.now() - started).toBeLessThan(2500);
    expect((await client.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    // A wrong key is ignored without a word, as PostgreSQL does.
    const probe = await RawClient.open(f.port);
    probe.send(encodeCancelRequest({ processId: processID, secretKey: (secretKey + 1) >>> 0 }));
    await probe.closed();
    expect(probe.received.length).toBe(0);
    await client.end();
  });
});

describe('listeners', () => {
  const SECOND_RESOURCE = `---
apiVersion: gatehouse.dev/v1alpha1
kind: ProtectedResource
metadata: {name: reports}
spec:
  protocol: postgres
  address: 127.0.0.1:PORT
  database: app
  tls: {mode: require}
  credentials: {strategy: static, secretRef: {name: db-login}}
  sidecar: {port: 15433}
---
apiVersion: gatehouse.dev/v1alpha1
kind: AccessPolicy
metadata: {name: reports-policy}
spec:
  subjects: [{identity: app}]
  resources: [reports]
  rules:
    - {name: reports-read, effect: allow, operations: [read]}
`;

  it('runs one loopback-only listener per resource, each enforcing its own policy, and ends sessions on revocation', async () => {
    const f = await fixture({ extra: SECOND_RESOURCE.replace('PORT', String(server.port)) });
    const reportsPort = f.sidecar.portOf('reports')!;
    expect(reportsPort).not.toBe(f.port);
    const reports = new pg.Client({ host: '127.0.0.1', port: reportsPort, user: 'x', password: 'y', database: 'z' });
    await reports.connect();
    reports.on('error', () => undefined);
    expect((await reports.query('SELECT count(*)::int AS n FROM customers')).rows).toEqual([{ n: 3 }]);
    await expect(reports.query("INSERT INTO orders (customer_id, total) VALUES (1, 1)")).rejects.toMatchObject({ code: '42501' });
    expect((await f.psql("INSERT INTO orders (customer_id, total) VALUES (1, 8888) RETURNING total")).stdout).toBe('8888.00');
    // Loopback only: the same port on another loopback address is not served.
    await expect(new Promise((resolve, reject) => connect({ host: '127.0.0.2', port: reportsPort }, () => resolve('connected')).on('error', reject)))
      .rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await f.reload(RULES);
    await expect(reports.query('SELECT 1')).rejects.toThrow(/access to this resource was revoked|Connection terminated/);
    const after = await RawClient.open(reportsPort);
    after.send(encodeStartupMessageFor('x'));
    expect(firstError(await after.untilReady())?.get('C')).toBe('28000');
    expect((await f.psql('SELECT 1')).stdout).toBe('1');
    await reports.end().catch(() => undefined);
  });

  it('refuses a snapshot whole when a new listener cannot bind: no listener left behind, the old policy stays', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const takenPort = (blocker.address() as AddressInfo).port;
    const f = await startSidecarFixture({
      policyRules: RULES,
      server,
      tls: { mode: 'disable' },
      sidecar: { portFor: (entry) => (entry.resource.metadata.name === 'reports' ? takenPort : 0) },
    });
    fixtures.push(f);
    const version = f.sidecar.version;
    const readOnly = RULES.replace('[read, write, call, transaction, session]', '[read]');
    await expect(f.reload(readOnly, SECOND_RESOURCE.replace('PORT', String(server.port)))).rejects.toMatchObject({ code: 'GH_ERR_PG_LISTEN' });
    expect(f.sidecar.version).toBe(version);
    expect(f.sidecar.portOf('reports')).toBeUndefined();
    expect((await f.psql("INSERT INTO orders (customer_id, total) VALUES (1, 8889) RETURNING total")).stdout).toBe('8889.00');
    await new Promise((resolve) => blocker.close(resolve));
  });

  it('drains on stop: a live session is told the sidecar is shutting down', async () => {
    const f = await startSidecarFixture({ policyRules: RULES, server, tls: { mode: 'disable' } });
    const client = await RawClient.started(f.port);
    client.send(encodeQuery('SELECT 1'));
    await client.untilReady();
    const stopping = f.stop();
    const error = firstError(await client.untilReady());
    expect(error?.get('C')).toBe('57P01');
    expect(error?.get('M')).toMatch(/the sidecar is shutting down/);
    await client.closed();
    await stopping;
  });
});
