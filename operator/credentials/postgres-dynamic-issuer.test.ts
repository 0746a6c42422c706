// postgres-dynamic against a real PostgreSQL 15: roles carry exactly the privileges the policy
// implies (checked by logging in with node-postgres), VALID UNTIL follows issue and renewal, revocation
// and expiry end live sessions and drop the role, startup cleanup removes leftovers, a non-superuser
// CREATEROLE admin works, and no password ever reaches an error or a log line.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { isGatehouseError } from '../../api/errors.js';
import type { AccessPolicy, PolicyRuleT, ProtectedResource } from '../../api/kinds/kinds.js';
import { createLogger } from '../../api/logging/logger.js';
import type { Secret } from '../../api/manifests/config.js';
import { startPostgres, type PostgresServer } from '../../testing/postgres-server.js';
import { identity, policy, resource, secret } from './credential-fixtures.js';
import { credentialRequest, type CredentialIssuer, type IssuedCredential } from './credential-issuer.js';
import { CredentialManager, type CredentialEvent, type CredentialGrant } from './credential-manager.js';
import { secretsFromList } from './credential-secret.js';
import { ManualScheduler } from './manual-scheduler.js';
import { PostgresDynamicIssuer, randomPassword, type PostgresDynamicIssuerOptions } from './postgres-dynamic-issuer.js';
import { LogCapture } from '../../testing/log-capture.js';

const logs = new LogCapture();
const logger = createLogger({ level: 'debug', destination: logs });
/** Every password issued in this file; none may appear in any log line. */
const issuedPasswords: string[] = [];
const OWNER_PASSWORD = 'owner-Secret-7b1e';
const RUNNER = identity('ci-runner');

let server: PostgresServer;
let secrets: Secret[];
let ordersDb: ProtectedResource;
const openClients: pg.Client[] = [];

async function connectAs(user: string, password: string, database = 'app'): Promise<pg.Client> {
  const client = new pg.Client({ host: server.host, port: server.port, database, user, password });
  client.on('error', () => undefined);
  await client.connect();
  openClients.push(client);
  return client;
}

async function admin(): Promise<pg.Client> {
  return connectAs(server.admin.user, server.admin.password);
}

async function sqlState(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

function issuer(options: Partial<PostgresDynamicIssuerOptions> = {}): PostgresDynamicIssuer {
  const generatePassword = (): string => {
    const password = randomPassword();
    issuedPasswords.push(password);
    return password;
  };
  return new PostgresDynamicIssuer({ secrets: secretsFromList(secrets), logger, generatePassword, ...options });
}

function grant(rules: readonly PolicyRuleT[], target: ProtectedResource = ordersDb, extra: Partial<AccessPolicy['spec']> = {}): CredentialGrant {
  return { identity: RUNNER, resource: target, policies: [policy('runner', [RUNNER.metadata.name], [target.metadata.name], rules, extra)] };
}

function request(rules: readonly PolicyRuleT[], ttlMs = 60_000, target: ProtectedResource = ordersDb) {
  return credentialRequest({ ...grant(rules, target), ttlMs });
}

async function heldPrivileges(role: string): Promise<string[]> {
  const client = await admin();
  const { rows } = await client.query<{ grant: string }>(
    `SELECT n.nspname || '.' || c.relname || ':' || a.privilege_type AS grant
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN LATERAL aclexplode(c.relacl) a
     WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $1) ORDER BY 1`,
    [role],
  );
  return rows.map((row) => row.grant);
}

async function role(name: string): Promise<{ validUntil: Date; canLogin: boolean; superuser: boolean } | undefined> {
  const client = await admin();
  const { rows } = await client.query<{ rolvaliduntil: Date; rolcanlogin: boolean; rolsuper: boolean }>(
    'SELECT rolvaliduntil, rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1',
    [name],
  );
  const row = rows[0];
  return row && { validUntil: row.rolvaliduntil, canLogin: row.rolcanlogin, superuser: row.rolsuper };
}

/** Resolves with the error a live client receives when its session is terminated. */
function sessionEnd(client: pg.Client): Promise<Error> {
  return new Promise((resolve) => client.once('error', resolve));
}

beforeAll(async () => {
  // Every statement is logged server-side, so the last test can show the password never got there.
  server = await startPostgres({ settings: ["log_statement = 'all'"] });
  const client = new pg.Client({ host: server.host, port: server.port, database: 'app', user: server.admin.user, password: server.admin.password });
  await client.connect();
  await client.query(`
    CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL);
    CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
    CREATE SCHEMA reporting;
    CREATE TABLE reporting.daily (day date PRIMARY KEY, total int);
    INSERT INTO orders (item) VALUES ('book'), ('pen');
    INSERT INTO customers (name) VALUES ('ada');
    INSERT INTO reporting.daily VALUES ('2024-01-01', 3);
    CREATE ROLE shop_owner LOGIN CREATEROLE PASSWORD '${OWNER_PASSWORD}';
    CREATE ROLE no_createrole LOGIN PASSWORD '${OWNER_PASSWORD}';
    CREATE SCHEMA shop AUTHORIZATION shop_owner;
    SET ROLE shop_owner;
    CREATE TABLE shop.items (id serial PRIMARY KEY, name text);
    INSERT INTO shop.items (name) VALUES ('lamp');
    RESET ROLE;
  `);
  await client.end();
  ordersDb = resource('orders-db', { address: `127.0.0.1:${server.port}` });
  secrets = [
    secret('orders-db-admin', { username: server.admin.user, password: server.admin.password }),
    secret('shop-db-admin', { username: 'shop_owner', password: OWNER_PASSWORD }),
    secret('weak-db-admin', { username: 'no_createrole', password: OWNER_PASSWORD }),
    secret('wrong-db-admin', { username: server.admin.user, password: 'Wrong-Password-93f2' }),
  ];
}, 60_000);

afterAll(async () => {
  for (const client of openClients) await client.end().catch(() => undefined);
  await server?.stop();
});

describe('issue', () => {
  test('a read-only policy: SELECT works, INSERT fails with 42501; VALID UNTIL is the expiry', async () => {
    const credential = await issuer().issue(request([{ effect: 'allow', operations: ['read'] }]));
    expect(credential.username).toMatch(/^gh_[0-9a-f]{12}_[0-9a-f]{8}$/);
    expect(credential.renewAt! - credential.issuedAt).toBe(40_000);
    const attributes = await role(credential.username);
    expect(attributes).toMatchObject({ canLogin: true, superuser: false });
    expect(attributes!.validUntil.getTime()).toBe(credential.expiresAt);

    const client = await connectAs(credential.username, credential.password);
    expect((await client.query('SELECT count(*)::int AS n FROM orders')).rows[0].n).toBe(2);
    expect((await client.query('SELECT total FROM reporting.daily')).rows[0].total).toBe(3);
    expect(await sqlState(client.query("INSERT INTO orders (item) VALUES ('x')"))).toBe('42501');
    expect(await sqlState(client.query('DELETE FROM customers WHERE id = 1'))).toBe('42501');
    expect(await heldPrivileges(credential.username)).toEqual([
      'public.customers:SELECT', 'public.orders:SELECT', 'reporting.daily:SELECT', 'shop.items:SELECT',
    ]);
  });

  test('a write policy on orders only: INSERT and UPDATE on orders work (serial sequence included), customers stay closed', async () => {
    const credential = await issuer().issue(request([{ effect: 'allow', operations: ['write'], tables: ['orders'] }]));
    const client = await connectAs(credential.username, credential.password);
    const inserted = await client.query<{ id: number }>("INSERT INTO orders (item) VALUES ('lamp') RETURNING id");
    expect(inserted.rows[0]!.id).toBeGreaterThan(2);
    await client.query("UPDATE orders SET item = 'desk' WHERE id = $1", [inserted.rows[0]!.id]);
    expect(await sqlState(client.query("INSERT INTO customers (name) VALUES ('eve')"))).toBe('42501');
    expect(await sqlState(client.query('SELECT * FROM customers'))).toBe('42501');
    expect(await sqlState(client.query('DELETE FROM orders WHERE id = 1'))).toBe('42501');
    expect(await heldPrivileges(credential.username)).toEqual([
      'public.orders:INSERT', 'public.orders:SELECT', 'public.orders:UPDATE', 'public.orders_id_seq:USAGE',
    ]);
  });

  test('tls mode prefer (the default) falls back to plain when the server offers no TLS', async () => {
    const preferDb = resource('orders-db', { address: `127.0.0.1:${server.port}`, tls: undefined });
    const credential = await issuer().issue(request([{ effect: 'allow', operations: ['read'] }], 60_000, preferDb));
    const client = await connectAs(credential.username, credential.password);
    expect((await client.query('SELECT count(*)::int AS n FROM customers')).rows[0].n).toBe(1);
  });

  test('a non-superuser CREATEROLE admin can issue, renew and revoke, ending live sessions', async () => {
    const shopDb = resource('shop-db', { address: `127.0.0.1:${server.port}` });
    const shopIssuer = issuer();
    const shopRequest = request([{ effect: 'allow', operations: ['read'], tables: ['shop.*'] }], 60_000, shopDb);
    const credential = await shopIssuer.issue(shopRequest);
    const client = await connectAs(credential.username, credential.password);
    expect((await client.query('SELECT name FROM shop.items')).rows).toEqual([{ name: 'lamp' }]);
    const renewed = await shopIssuer.renew(credential, { ...shopRequest, ttlMs: 120_000 });
    expect((await role(credential.username))!.validUntil.getTime()).toBe(renewed.expiresAt);
    expect(renewed.expiresAt).toBeGreaterThan(credential.expiresAt!);
    const ended = sessionEnd(client);
    await shopIssuer.revoke(credential, shopDb);
    expect(((await ended) as { code?: string }).code).toBe('57P01');
    expect(await role(credential.username)).toBeUndefined();
  });
});

describe('renewal and revocation through the manager', () => {
  let scheduler: ManualScheduler;
  let manager: CredentialManager;
  let events: CredentialEvent[];

  beforeEach(() => {
    scheduler = new ManualScheduler(Date.now());
    events = [];
    manager = new CredentialManager({ issuers: { 'postgres-dynamic': issuer({ clock: scheduler }) }, scheduler, logger });
    manager.subscribe((event) => events.push(event));
  });

  afterEach(async () => {
    await manager.close({ revoke: true });
  });

  test('renewal at two thirds of the TTL extends VALID UNTIL, keeps the password and picks up new tables', async () => {
    const issued = (await manager.ensure(grant([{ effect: 'allow', operations: ['read'] }], ordersDb, { credentialTTL: '60s' })))!;
    const before = await role(issued.username);
    const db = await admin();
    await db.query('CREATE TABLE IF NOT EXISTS late_table (id int); INSERT INTO late_table VALUES (7)');

    await scheduler.advance(40_000, () => manager.settled());
    const renewed = manager.credentialFor({ namespace: 'payments', identity: 'ci-runner', resource: 'orders-db' })!;
    expect(events.map((event) => event.type)).toEqual(['issued', 'renewed']);
    expect(renewed.password).toBe(issued.password);
    expect(renewed.expiresAt).toBe(issued.expiresAt! + 40_000);
    const after = await role(issued.username);
    expect(after!.validUntil.getTime() - before!.validUntil.getTime()).toBe(40_000);

    const client = await connectAs(renewed.username, renewed.password);
    expect((await client.query('SELECT id FROM late_table')).rows).toEqual([{ id: 7 }]);
  });

  test('a narrower policy re-scopes the live role on sync', async () => {
    const wide = await manager.ensure(grant([{ effect: 'allow', operations: ['read'] }]));
    const client = await connectAs(wide!.username, wide!.password);
    await client.query('SELECT * FROM customers');
    const result = await manager.sync([grant([{ effect: 'allow', operations: ['read'], tables: ['orders'] }])]);
    expect(result.failures).toEqual([]);
    expect(await sqlState(client.query('SELECT * FROM customers'))).toBe('42501');
    await client.query('SELECT * FROM orders');
    expect(await heldPrivileges(wide!.username)).toEqual(['public.orders:SELECT']);
  });

  test('revocation ends a live session holding the role, then drops it', async () => {
    const credential = (await manager.ensure(grant([{ effect: 'allow', operations: ['read'] }])))!;
    const client = await connectAs(credential.username, credential.password);
    await client.query('BEGIN');
    await client.query('SELECT * FROM orders');
    const ended = sessionEnd(client);
    const result = await manager.sync([]);
    expect(result.failures).toEqual([]);
    expect(((await ended) as { code?: string }).code).toBe('57P01');
    await expect(client.query('SELECT 1')).rejects.toThrow();
    expect(await role(credential.username)).toBeUndefined();
    expect(events.at(-1)).toMatchObject({ type: 'revoked', reason: 'access-removed' });
  });

  test('a credential that expires unrenewed loses its sessions and its role', async () => {
    const real = issuer({ clock: scheduler });
    const failingRenewal: CredentialIssuer = {
      strategy: 'postgres-dynamic',
      issue: (req) => real.issue(req),
      renew: () => Promise.reject(new Error('backend unavailable')),
      revoke: (credential, target) => real.revoke(credential, target),
    };
    await manager.close();
    manager = new CredentialManager({ issuers: { 'postgres-dynamic': failingRenewal }, scheduler, logger, retryDelayMs: 5_000 });
    manager.subscribe((event) => events.push(event));
    const credential = (await manager.ensure(grant([{ effect: 'allow', operations: ['read'] }], ordersDb, { credentialTTL: '30s' })))!;
    const client = await connectAs(credential.username, credential.password);
    const ended = sessionEnd(client);

    await scheduler.advance(30_000, () => manager.settled());
    expect(((await ended) as { code?: string }).code).toBe('57P01');
    expect(await role(credential.username)).toBeUndefined();
    expect(events.map((event) => event.type)).toEqual(['issued', 'revoked']);
    expect(events[1]).toMatchObject({ reason: 'expired' });
  });
});

describe('concurrency', () => {
  test('many identities issued at once on the same tables all get their roles', async () => {
    const manager = new CredentialManager({ issuers: { 'postgres-dynamic': issuer() }, logger, concurrency: 8 });
    const grants = Array.from({ length: 12 }, (_, index) => {
      const who = identity(`worker-${index}`);
      const rules: PolicyRuleT[] = [{ effect: 'allow', operations: ['read', 'write', 'delete'] }];
      return { identity: who, resource: ordersDb, policies: [policy(`worker-${index}`, [who.metadata.name], ['orders-db'], rules)] };
    });
    const result = await manager.sync(grants);
    expect(result.failures.map((failure) => failure.error.message)).toEqual([]);
    expect(manager.keys()).toHaveLength(12);
    await manager.close({ revoke: true });
  });
});

describe('startup cleanup', () => {
  test('drops unknown prefixed roles (ending their sessions), keeps known ones and anything else', async () => {
    const db = await admin();
    await db.query('CREATE ROLE gh_admin_tool LOGIN; CREATE ROLE reporting_user LOGIN');
    const leftover = await issuer().issue(request([{ effect: 'allow', operations: ['read'] }]));
    const leftoverSession = await connectAs(leftover.username, leftover.password);
    const ended = sessionEnd(leftoverSession);

    const manager = new CredentialManager({ issuers: { 'postgres-dynamic': issuer() }, logger });
    const known = (await manager.ensure(grant([{ effect: 'allow', operations: ['read'] }])))!;
    const result = await manager.cleanupLeftovers([ordersDb]);

    expect(result.failures).toEqual([]);
    expect(result.removed).toContain(leftover.username);
    expect(result.removed).not.toContain(known.username);
    expect(((await ended) as { code?: string }).code).toBe('57P01');
    expect(await role(leftover.username)).toBeUndefined();
    expect(await role(known.username)).toBeDefined();
    expect(await role('gh_admin_tool')).toBeDefined();
    expect(await role('reporting_user')).toBeDefined();
    await manager.close({ revoke: true });
    expect(await role(known.username)).toBeUndefined();
  });
});

describe('secrets stay out of errors and logs', () => {
  function serialised(error: unknown): string {
    const err = error as Error & { cause?: unknown };
    return [err.message, err.stack, JSON.stringify(error), String(err.cause)].join('\n');
  }

  test('a refused CREATE ROLE names role, resource and SQLSTATE, never the admin or the generated password', async () => {
    const weakDb = resource('weak-db', { address: `127.0.0.1:${server.port}` });
    const password = 'Generated-Password-4c9d1';
    const failing = new PostgresDynamicIssuer({ secrets: secretsFromList(secrets), logger, generatePassword: () => password });
    const error = await failing.issue(request([{ effect: 'allow', operations: ['read'] }], 60_000, weakDb)).catch((caught: unknown) => caught);
    expect(isGatehouseError(error, 'GH_ERR_PG_DYNAMIC_ROLE')).toBe(true);
    const text = serialised(error);
    expect(text).toContain('SQLSTATE 42501');
    expect(text).toContain('payments/weak-db');
    for (const secretValue of [password, OWNER_PASSWORD, 'SCRAM-SHA-256$']) expect(text).not.toContain(secretValue);
  });

  test('a failed admin login does not echo the admin password', async () => {
    const wrongDb = resource('wrong-db', { address: `127.0.0.1:${server.port}` });
    const error = await issuer().issue(request([{ effect: 'allow', operations: ['read'] }], 60_000, wrongDb)).catch((caught: unknown) => caught);
    expect(isGatehouseError(error, 'GH_ERR_PG_ADMIN_CONNECT')).toBe(true);
    expect(serialised(error)).not.toContain('Wrong-Password-93f2');
    expect((error as Error).message).toContain('payments/wrong-db-admin');
  });

  test('no issued password, admin password or verifier appears in any log line of this file', () => {
    expect(issuedPasswords.length).toBeGreaterThan(5);
    expect(logs.text).toContain('created dynamic role');
    for (const value of [...issuedPasswords, server.admin.password, OWNER_PASSWORD, 'SCRAM-SHA-256$']) expect(logs.text).not.toContain(value);
  });

  test('issued passwords never reach the server, not even its statement log (only SCRAM verifiers do)', async () => {
    const serverLog = await readFile(join(dirname(server.dataDir), 'server.log'), 'utf8');
    expect(serverLog).toContain('CREATE ROLE');
    for (const password of issuedPasswords) expect(serverLog).not.toContain(password);
  });
});
