// The extended query protocol and FunctionCall through the sidecar, against a real PostgreSQL 15:
// node-postgres (pipelined queries on one client), pgbench in extended and prepared mode, and a raw
// wire client for what real clients rarely send (FunctionCall, messages mixed into a failed pipeline).
import pg from 'pg';
import type { BackendMessage } from '../protocol/backend-messages.js';
import {
  encodeBind, encodeClose, encodeDescribe, encodeExecute, encodeFunctionCall, encodeParse, encodeQuery, encodeSync,
} from '../protocol/frontend-encoders.js';
import { RawClient, firstError } from '../testing/raw-client.js';
import { APP_OWNER, runProcess, startSidecarFixture, type SidecarFixture } from '../testing/sidecar-fixture.js';

const RULES = `  rules:
    - {name: app-access, effect: allow, operations: [read, write, transaction, session]}
    - {name: no-ddl, effect: deny, operations: [ddl, truncate], message: "schema changes go through migrations"}
  masking:
    - {columns: [card_number], strategy: redact}
`;

const WITH_DELETE = RULES.replace('[read, write, transaction, session]', '[read, write, delete, transaction, session]');
const WITH_CALL = RULES.replace('[read, write, transaction, session]', '[read, write, call, transaction, session]');
const WITH_ADMIN = RULES.replace('[read, write, transaction, session]', '[read, write, call, admin, transaction, session]');

let f: SidecarFixture;

beforeAll(async () => {
  f = await startSidecarFixture({ policyRules: RULES });
});

afterAll(async () => {
  await f?.stop();
});

afterEach(async () => {
  await f.reload(RULES);
});

function kinds(messages: readonly BackendMessage[]): string[] {
  return messages.map((message) => message.kind);
}

function text(value: string): Buffer {
  return Buffer.from(value, 'utf8');
}

/** Parse, Bind, Execute of one statement (no Sync). */
function statement(sql: string, params: (string | null)[] = [], name = ''): Buffer[] {
  return [
    encodeParse({ statement: name, query: sql, paramTypes: [] }),
    encodeBind({ portal: '', statement: name, paramFormats: [], params: params.map((p) => (p === null ? null : text(p))), resultFormats: [] }),
    encodeExecute({ portal: '', maxRows: 0 }),
  ];
}

function send(client: RawClient, frames: Buffer[]): void {
  client.send(Buffer.concat(frames));
}

describe('Parse, Bind, Execute', () => {
  it('denies at Parse: neither the Bind nor the Execute of a denied statement reaches the server', async () => {
    const client = await RawClient.started(f.port);
    send(client, [
      ...statement('DELETE FROM orders WHERE id = $1', ['1']),
      encodeDescribe({ target: 'portal', name: '' }),
      encodeSync(),
    ]);
    const answer = await client.untilReady();
    expect(kinds(answer)).toEqual(['ErrorResponse', 'ReadyForQuery']);
    expect(firstError(answer)?.get('C')).toBe('42501');
    expect(firstError(answer)?.get('M')).toMatch(/no rule allows delete on orders/);
    expect(await f.adminPsql('SELECT count(*) FROM orders WHERE id = 1')).toBe('1');
    // The connection is usable: the next pipeline runs.
    send(client, [...statement('SELECT count(*) FROM orders WHERE id = $1', ['1']), encodeSync()]);
    expect(kinds(await client.untilReady())).toEqual(['ParseComplete', 'BindComplete', 'DataRow', 'CommandComplete', 'ReadyForQuery']);
    client.destroy();
  });

  it('discards everything after a denial until Sync, as the server does, and stays in step afterwards', async () => {
    const client = await RawClient.started(f.port);
    send(client, [
      ...statement('DELETE FROM orders WHERE id = 2'),
      ...statement('INSERT INTO orders (customer_id, total) VALUES (1, 3131.31)'),
      // A simple Query inside a failed pipeline is skipped by the server too.
      encodeQuery('INSERT INTO orders (customer_id, total) VALUES (1, 3232.32)'),
      encodeSync(),
    ]);
    expect(kinds(await client.untilReady())).toEqual(['ErrorResponse', 'ReadyForQuery']);
    expect(await f.adminPsql('SELECT count(*) FROM orders WHERE total IN (3131.31, 3232.32)')).toBe('0');
    // In step: a masked column is still masked, a denial still reads as a denial.
    send(client, [...statement('SELECT id, card_number FROM customers WHERE id = 1'), encodeSync()]);
    const rows = await client.untilReady();
    expect(kinds(rows)).toEqual(['ParseComplete', 'BindComplete', 'DataRow', 'CommandComplete', 'ReadyForQuery']);
    expect(client.received.includes('4111 1111 1111 1111')).toBe(false);
    client.send(encodeQuery('TRUNCATE orders'));
    const denied = await client.untilReady();
    expect(firstError(denied)?.get('C')).toBe('42501');
    expect(firstError(denied)?.get('M')).toBe('gatehouse: schema changes go through migrations');
    client.destroy();
  });

  it('stays in step after a server-side error in a pipeline that also holds a Query and a FunctionCall', async () => {
    const client = await RawClient.started(f.port);
    send(client, [
      ...statement('SELECT 1/(count(*) - count(*)) FROM orders'),
      encodeQuery('SELECT 1'),
      encodeFunctionCall({ functionOid: 1397 /* int4abs */, argFormats: [], args: [text('-1')], resultFormat: 0 }),
      ...statement('SELECT card_number FROM customers WHERE id = 1'),
      encodeSync(),
    ]);
    const failed = await client.untilReady();
    expect(kinds(failed)).toEqual(['ParseComplete', 'BindComplete', 'ErrorResponse', 'ReadyForQuery']);
    expect(firstError(failed)?.get('C')).toBe('22012');
    send(client, [...statement('SELECT id, card_number FROM customers ORDER BY id'), encodeSync()]);
    const rows = (await client.untilReady()).filter((m) => m.kind === 'DataRow');
    expect(rows.map((m) => (m.kind === 'DataRow' ? m.columns[1]?.toString() ?? null : undefined))).toEqual(['[REDACTED]', '[REDACTED]', null]);
    client.send(encodeQuery('DROP TABLE orders'));
    expect(firstError(await client.untilReady())?.get('C')).toBe('42501');
    client.destroy();
  });

  it('judges a Bind again after a policy reload, including a Bind to the unnamed statement of a skipped Parse', async () => {
    await f.reload(WITH_DELETE);
    const client = await RawClient.started(f.port);
    send(client, [encodeParse({ statement: '', query: 'DELETE FROM orders WHERE id = 3', paramTypes: [] }), encodeSync()]);
    expect(kinds(await client.untilReady())).toEqual(['ParseComplete', 'ReadyForQuery']);
    await f.reload(RULES);
    // The Execute of a portal that does not exist fails, so the server skips the Parse after it:
    // the unnamed statement it holds is still the DELETE.
    send(client, [encodeExecute({ portal: 'nope', maxRows: 0 }), encodeParse({ statement: '', query: 'SELECT 1', paramTypes: [] }), encodeSync()]);
    expect(firstError(await client.untilReady())?.get('C')).toBe('34000');
    send(client, [encodeBind({ portal: '', statement: '', paramFormats: [], params: [], resultFormats: [] }), encodeExecute({ portal: '', maxRows: 0 }), encodeSync()]);
    const answer = await client.untilReady();
    expect(firstError(answer)?.get('C')).toBe('42501');
    expect(await f.adminPsql('SELECT count(*) FROM orders WHERE id = 3')).toBe('1');
    client.destroy();
  });

  it('judges a Bind to a statement prepared with SQL PREPARE, and to one it never saw, by the policy in force', async () => {
    await f.reload(WITH_DELETE);
    const client = await RawClient.started(f.port);
    client.send(encodeQuery('PREPARE del AS DELETE FROM orders WHERE id = 4'));
    expect(firstError(await client.untilReady())).toBeUndefined();
    await f.reload(RULES);
    send(client, [encodeBind({ portal: '', statement: 'del', paramFormats: [], params: [], resultFormats: [] }), encodeExecute({ portal: '', maxRows: 0 }), encodeSync()]);
    expect(firstError(await client.untilReady())?.get('C')).toBe('42501');
    expect(await f.adminPsql('SELECT count(*) FROM orders WHERE id = 4')).toBe('1');
    send(client, [encodeBind({ portal: '', statement: 'never_parsed', paramFormats: [], params: [], resultFormats: [] }), encodeSync()]);
    expect(firstError(await client.untilReady())?.get('C')).toBe('42501');
    client.destroy();
  });

  it('keeps a PREPARE that failed on the server from standing in for the statement the server still holds', async () => {
    await f.reload(WITH_DELETE);
    const client = await RawClient.started(f.port);
    client.send(encodeQuery('PREPARE p AS DELETE FROM orders WHERE id = 5'));
    expect(firstError(await client.untilReady())).toBeUndefined();
    await f.reload(RULES);
    client.send(encodeQuery('PREPARE p AS SELECT 1'));
    expect(firstError(await client.untilReady())?.get('C')).toBe('42P05');
    client.send(encodeQuery('EXECUTE p'));
    expect(firstError(await client.untilReady())?.get('C')).toBe('42501');
    send(client, [encodeParse({ statement: 'p', query: 'SELECT 2', paramTypes: [] }), encodeSync()]);
    expect(firstError(await client.untilReady())?.get('C')).toBe('42P05');
    send(client, [encodeBind({ portal: '', statement: 'p', paramFormats: [], params: [], resultFormats: [] }), encodeExecute({ portal: '', maxRows: 0 }), encodeSync()]);
    expect(firstError(await client.untilReady())?.get('C')).toBe('42501');
    expect(await f.adminPsql('SELECT count(*) FROM orders WHERE id = 5')).toBe('1');
    client.destroy();
  });

  it('knows a statement prepared by a PREPARE sent through Parse, and judges its EXECUTE by the policy in force', async () => {
    await f.reload(WITH_DELETE);
    const client = await RawClient.started(f.port);
    send(client, [...statement('PREPARE via_parse AS DELETE FROM orders WHERE id = 8'), encodeSync()]);
    expect(firstError(await client.untilReady())).toBeUndefined();
    await f.reload(WITH_CALL);
    client.send(encodeQuery('EXECUTE via_parse'));
    const denied = await client.untilReady();
    expect(firstError(denied)?.get('C')).toBe('42501');
    expect(firstError(denied)?.get('M')).toMatch(/no rule allows delete on orders/);
    expect(await f.adminPsql('SELECT count(*) FROM orders WHERE id = 8')).toBe('1');
    client.destroy();
  });

  it('keeps a Close that the server skipped from hiding the statement it still holds', async () => {
    await f.reload(WITH_DELETE);
    const client = await RawClient.started(f.port);
    send(client, [encodeParse({ statement: 'd6', query: 'DELETE FROM orders WHERE id = 6', paramTypes: [] }), encodeSync()]);
    await client.untilReady();
    await f.reload(RULES);
    send(client, [encodeExecute({ portal: 'nope', maxRows: 0 }), encodeClose({ target: 'statement', name: 'd6' }), encodeSync()]);
    await client.untilReady();
    send(client, [encodeBind({ portal: '', statement: 'd6', paramFormats: [], params: [], resultFormats: [] }), encodeExecute({ portal: '', maxRows: 0 }), encodeSync()]);
    expect(firstError(await client.untilReady())?.get('C')).toBe('42501');
    expect(await f.adminPsql('SELECT count(*) FROM orders WHERE id = 6')).toBe('1');
    client.destroy();
  });
});

describe('pipelining', () => {
  it('runs many node-postgres queries in flight on one client, a denied one among them', async () => {
    const client = await f.pgClient();
    try {
      const queries = Array.from({ length: 30 }, (_, i) => {
        if (i === 13) return client.query('DELETE FROM orders WHERE id = $1', [7]);
        if (i % 3 === 0) return client.query('SELECT $1::int AS n', [i]);
        if (i % 3 === 1) return client.query(`SELECT ${i} AS n`);
        return client.query({ name: 'by-id', text: 'SELECT $1::int AS n, card_number FROM customers WHERE id = 1', values: [i] });
      });
      const results = await Promise.allSettled(queries);
      results.forEach((result, i) => {
        if (i === 13) {
          expect(result.status).toBe('rejected');
          expect((result as PromiseRejectedResult).reason.code).toBe('42501');
          return;
        }
        expect(result.status).toBe('fulfilled');
        const rows = (result as PromiseFulfilledResult<pg.QueryResult>).value.rows;
        expect(rows[0].n).toBe(i);
        if (i % 3 === 2) expect(rows[0].card_number).toBe('[REDACTED]');
      });
      expect(await f.adminPsql('SELECT count(*) FROM orders WHERE id = 7')).toBe('1');
    } finally {
      await client.end();
    }
  });

  it.each(['extended', 'prepared', 'simple'])('runs pgbench -M %s through the sidecar', async (mode) => {
    if (mode === 'extended') {
      const env = { ...process.env, PGPASSWORD: APP_OWNER.password };
      const init = await runProcess('pgbench', ['-i', '-q', '-s', '1', '-h', '127.0.0.1', '-p', String(f.server.port), '-U', APP_OWNER.user, 'app'], { env });
      expect(init.code).toBe(0);
    }
    const result = await runProcess('pgbench', ['-n', '-M', mode, '-c', '2', '-j', '2', '-t', '40', '-h', '127.0.0.1', '-p', String(f.port), '-U', 'whoever', 'whatever'],
      { env: { ...process.env, PGPASSWORD: 'not-the-real-one' } });
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/number of transactions actually processed: 80\/80/);
    expect(result.stdout).toMatch(/number of failed transactions: 0/);
  });
});

describe('FunctionCall', () => {
  async function functionOid(signature: string): Promise<number> {
    return Number(await f.adminPsql(`SELECT '${signature}'::regprocedure::oid`));
  }

  function int4(value: number): Buffer {
    const buffer = Buffer.alloc(4);
    buffer.writeInt32BE(value);
    return buffer;
  }

  it('denies a FunctionCall the policy does not allow, with 42501, and the connection stays usable', async () => {
    const client = await RawClient.started(f.port);
    client.send(encodeFunctionCall({ functionOid: await functionOid('int4abs(int4)'), argFormats: [1], args: [int4(-5)], resultFormat: 1 }));
    const answer = await client.untilReady();
    expect(kinds(answer)).toEqual(['ErrorResponse', 'ReadyForQuery']);
    expect(firstError(answer)?.get('C')).toBe('42501');
    client.send(encodeQuery('SELECT 1'));
    expect(kinds(await client.untilReady())).toEqual(['RowDescription', 'DataRow', 'CommandComplete', 'ReadyForQuery']);
    client.destroy();
  });

  it('counts a FunctionCall as admin, since the function behind an OID may be pg_terminate_backend', async () => {
    await f.reload(WITH_CALL);
    const victim = await f.pgClient();
    victim.on('error', () => undefined);
    const pid = Number((await victim.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    const client = await RawClient.started(f.port);
    client.send(encodeFunctionCall({
      functionOid: await functionOid('pg_terminate_backend(int4, int8)'),
      argFormats: [1], args: [int4(pid), Buffer.alloc(8)], resultFormat: 1,
    }));
    const answer = await client.untilReady();
    expect(firstError(answer)?.get('C')).toBe('42501');
    expect((await victim.query('SELECT 1 AS alive')).rows).toEqual([{ alive: 1 }]);
    await victim.end();
    client.destroy();
  });

  it('passes an allowed FunctionCall and relays the result', async () => {
    await f.reload(WITH_ADMIN);
    const client = await RawClient.started(f.port);
    client.send(encodeFunctionCall({ functionOid: await functionOid('int4abs(int4)'), argFormats: [1], args: [int4(-5)], resultFormat: 1 }));
    const answer = await client.untilReady();
    const response = answer.find((m) => m.kind === 'FunctionCallResponse');
    expect(response?.kind === 'FunctionCallResponse' && response.result?.readInt32BE(0)).toBe(5);
    client.destroy();
  });
});
