import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { inspect } from 'node:util';
import { GatehouseError } from '../../../api/errors.js';
import { freePort, startPostgres, type PostgresServer, type PostgresUser } from '../../../testing/postgres-server.js';
import {
  encodeAuthentication, encodeBackendKeyData, encodeErrorResponse, encodeNoticeResponse, encodeParameterStatus, encodeReadyForQuery,
} from '../protocol/backend-encoders.js';
import { decodeBackendMessage, type BackendMessage, type RowField } from '../protocol/backend-messages.js';
import { FrameSplitter, type Frame } from '../protocol/frame-splitter.js';
import { encodeQuery } from '../protocol/frontend-encoders.js';
import { decodeFrontendMessage, decodeSASLInitialResponse } from '../protocol/frontend-messages.js';
import { noticeFromFields, type PgNotice } from '../protocol/notice-fields.js';
import { decodeStartupPhaseMessage } from '../protocol/startup-messages.js';
import { sendCancel } from './cancel-request.js';
import { md5PasswordHash } from './md5-password.js';
import { connectUpstream, type UpstreamConnection, type UpstreamConnectionOptions } from './upstream-connection.js';
import type { UpstreamTlsOptions } from './upstream-transport.js';
import { eventually } from '../../../testing/async-checks.js';

// ---- a minimal client over the handed-over socket, using only the codec ----

interface QueryResult {
  readonly fields: readonly RowField[];
  readonly rows: (string | null)[][];
  readonly tag?: string;
  readonly error?: PgNotice;
}

/** Runs simple queries on an UpstreamConnection the way the proxy will: leftover first, then the socket. */
class TestSession {
  private readonly splitter = new FrameSplitter({ source: 'server' });
  private readonly messages: BackendMessage[] = [];
  private wake: (() => void) | undefined;

  constructor(readonly connection: UpstreamConnection) {
    this.splitter.push(connection.leftover);
    connection.socket.on('data', (chunk: Buffer) => {
      this.splitter.push(chunk);
      for (let frame = this.splitter.next(); frame; frame = this.splitter.next()) this.messages.push(decodeBackendMessage(frame));
      this.wake?.();
    });
    connection.socket.resume();
  }

  send(sql: string): void {
    this.connection.socket.write(encodeQuery(sql));
  }

  async query(sql: string): Promise<QueryResult> {
    this.send(sql);
    return this.result();
  }

  /** Collects one simple-query response up to ReadyForQuery. */
  async result(): Promise<QueryResult> {
    let fields: readonly RowField[] = [];
    const rows: (string | null)[][] = [];
    let tag: string | undefined;
    let error: PgNotice | undefined;
    for (;;) {
      const message = await this.nextMessage();
      if (message.kind === 'RowDescription') fields = message.fields;
      else if (message.kind === 'DataRow') rows.push(message.columns.map((column) => column?.toString('utf8') ?? null));
      else if (message.kind === 'CommandComplete') tag = message.tag;
      else if (message.kind === 'ErrorResponse') error = noticeFromFields(message.fields);
      else if (message.kind === 'ReadyForQuery') return { fields, rows, tag, error };
    }
  }

  private async nextMessage(): Promise<BackendMessage> {
    while (this.messages.length === 0) await new Promise<void>((resolve) => { this.wake = resolve; });
    return this.messages.shift() as BackendMessage;
  }
}

async function rejection(action: () => Promise<unknown>): Promise<GatehouseError> {
  try {
    await action();
  } catch (error) {
    if (error instanceof GatehouseError) return error;
    throw error;
  }
  throw new Error('expected a GatehouseError');
}

/** Everything an error could leak through: message, details, stack, cause chain, inspection. */
function everythingAbout(error: GatehouseError): string {
  return [error.message, JSON.stringify(error.details), error.stack ?? '', inspect(error, { depth: 10 }), String(error.cause ?? '')].join('\n');
}

// ---- scripted fake servers, for behaviour a real PostgreSQL never shows ----

interface FakeClient {
  next(): Promise<Frame>;
  send(...frames: Buffer[]): void;
  readonly socket: Socket;
}

async function startFakeServer(script: (client: FakeClient) => Promise<void>): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    const splitter = new FrameSplitter({ source: 'client', phase: 'startup' });
    const waiting: ((frame: Frame) => void)[] = [];
    const frames: Frame[] = [];
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      splitter.push(chunk);
      for (let frame = splitter.next(); frame; frame = splitter.next()) {
        splitter.phase = 'regular';
        const waiter = waiting.shift();
        if (waiter) waiter(frame);
        else frames.push(frame);
      }
    });
    const client: FakeClient = {
      next: () => new Promise((resolve) => {
        const frame = frames.shift();
        if (frame) resolve(frame);
        else waiting.push(resolve);
      }),
      send: (...out) => socket.write(Buffer.concat(out)),
      socket,
    };
    script(client).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    close: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

/** Plays the server side of SCRAM up to the client-final message; returns the nonce it used. */
async function scramUntilClientFinal(client: FakeClient): Promise<void> {
  await client.next(); // StartupMessage
  client.send(encodeAuthentication({ kind: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256'] }));
  const initial = decodeFrontendMessage(await client.next());
  if (initial.kind !== 'PasswordMessage') throw new Error('expected SASLInitialResponse');
  const clientNonce = /r=([^,]+)/.exec(decodeSASLInitialResponse(initial.data).response?.toString() ?? '')?.[1];
  const serverFirst = `r=${clientNonce}${randomBytes(9).toString('base64')},s=${randomBytes(16).toString('base64')},i=4096`;
  client.send(encodeAuthentication({ kind: 'AuthenticationSASLContinue', data: Buffer.from(serverFirst) }));
  await client.next(); // SASLResponse with the client proof
}

function sessionStart(): Buffer {
  return Buffer.concat([
    encodeAuthentication({ kind: 'AuthenticationOk' }),
    encodeParameterStatus('server_version', '15.0 (fake)'),
    encodeBackendKeyData({ processId: 7, secretKey: 0xfeedf00d }),
    encodeReadyForQuery('I'),
  ]);
}

// ---- tests ----

const plainTls: UpstreamTlsOptions = { mode: 'disable' };

describe('connectUpstream against a real PostgreSQL without TLS', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
    await server.psql(`CREATE ROLE "päss_user" LOGIN PASSWORD '\u2168-p\u00E4ss'; GRANT ALL ON DATABASE app TO "päss_user"`);
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  const optionsFor = (who: PostgresUser, extra: Partial<UpstreamConnectionOptions> = {}): UpstreamConnectionOptions => ({
    host: server.host, port: server.port, database: server.database, user: who.user, password: who.password,
    tls: plainTls, applicationName: 'gatehouse-test', ...extra,
  });

  test.each([
    ['SCRAM-SHA-256', () => server.admin, 'scram-sha-256'],
    ['MD5', () => server.md5User, 'md5'],
    ['cleartext', () => server.cleartextUser, 'password'],
  ] as const)('authenticates with %s and hands over a working session', async (_name, who, method) => {
    const connection = await connectUpstream(optionsFor(who()));
    try {
      expect(connection.authMethod).toBe(method);
      expect(connection.encrypted).toBe(false);
      expect(connection.serverVersion).toMatch(/^1[5-7]\./);
      expect(connection.parameters.get('application_name')).toBe('gatehouse-test');
      expect(connection.parameters.get('client_encoding')).toBe('UTF8');
      expect(connection.backendKey?.processId).toBeGreaterThan(0);
      const session = new TestSession(connection);
      const result = await session.query("SELECT current_user AS who, 1 + 1 AS two, NULL::text AS nothing");
      expect(result.fields.map((field) => field.name)).toEqual(['who', 'two', 'nothing']);
      expect(result.fields[1].typeOid).toBe(23);
      expect(result.rows).toEqual([[who().user, '2', null]]);
      expect(result.tag).toBe('SELECT 1');
      const pid = await session.query('SELECT pg_backend_pid()');
      expect(Number(pid.rows[0][0])).toBe(connection.backendKey?.processId);
    } finally {
      await connection.close();
    }
    expect(connection.socket.destroyed).toBe(true);
  });

  test('applies SASLprep to a non-ASCII SCRAM password, as the server did when storing it', async () => {
    const connection = await connectUpstream(optionsFor({ user: 'päss_user', password: '\u2168-p\u00E4ss' }));
    await connection.close();
    expect(connection.authMethod).toBe('scram-sha-256');
  });

  test.each([
    ['SCRAM-SHA-256', () => server.admin],
    ['MD5', () => server.md5User],
    ['cleartext', () => server.cleartextUser],
  ] as const)('a wrong %s password is a typed error with SQLSTATE and server message, and no credential', async (_name, who) => {
    const password = `wrong-${randomBytes(6).toString('hex')}`;
    const error = await rejection(() => connectUpstream(optionsFor(who(), { password })));
    expect(error.code).toBe('GH_ERR_PG_UPSTREAM_REJECTED');
    expect(error.details).toMatchObject({ sqlstate: '28P01', user: who().user, address: `127.0.0.1:${server.port}` });
    expect(error.message).toMatch(/password authentication failed/);
    const text = everythingAbout(error);
    expect(text).not.toContain(password);
    expect(text).not.toContain(md5PasswordHash(who().user, password));
    expect(text).not.toContain(who().password);
  });

  test('an unknown database is reported with its SQLSTATE', async () => {
    const error = await rejection(() => connectUpstream(optionsFor(server.admin, { database: 'nope' })));
    expect(error.code).toBe('GH_ERR_PG_UPSTREAM_REJECTED');
    expect(error.details.sqlstate).toBe('3D000');
  });

  test('passes client startup parameters but not a second user or database', async () => {
    const connection = await connectUpstream(optionsFor(server.admin, { parameters: { DateStyle: 'ISO, DMY', search_path: 'pg_catalog' } }));
    const session = new TestSession(connection);
    expect((await session.query('SHOW search_path')).rows).toEqual([['pg_catalog']]);
    expect(connection.parameters.get('DateStyle')).toBe('ISO, DMY');
    await connection.close();
    const error = await rejection(() => connectUpstream(optionsFor(server.admin, { parameters: { user: 'postgres' } })));
    expect(error.code).toBe('GH_ERR_INVALID_ARGUMENT');
  });

  test('refuses an auth method the resource does not accept', async () => {
    const error = await rejection(() => connectUpstream(optionsFor(server.cleartextUser, { acceptedAuthMethods: ['scram-sha-256'] })));
    expect(error.code).toBe('GH_ERR_PG_UPSTREAM_AUTH_NOT_ACCEPTED');
  });

  test('prefer falls back to plaintext when the server answers N', async () => {
    const connection = await connectUpstream(optionsFor(server.admin, { tls: { mode: 'prefer' } }));
    expect(connection.encrypted).toBe(false);
    const session = new TestSession(connection);
    expect((await session.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows).toEqual([['f']]);
    await connection.close();
  });

  test.each(['require', 'verify-full'] as const)('%s fails against a server without TLS', async (mode) => {
    const error = await rejection(() => connectUpstream(optionsFor(server.admin, { tls: { mode } })));
    expect(error.code).toBe('GH_ERR_PG_UPSTREAM_TLS_REFUSED');
    expect(error.details.mode).toBe(mode);
  });

  test('reports SQL errors on the handed-over session like the server does', async () => {
    const connection = await connectUpstream(optionsFor(server.admin));
    const session = new TestSession(connection);
    const result = await session.query('SELECT * FROM no_such_table');
    expect(result.error).toMatchObject({ severity: 'ERROR', code: '42P01' });
    expect((await session.query('SELECT 1')).rows).toEqual([['1']]);
    await connection.close();
  });

  test('sendCancel cancels a running pg_sleep on the real backend', async () => {
    const connection = await connectUpstream(optionsFor(server.admin));
    const session = new TestSession(connection);
    const started = Date.now();
    session.send('SELECT pg_sleep(10)');
    await waitFor(async () => (await server.psql(`SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(10)' AND state = 'active'`)) === '1');
    const key = connection.backendKey;
    if (key === undefined) throw new Error('no BackendKeyData');
    await sendCancel({ host: server.host, port: server.port, ...key, tls: plainTls });
    const result = await session.result();
    expect(result.error).toMatchObject({ code: '57014' });
    expect(Date.now() - started).toBeLessThan(8000);
    expect((await session.query('SELECT 1')).rows).toEqual([['1']]);
    await connection.close();
  });

  test('a cancel with the wrong key cancels nothing', async () => {
    const connection = await connectUpstream(optionsFor(server.admin));
    const session = new TestSession(connection);
    session.send('SELECT pg_sleep(0.5), 1');
    const key = connection.backendKey;
    if (key === undefined) throw new Error('no BackendKeyData');
    await sendCancel({ host: server.host, port: server.port, processId: key.processId, secretKey: (key.secretKey + 1) >>> 0, tls: plainTls });
    const result = await session.result();
    expect(result.error).toBeUndefined();
    expect(result.rows).toEqual([['', '1']]);
    await connection.close();
  });
});

describe('connectUpstream failure modes', () => {
  const base = { host: '127.0.0.1', database: 'app', user: 'app', password: 'pw-do-not-leak', tls: plainTls };
  const fakes: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(fakes.splice(0).map((fake) => fake.close()));
  });
  const fake = async (script: (client: FakeClient) => Promise<void>) => {
    const started = await startFakeServer(script);
    fakes.push(started);
    return started.port;
  };

  test('connection refused is GH_ERR_PG_UPSTREAM_CONNECT', async () => {
    const port = await freePort();
    const error = await rejection(() => connectUpstream({ ...base, port }));
    expect(error.code).toBe('GH_ERR_PG_UPSTREAM_CONNECT');
    expect(error.message).toContain('ECONNREFUSED');
  });

  test('a server that never answers the startup times out in the authentication phase', async () => {
    const port = await fake(() => new Promise(() => undefined));
    const error = await rejection(() => connectUpstream({ ...base, port, authTimeoutMs: 200 }));
    expect(error.code).toBe('GH_ERR_PG_UPSTREAM_TIMEOUT');
    expect(error.details).toMatchObject({ phase: 'authentication', timeoutMs: 200 });
  });

  test('a server that never answers SSLRequest times out in the connect phase', async () => {
    const port = await fake(() => new Promise(() => undefined));
    const error = await rejection(() => connectUpstream({ ...base, port, tls: { mode: 'require' }, connectTimeoutMs: 200 }));
    expect(error.code).toBe('GH_ERR_PG_UPSTREAM_TIMEOUT');
    expect(error.details.phase).toBe('connect');
  });

  test('aborting rejects with the signal reason', async () => {
    const port = await fake(() => new Promise(() => undefined));
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('client went away')), 50);
    await expect(connectUpstream({ ...base, port, signal: controller.signal })).rejects.toThrow('client went away');
  });

  test('a server that closes mid-startup is GH_ERR_PG_UPSTREAM_CLOSED', async () => {
    const port = await fake(async (client) => {
      await client.next();
      client.socket.destroy();
    });
    const error = await rejection(() => connectUpstream({ ...base, port }));
    expect(error.code).toBe('GH_ERR_PG_UPSTREAM_CLOSED');
    expect(error.details.phase).toBe('authentication');
  });

  test('a server whose SCRAM signature is wrong is rejected as an impostor', async () => {
    const port = await fake(async (client) => {
      await scramUntilClientFinal(client);
      client.send(encodeAuthentication({ kind: 'AuthenticationSASLFinal', data: Buffer.from(`v=${randomBytes(32).toString('base64')}`) }), sessionStart());
    });
    const error = await rejection(() => connectUpstream({ ...base, port }));
    expect(error.code).toBe('GH_ERR_PG_UPSTREAM_SERVER_PROOF');
    expect(everythingAbout(error)).not.toContain(base.password);
  });

  test('a server that skips SASLFinal and says AuthenticationOk is rejected', async () => {
    const port = await fake(async (client) => {
      await scramUntilClientFinal(client);
      client.send(sessionStart());
    });
    expect((await rejection(() => connectUpstream({ ...base, port }))).code).toBe('GH_ERR_PG_UPSTREAM_SERVER_PROOF');
  });

  test('bytes after the answer to SSLRequest are refused (CVE-2021-23222)', async () => {
    const port = await fake(async (client) => {
      await client.next();
      client.send(Buffer.from('S'), encodeErrorResponse({ severity: 'FATAL', code: '28P01', message: 'injected' }));
    });
    const error = await rejection(() => connectUpstream({ ...base, port, tls: { mode: 'require' } }));
    expect(error.code).toBe('GH_ERR_PG_UPSTREAM_PROTOCOL');
  });

  test('a server message that echoes the password is scrubbed', async () => {
    const port = await fake(async (client) => {
      await client.next();
      client.send(encodeErrorResponse({ severity: 'FATAL', code: '28000', message: `no entry for password ${base.password}`, detail: base.password }));
    });
    const error = await rejection(() => connectUpstream({ ...base, port }));
    expect(error.code).toBe('GH_ERR_PG_UPSTREAM_REJECTED');
    expect(error.details.serverMessage).toBe('no entry for password [REDACTED]');
    expect(everythingAbout(error)).not.toContain(base.password);
  });

  test('trust is accepted by default, and the startup carries user, database and application_name', async () => {
    let parameters: ReadonlyMap<string, string> | undefined;
    const port = await fake(async (client) => {
      const startup = decodeStartupPhaseMessage((await client.next()).payload);
      if (startup.kind === 'StartupMessage') parameters = startup.parameters;
      client.send(sessionStart());
    });
    const connection = await connectUpstream({ ...base, port, applicationName: 'orders-api' });
    expect(connection.authMethod).toBe('trust');
    expect(connection.backendKey).toEqual({ processId: 7, secretKey: 0xfeedf00d });
    expect(connection.serverVersion).toBe('15.0 (fake)');
    expect(parameters).toEqual(new Map([['user', 'app'], ['database', 'app'], ['application_name', 'orders-api']]));
    connection.socket.destroy();
  });

  test('bytes after ReadyForQuery are handed over, in order with later ones, none lost', async () => {
    const first = encodeNoticeResponse({ severity: 'NOTICE', code: '00000', message: 'first' });
    const second = encodeNoticeResponse({ severity: 'NOTICE', code: '00000', message: 'second' });
    const port = await fake(async (client) => {
      await client.next();
      client.send(sessionStart(), first);
      setTimeout(() => client.send(second), 20);
    });
    const connection = await connectUpstream({ ...base, port });
    const later: Buffer[] = [];
    await new Promise((resolve) => setTimeout(resolve, 60));
    connection.socket.on('data', (chunk: Buffer) => later.push(chunk));
    connection.socket.resume();
    await waitFor(async () => Buffer.concat([connection.leftover, ...later]).length >= first.length + second.length);
    expect(Buffer.concat([connection.leftover, ...later])).toEqual(Buffer.concat([first, second]));
    connection.socket.destroy();
  });

  test('a message other than authentication before AuthenticationOk is a protocol error', async () => {
    const port = await fake(async (client) => {
      await client.next();
      client.send(encodeReadyForQuery('I'));
    });
    expect((await rejection(() => connectUpstream({ ...base, port }))).code).toBe('GH_ERR_PG_UPSTREAM_PROTOCOL');
  });
});

describe('connectUpstream against a real PostgreSQL with TLS', () => {
  let server: PostgresServer;
  let otherCaPem: string;
  beforeAll(async () => {
    server = await startPostgres({ tls: true });
    otherCaPem = await unrelatedCaPem();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  const connect = (tls: UpstreamTlsOptions, host: string = server.host) => connectUpstream({
    host, port: server.port, database: server.database, user: server.admin.user, password: server.admin.password, tls,
  });

  async function expectEncrypted(connection: UpstreamConnection, encrypted: boolean): Promise<void> {
    expect(connection.encrypted).toBe(encrypted);
    const session = new TestSession(connection);
    const result = await session.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    expect(result.rows).toEqual([[encrypted ? 't' : 'f']]);
    await connection.close();
  }

  test('disable stays plaintext even when the server offers TLS', async () => {
    await expectEncrypted(await connect({ mode: 'disable' }), false);
  });

  test('prefer upgrades to TLS', async () => {
    await expectEncrypted(await connect({ mode: 'prefer' }), true);
  });

  test('require upgrades to TLS without checking the certificate', async () => {
    await expectEncrypted(await connect({ mode: 'require' }), true);
  });

  test('verify-full accepts the server certificate signed by the given CA, by IP and by DNS name', async () => {
    await expectEncrypted(await connect({ mode: 'verify-full', caPem: server.caPem }), true);
    await expectEncrypted(await connect({ mode: 'verify-full', caPem: server.caPem }, 'localhost'), true);
  });

  test('verify-full fails with a CA that did not sign the certificate', async () => {
    const error = await rejection(() => connect({ mode: 'verify-full', caPem: otherCaPem }));
    expect(error.code).toBe('GH_ERR_PG_UPSTREAM_TLS');
  });

  test('verify-full fails without a CA (the system CAs do not know the test CA)', async () => {
    expect((await rejection(() => connect({ mode: 'verify-full' }))).code).toBe('GH_ERR_PG_UPSTREAM_TLS');
  });

  test('verify-full fails when the certificate does not name the server', async () => {
    const error = await rejection(() => connect({ mode: 'verify-full', caPem: server.caPem, servername: 'orders-db.payments.svc' }));
    expect(error.code).toBe('GH_ERR_PG_UPSTREAM_TLS');
    expect(error.message).toMatch(/orders-db\.payments\.svc/);
  });

  test('sendCancel works over TLS', async () => {
    const connection = await connect({ mode: 'verify-full', caPem: server.caPem });
    const session = new TestSession(connection);
    session.send('SELECT pg_sleep(10)');
    await waitFor(async () => (await server.psql(`SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(10)' AND state = 'active'`)) === '1');
    const key = connection.backendKey;
    if (key === undefined) throw new Error('no BackendKeyData');
    await sendCancel({ host: server.host, port: server.port, ...key, tls: { mode: 'verify-full', caPem: server.caPem } });
    expect((await session.result()).error).toMatchObject({ code: '57014' });
    await connection.close();
  });
});

function waitFor(condition: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  return eventually('condition', condition, timeoutMs, 25);
}

/** A self-signed CA that signed nothing the server uses. */
async function unrelatedCaPem(): Promise<string> {
  const { execFile } = await import('node:child_process');
  const { mkdtemp, readFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-ca-'));
  await new Promise<void>((resolve, reject) => execFile('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-subj', '/CN=unrelated-ca', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt')], (error) => (error ? reject(error) : resolve())));
  const pem = await readFile(join(dir, 'ca.crt'), 'utf8');
  await rm(dir, { recursive: true, force: true });
  return pem;
}
