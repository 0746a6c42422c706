// PostgresSession against a real PostgreSQL 15 with real clients (psql, node-postgres) and, where a
// real client cannot be made to misbehave, a raw wire client: the startup, simple-query enforcement,
// denials and their effect on transactions, live policy reload, recording and metrics.
import pg from 'pg';
import { createLogger } from '../../../api/logging/logger.js';
import { encodeQuery } from '../protocol/frontend-encoders.js';
import { encodeGSSENCRequest, encodeSSLRequest, encodeStartupMessage } from '../protocol/startup-messages.js';
import { RawClient, firstError } from '../testing/raw-client.js';
import {
  APP_OWNER, eventually, metricSum, rejection, runProcess, startSidecarFixture, type RecordedEvent, type SidecarFixture,
} from '../testing/sidecar-fixture.js';
import { LogCapture } from '../../../testing/log-capture.js';

const RULES = `  rules:
    - {name: app-access, effect: allow, operations: [read, write, delete, transaction, session]}
    - {name: no-ddl, effect: deny, operations: [ddl, truncate], message: "schema changes go through migrations"}
    - {name: refunds, effect: require-approval, operations: [delete], tables: [orders], approval: {approvers: {groups: [dba]}}}
  masking:
    - {detectors: [credit-card], strategy: redact}
`;

const READ_ONLY = `  rules:
    - {name: read-only, effect: allow, operations: [read, session, transaction]}
`;

const logs = new LogCapture();
let f: SidecarFixture;

beforeAll(async () => {
  f = await startSidecarFixture({ policyRules: RULES, logger: createLogger({ level: 'debug', destination: logs }) });
});

afterAll(async () => {
  await f?.stop();
});

afterEach(async () => {
  await f.reload(RULES);
});

describe('connection', () => {
  it('answers SSLRequest and GSSENCRequest with N on loopback, then takes the startup', async () => {
    const client = await RawClient.open(f.port);
    client.rawOnly = true;
    client.send(encodeSSLRequest());
    await eventually(() => client.received.length >= 1);
    client.send(encodeGSSENCRequest());
    await eventually(() => client.received.length >= 2);
    expect(client.received.subarray(0, 2).toString('latin1')).toBe('NN');
    client.destroy();
    // psql's default sslmode=prefer falls back to plaintext after the N; require must fail.
    expect((await f.psql('SELECT 1', { env: { PGSSLMODE: 'prefer' } })).stdout).toBe('1');
    const required = await f.psql('SELECT 1', { env: { PGSSLMODE: 'require' } });
    expect(required.code).not.toBe(0);
    expect(required.stderr).toMatch(/server does not support SSL/);
  });

  it('accepts whatever user and password the app sends and logs in upstream with the resource credential', async () => {
    const viaPsql = await f.psql('SELECT current_user, current_database()');
    expect(viaPsql).toMatchObject({ code: 0, stdout: `${APP_OWNER.user}|app` });
    const user = await f.withClient((client) => client.query('SELECT current_user AS who'), { user: 'mallory', password: 'wrong', database: 'postgres' });
    expect(user.rows).toEqual([{ who: APP_OWNER.user }]);
  });

  it('relays the server ParameterStatus and hands out its own BackendKeyData', async () => {
    const client = await RawClient.open(f.port);
    client.send(encodeStartupMessage({ user: 'x', database: 'y', application_name: 'billing' }));
    const greeting = await client.untilReady();
    const parameters = new Map(greeting.flatMap((m) => (m.kind === 'ParameterStatus' ? [[m.name, m.value] as const] : [])));
    expect(parameters.get('server_version')).toMatch(/^15\./);
    expect(parameters.get('client_encoding')).toBe('UTF8');
    expect(parameters.get('application_name')).toBe('billing via gatehouse');
    expect(parameters.get('session_authorization')).toBe(APP_OWNER.user);
    const key = greeting.find((m) => m.kind === 'BackendKeyData');
    client.send(encodeQuery('SELECT pg_backend_pid()'));
    const answer = await client.untilReady();
    const row = answer.find((m) => m.kind === 'DataRow');
    const realPid = row?.kind === 'DataRow' ? Number(row.columns[0]!.toString()) : NaN;
    expect(key?.kind === 'BackendKeyData' && key.processId).not.toBe(realPid);
    expect(Number.isInteger(realPid)).toBe(true);
    client.destroy();
  });

  it('refuses replication connections with a FATAL before connecting upstream', async () => {
    for (const replication of ['database', 'true']) {
      const client = await RawClient.open(f.port);
      client.send(encodeStartupMessage({ user: 'x', database: 'y', replication }));
      const error = firstError(await client.untilReady());
      expect(error?.get('S')).toBe('FATAL');
      expect(error?.get('C')).toBe('0A000');
      expect(error?.get('M')).toMatch(/Replication connections are not allowed/);
      await client.closed();
    }
    const psql = await runProcess('psql', ['-X', '-c', 'IDENTIFY_SYSTEM', `host=127.0.0.1 port=${f.port} user=x replication=database`]);
    expect(psql.stderr).toMatch(/Replication connections are not allowed/);
  });

  it('never shows the upstream credential to the app or in the logs', async () => {
    const client = await RawClient.started(f.port, { user: APP_OWNER.user, database: 'app', password: 'guess' });
    for (const sql of ['SELECT current_setting(\'application_name\')', 'DROP TABLE orders', 'SELEC broken', 'SELECT 1/0']) {
      client.send(encodeQuery(sql));
      await client.untilReady();
    }
    client.destroy();
    await f.psql('SELECT * FROM customers');
    expect(client.received.includes(APP_OWNER.password)).toBe(false);
    expect(logs.text).toContain('session started');
    expect(logs.text).not.toContain(APP_OWNER.password);
  });
});

describe('simple query', () => {
  it('denies a whole multi-statement message when one statement is denied: nothing reaches the server', async () => {
    const before = await f.adminPsql('SELECT count(*) FROM orders');
    const result = await f.psql('INSERT INTO orders (customer_id, total) VALUES (1, 777.77); DROP TABLE customers');
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('ERROR:  gatehouse: schema changes go through migrations');
    expect(result.stderr).toContain('rule app-policy/no-ddl (deny)');
    expect(await f.adminPsql('SELECT count(*) FROM orders')).toBe(before);
    expect(await f.adminPsql("SELECT count(*) FROM orders WHERE total = 777.77")).toBe('0');
    expect(await f.adminPsql("SELECT to_regclass('customers') IS NOT NULL")).toBe('t');
  });

  it('answers a denial with 42501 naming the rule and the message, and keeps the connection usable', async () => {
    await f.withClient(async (client) => {
      const error = await rejection(client.query('TRUNCATE orders'));
      expect(error.code).toBe('42501');
      expect(error.severity).toBe('ERROR');
      expect(error.message).toBe('gatehouse: schema changes go through migrations');
      expect(error.detail).toBe('Denied by Gatehouse policy: rule app-policy/no-ddl (deny).');
      expect((await client.query('SELECT count(*)::int AS n FROM customers')).rows).toEqual([{ n: 3 }]);
      expect(Number(await f.adminPsql('SELECT count(*) FROM orders'))).toBeGreaterThan(0);
    });
  });

  it('denies what cannot be parsed and what needs an approval nobody can give here', async () => {
    await f.withClient(async (client) => {
      const unparsable = await rejection(client.query('SELEC * FROM orders'));
      expect(unparsable.code).toBe('42501');
      expect(unparsable.message).toMatch(/could not be parsed/);
      expect(unparsable.detail).toMatch(/unparsable/);
      const held = await rejection(client.query('DELETE FROM orders WHERE id = 1'));
      expect(held.code).toBe('42501');
      expect(held.message).toMatch(/approvals are not available/);
      expect(held.detail).toBe('Denied by Gatehouse policy: rule app-policy/refunds (require-approval).');
      expect(held.hint).toMatch(/needs a human approval/);
      expect(await f.adminPsql('SELECT count(*) FROM orders WHERE id = 1')).toBe('1');
      expect((await client.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    });
  });

  it('fails the transaction block a denial happens in: the earlier insert is rolled back', async () => {
    await f.withClient(async (client) => {
      await client.query('BEGIN');
      await client.query('INSERT INTO orders (customer_id, total) VALUES (2, 4242.42)');
      const denied = await rejection(client.query('DROP TABLE orders'));
      expect(denied.code).toBe('42501');
      const afterwards = await rejection(client.query('SELECT 1'));
      expect(afterwards.code).toBe('25P02');
      const commit = await client.query('COMMIT');
      expect(commit.command).toBe('ROLLBACK');
      expect((await client.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    });
    expect(await f.adminPsql('SELECT count(*) FROM orders WHERE total = 4242.42')).toBe('0');
  });

  it('passes empty statements (pool health checks) without counting them, in both protocols', async () => {
    const before = await metricSum(f.metrics.statements, {});
    await f.withClient(async (client) => {
      for (const sql of ['', ';', '-- nothing here']) expect((await client.query(sql)).command).toBeNull();
      expect((await client.query({ text: '', values: [] })).command).toBeNull();
    });
    expect(await metricSum(f.metrics.statements, {})).toBe(before);
  });

  it('still answers a denial with 42501 inside a transaction that already failed', async () => {
    await f.withClient(async (client) => {
      await client.query('BEGIN');
      expect((await rejection(client.query('SELECT 1/0'))).code).toBe('22012');
      const simple = await rejection(client.query('DROP TABLE orders'));
      expect(simple.code).toBe('42501');
      expect(simple.message).toBe('gatehouse: schema changes go through migrations');
      expect((await rejection(client.query('DROP TABLE orders', []))).code).toBe('42501');
      expect((await client.query('ROLLBACK')).command).toBe('ROLLBACK');
    });
  });

  it('fails the block when the denied statement shares a message with BEGIN and the insert (psql)', async () => {
    const result = await f.psql('BEGIN; INSERT INTO orders (customer_id, total) VALUES (2, 4343.43); DROP TABLE orders; COMMIT');
    expect(result.stderr).toMatch(/42501|schema changes/);
    expect(await f.adminPsql('SELECT count(*) FROM orders WHERE total = 4343.43')).toBe('0');
  });
});

describe('policy reload', () => {
  it('judges the next statement of a live connection by the new policy', async () => {
    await f.withClient(async (client) => {
      await client.query({ name: 'insert-order', text: 'INSERT INTO orders (customer_id, total) VALUES ($1, $2)', values: [1, 1001.25] });
      expect((await client.query('SELECT count(*)::int AS n FROM customers')).rows[0]).toEqual({ n: 3 });
      await f.reload(READ_ONLY);
      const simple = await rejection(client.query('INSERT INTO orders (customer_id, total) VALUES (1, 1005.5)'));
      expect(simple.code).toBe('42501');
      expect(simple.message).toMatch(/no rule allows write on orders/);
      // A statement prepared under the old policy is judged again when executed.
      const prepared = await rejection(client.query({ name: 'insert-order', text: 'INSERT INTO orders (customer_id, total) VALUES ($1, $2)', values: [1, 1006.5] }));
      expect(prepared.code).toBe('42501');
      expect((await client.query('SELECT count(*)::int AS n FROM customers')).rows[0]).toEqual({ n: 3 });
      await f.reload(RULES);
      await client.query({ name: 'insert-order', text: 'INSERT INTO orders (customer_id, total) VALUES ($1, $2)', values: [1, 1007.5] });
    });
    expect(await f.adminPsql('SELECT count(*) FROM orders WHERE total IN (1005.5, 1006.5)')).toBe('0');
    expect(await f.adminPsql('SELECT count(*) FROM orders WHERE total IN (1001.25, 1007.5)')).toBe('2');
  });

  it('judges EXECUTE of a SQL-prepared statement, and a Bind to it, by the policy in force at execution', async () => {
    await f.withClient(async (client) => {
      await client.query('PREPARE drop_old AS DELETE FROM customers WHERE id = 1000');
      await f.reload(READ_ONLY);
      expect((await rejection(client.query('EXECUTE drop_old'))).code).toBe('42501');
    });
    const raw = await RawClient.started(f.port);
    raw.send(encodeQuery('PREPARE del_orders AS DELETE FROM orders WHERE id = $1'));
    expect(firstError(await raw.untilReady())?.get('C')).toBe('42501');
    raw.destroy();
  });
});

function eventsOfType(events: readonly RecordedEvent[], type: string): RecordedEvent[] {
  return events.filter((event) => event.type === type);
}

describe('recording', () => {
  it('writes one JSON-lines file per session: connect, statements with parameters, decision and rule, completions, errors, disconnect', async () => {
    const before = new Set((await f.recordedSessions()).keys());
    await f.withClient(async (client) => {
      await client.query('SELECT id FROM orders WHERE id <= $1 ORDER BY id', [3]);
      await client.query('SELECT name FROM customers WHERE card_number = $1 OR notes = $2', ['4111 1111 1111 1111', 'plain note']);
      await rejection(client.query('DROP TABLE orders'));
      await rejection(client.query('SELECT 1/0'));
    }, { application_name: 'recorder-test' });
    let events: RecordedEvent[] = [];
    await eventually(async () => {
      const sessions = await f.recordedSessions();
      const added = [...sessions.entries()].filter(([id]) => !before.has(id)).map(([, list]) => list);
      events = added.find((list) => list.some((event) => event.type === 'connect' && (event.client as Record<string, string>).application_name === 'recorder-test')) ?? [];
      return events.some((event) => event.type === 'disconnect');
    });
    expect(events[0]).toMatchObject({ type: 'session', identity: 'app', resource: 'db', protocol: 'postgres' });
    expect(events[1]).toMatchObject({ type: 'connect', client: { application_name: 'recorder-test', user: 'whoever', database: 'whatever' } });
    const statements = eventsOfType(events, 'statement');
    expect(statements[0]).toMatchObject({ text: 'SELECT id FROM orders WHERE id <= $1 ORDER BY id', parameters: ['3'], operation: 'read', decision: 'allow', rule: 'app-policy/app-access' });
    expect(statements[1]?.parameters).toEqual(['[REDACTED:credit-card]', 'plain note']);
    expect(statements[2]).toMatchObject({ text: 'DROP TABLE orders', operation: 'ddl', decision: 'deny', rule: 'app-policy/no-ddl' });
    expect(eventsOfType(events, 'complete')[0]).toMatchObject({ command: 'SELECT 3', rows: 3 });
    expect(typeof eventsOfType(events, 'complete')[0]?.durationMs).toBe('number');
    expect(eventsOfType(events, 'error').map((event) => event.code)).toEqual(['42501', '22012']);
    expect(events.at(-1)).toMatchObject({ type: 'disconnect', reason: 'client terminated' });
    expect(JSON.stringify(events)).not.toContain('4111 1111 1111 1111');
  });

  it('masks detected values in recorded statement text', async () => {
    const before = new Set((await f.recordedSessions()).keys());
    await f.psql("SELECT count(*) FROM customers WHERE card_number = '4111 1111 1111 1111'");
    let recorded = '';
    await eventually(async () => {
      const sessions = await f.recordedSessions();
      recorded = [...sessions.entries()].filter(([id]) => !before.has(id)).map(([, list]) => JSON.stringify(list)).join('\n');
      return recorded.includes('disconnect');
    });
    expect(recorded).toContain('card_number = ');
    expect(recorded).not.toContain('4111 1111 1111 1111');
  });
});

describe('metrics', () => {
  const labels = { resource: 'db', identity: 'app' };

  it('counts statements by operation and decision, blocks by rule, latency, and active sessions back to 0', async () => {
    const readsBefore = await metricSum(f.metrics.statements, { ...labels, operation: 'read', decision: 'allow' });
    const ddlBefore = await metricSum(f.metrics.statements, { ...labels, operation: 'ddl', decision: 'deny' });
    const blockedBefore = await metricSum(f.metrics.blocked, { ...labels, rule: 'app-policy/no-ddl' });
    await f.withClient(async (client) => {
      await client.query('SELECT 1 FROM orders LIMIT 1');
      await client.query('SELECT $1::int AS n', [1]);
      await rejection(client.query('DROP TABLE orders'));
      expect(await metricSum(f.metrics.activeSessions, labels)).toBeGreaterThanOrEqual(1);
    });
    expect(await metricSum(f.metrics.statements, { ...labels, operation: 'read', decision: 'allow' })).toBe(readsBefore + 2);
    expect(await metricSum(f.metrics.statements, { ...labels, operation: 'ddl', decision: 'deny' })).toBe(ddlBefore + 1);
    expect(await metricSum(f.metrics.blocked, { ...labels, rule: 'app-policy/no-ddl' })).toBe(blockedBefore + 1);
    expect(await metricSum(f.metrics.addedLatency, { resource: 'db', direction: 'request' }, 'gatehouse_sidecar_added_latency_seconds_count')).toBeGreaterThan(0);
    expect(await metricSum(f.metrics.addedLatency, { resource: 'db', direction: 'response' }, 'gatehouse_sidecar_added_latency_seconds_count')).toBeGreaterThan(0);
    await eventually(async () => (await metricSum(f.metrics.activeSessions, labels)) === 0);
  });

  it('counts an upstream that goes away as an upstream error and tells the client', async () => {
    const before = await metricSum(f.metrics.upstreamErrors, { resource: 'db' });
    await f.withClient(async (client) => {
      client.on('error', () => undefined);
      const { rows } = await client.query('SELECT pg_backend_pid() AS pid');
      await f.adminPsql(`SELECT pg_terminate_backend(${Number(rows[0].pid)})`);
      const error = await rejection(client.query('SELECT 1'));
      expect(error.message).toMatch(/terminating connection|closed by the server|Connection terminated/);
    }).catch(() => undefined);
    await eventually(async () => (await metricSum(f.metrics.upstreamErrors, { resource: 'db' })) > before);
    await eventually(async () => (await metricSum(f.metrics.activeSessions, labels)) === 0);
  });
});
