// Hostile and broken input against the sidecar in front of a real PostgreSQL 15: malformed and
// oversized frames, garbage before the startup, clients that vanish mid-message or say nothing, an
// upstream that restarts. Each gets a clear error where one can be sent, and a healthy session
// running alongside keeps working throughout.
import pg from 'pg';
import { encodeParse, encodeQuery } from '../protocol/frontend-encoders.js';
import { encodeSSLRequest, encodeStartupMessage } from '../protocol/startup-messages.js';
import { RawClient, firstError } from '../testing/raw-client.js';
import { eventually, metricSum, startSidecarFixture, type SidecarFixture } from '../testing/sidecar-fixture.js';

const RULES = `  rules:
    - {name: app-access, effect: allow, operations: [read, write, transaction, session]}
`;

const MAX_MESSAGE = 64 * 1024;

let f: SidecarFixture;
let healthy: pg.Client;
let healthyQueries = 0;

beforeAll(async () => {
  f = await startSidecarFixture({
    policyRules: RULES,
    sidecar: { limits: { maxClientMessageBytes: MAX_MESSAGE, startupTimeoutMs: 400 } },
  });
  healthy = await healthyClient();
});

async function healthyClient(): Promise<pg.Client> {
  const client = await f.pgClient({ application_name: 'healthy' });
  // Only the upstream restart may end it; that test checks it was told.
  client.on('error', () => undefined);
  return client;
}

afterAll(async () => {
  await healthy?.end().catch(() => undefined);
  await f?.stop();
});

/** The parallel session that must not notice anything. */
async function healthyStillWorks(): Promise<void> {
  healthyQueries++;
  const { rows } = await healthy.query('SELECT count(*)::int AS n, $1::int AS i FROM customers', [healthyQueries]);
  expect(rows).toEqual([{ n: 3, i: healthyQueries }]);
}

/** A frame with a type byte and a length word as given, whatever the body. */
function frame(type: string, length: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(length, 1);
  return Buffer.concat([header, body]);
}

/** Sends `bytes` on a started session; returns the FATAL it gets, once the sidecar has closed the connection. */
async function fatalFor(bytes: Buffer): Promise<ReadonlyMap<string, string> | undefined> {
  const client = await RawClient.started(f.port);
  client.send(bytes);
  const answer = await client.untilReady();
  await client.closed();
  return firstError(answer);
}

afterEach(async () => {
  await healthyStillWorks();
});

describe('malformed frames', () => {
  it('ends the session with a FATAL on a length word below the minimum', async () => {
    const error = await fatalFor(frame('Q', 2));
    expect(error?.get('S')).toBe('FATAL');
    expect(error?.get('C')).toBe('08P01');
    expect(error?.get('M')).toMatch(/invalid length 2/);
  });

  it('ends the session with a FATAL on an unknown message type', async () => {
    const error = await fatalFor(frame('z', 4));
    expect(error?.get('C')).toBe('08P01');
    expect(error?.get('M')).toMatch(/Unknown PostgreSQL .*message type/);
  });

  it('ends the session with a FATAL on a Parse whose query string lacks its NUL', async () => {
    // A Parse as encodeParse makes it, cut before the query's terminator and the parameter count.
    const whole = encodeParse({ statement: '', query: 'SELECT 1', paramTypes: [] });
    const body = whole.subarray(5, whole.length - 3);
    expect(body.toString('latin1')).toBe('\0SELECT 1');
    const error = await fatalFor(frame('P', body.length + 4, body));
    expect(error?.get('C')).toBe('08P01');
    expect(error?.get('M')).toMatch(/Malformed PostgreSQL Parse/);
  });

  it('refuses messages a client may not send after startup (a password message)', async () => {
    const error = await fatalFor(frame('p', 8, Buffer.from('abc\0', 'latin1')));
    expect(error?.get('C')).toBe('08P01');
    expect(error?.get('M')).toMatch(/unexpected PasswordMessage/);
  });

  it('counts protocol errors', async () => {
    expect(await metricSum(f.metrics.protocolErrors, { resource: 'db' })).toBeGreaterThanOrEqual(4);
  });
});

describe('oversized frames', () => {
  it('passes a message just under maxClientMessageBytes', async () => {
    const client = await RawClient.started(f.port);
    const sql = `SELECT length('${'x'.repeat(MAX_MESSAGE - 100)}')`;
    client.send(encodeQuery(sql));
    const answer = await client.untilReady();
    expect(firstError(answer)).toBeUndefined();
    client.destroy();
  });

  it('refuses a message over maxClientMessageBytes as soon as its header arrives', async () => {
    const client = await RawClient.started(f.port);
    // Only the header of a 1 GiB Query: the sidecar must not wait for (or buffer) the body.
    client.send(frame('Q', 1024 ** 3));
    const error = firstError(await client.untilReady());
    expect(error?.get('C')).toBe('08P01');
    expect(error?.get('M')).toMatch(/above the 65536-byte limit/);
    await client.closed();
  });
});

describe('before and during startup', () => {
  it('answers garbage before the startup (an HTTP request) with a FATAL and closes', async () => {
    const client = await RawClient.open(f.port);
    client.send(Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 'latin1'));
    const error = firstError(await client.untilReady());
    expect(error?.get('S')).toBe('FATAL');
    expect(error?.get('M')).toMatch(/invalid length/);
    await client.closed();
  });

  it('refuses an unsupported protocol version and a non-UTF8 client encoding', async () => {
    const old = await RawClient.open(f.port);
    const v2 = encodeStartupMessage({ user: 'x' });
    v2.writeInt32BE(0x00020000, 4);
    old.send(v2);
    expect(firstError(await old.untilReady())?.get('M')).toMatch(/protocol 2\.0/);
    await old.closed();
    const latin1 = await RawClient.open(f.port);
    latin1.send(encodeStartupMessage({ user: 'x', client_encoding: 'LATIN1' }));
    const error = firstError(await latin1.untilReady());
    expect(error?.get('C')).toBe('0A000');
    expect(error?.get('M')).toMatch(/client_encoding LATIN1 is not supported/);
    await latin1.closed();
  });

  it('ends a connection that sends no startup message in time', async () => {
    for (const opening of [Buffer.alloc(0), encodeSSLRequest()]) {
      const started = Date.now();
      const client = await RawClient.open(f.port);
      client.rawOnly = opening.length > 0; // the one-byte 'N' is not a framed message
      if (opening.length > 0) client.send(opening);
      await client.closed(5000);
      expect(Date.now() - started).toBeLessThan(3000);
      expect(client.received.includes('no startup message in time')).toBe(true);
    }
  });
});

describe('clients that vanish', () => {
  it('cleans up after half a startup message or half a frame, then a destroyed socket', async () => {
    const startup = encodeStartupMessage({ user: 'x', database: 'y' });
    const halfStartup = await RawClient.open(f.port);
    halfStartup.send(startup.subarray(0, startup.length - 5));
    halfStartup.destroy();
    const halfFrame = await RawClient.started(f.port);
    const query = encodeQuery(`SELECT '${'y'.repeat(1000)}'`);
    halfFrame.send(query.subarray(0, 500));
    await new Promise((resolve) => setTimeout(resolve, 50));
    halfFrame.destroy();
    const midResult = await RawClient.started(f.port);
    midResult.send(encodeQuery('SELECT i, repeat(\'z\', 500) FROM generate_series(1, 20000) AS i'));
    await midResult.until((message) => message.kind === 'DataRow');
    midResult.destroy();
    await eventually(async () => (await metricSum(f.metrics.activeSessions, { resource: 'db' })) === 1); // the healthy one
    await eventually(async () => (await f.adminPsql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'app_owner' AND application_name = 'gatehouse'")) === '0');
  });
});

describe('upstream restart', () => {
  it('tells a live session with a FATAL, and serves new sessions once the server is back', async () => {
    const client = await RawClient.started(f.port);
    const upstreamErrors = await metricSum(f.metrics.upstreamErrors, { resource: 'db' });
    await f.server.restart();
    const answer = await client.untilReady();
    const error = firstError(answer);
    expect(error?.get('S')).toBe('FATAL');
    expect(error?.get('C')).toBe('57P01');
    await client.closed();
    expect(await metricSum(f.metrics.upstreamErrors, { resource: 'db' })).toBeGreaterThan(upstreamErrors);
    // The healthy session's server went away too: it is told, and a new session works.
    await expect(healthy.query('SELECT 1')).rejects.toThrow();
    await healthy.end().catch(() => undefined);
    expect((await f.psql('SELECT count(*) FROM customers')).stdout).toBe('3');
    healthy = await healthyClient();
  });
});
