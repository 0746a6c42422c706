// `gatehouse sidecar` as a pod runs it: the CLI in a child process of its own, against a real
// discovery server over TLS (with a token authenticator the test controls) and a real PostgreSQL,
// talked to with real psql. Also how flags and env resolve, and the errors for a pod set up wrong.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { GatehouseError } from '../../api/errors.js';
import { silentLogger } from '../../api/logging/logger.js';
import { loadDiscoveryProto } from '../../api/proto/discovery-proto.js';
import type { SidecarSnapshot } from '../../api/snapshot/sidecar-snapshot.js';
import { createControlPlaneMetrics } from '../../operator/control-plane/control-plane-metrics.js';
import type { AuthenticationResult, NodeAuthenticator } from '../../operator/control-plane/node-stream.js';
import { SnapshotCache } from '../../operator/control-plane/snapshot-cache.js';
import { startDiscoveryServer, type DiscoveryServer, type ExtraDiscoveryHandlers } from '../../operator/control-plane/stream-server.js';
import { setsFor, TEST_TLS } from '../../operator/control-plane/testing/discovery-fixture.js';
import { generateCheckpointSigner, type CheckpointSigner } from '../../api/recordings/checkpoint.js';
import { startRecordingService, type RecordingService } from '../../operator/recordings/recording-service.js';
import { bufferedIO } from '../io.js';
import { runCli } from '../main.js';
import { APP_OWNER, manifests, preparePaymentsDatabase, snapshotFrom } from '../../sidecar/postgres/testing/sidecar-fixture.js';
import { InteractivePsql, psqlOnce } from '../../testing/interactive-psql.js';
import { freePort, startPostgres, type PostgresServer } from '../../testing/postgres-server.js';
import { DEFAULT_RECORDING_SPOOL, DEFAULT_SIDECAR_ADMIN_PORT, sidecarSettings } from './sidecar.js';

const MAIN = join(process.cwd(), 'cli', 'main.ts');
const NODE = 'payments/app-pod';
const RULES = '  rules:\n    - {name: read, effect: allow, operations: [read, transaction, session]}\n    - {name: no-ddl, effect: deny, operations: [ddl], message: schema changes go through migrations}';

/** Accepts exactly the tokens in `valid` as proof of NODE, and remembers every token it was shown. */
class TokenList implements NodeAuthenticator {
  readonly valid = new Set<string>();
  readonly seen: string[] = [];

  async authenticate(token: string): Promise<AuthenticationResult> {
    this.seen.push(token);
    return this.valid.has(token) ? { nodeId: NODE } : new GatehouseError('GH_ERR_TOKEN_EXPIRED', { detail: 'not a current token' });
  }
}

interface ControlPlane {
  readonly cache: SnapshotCache;
  readonly server: DiscoveryServer;
}

async function startControlPlane(tokens: TokenList, port = 0, cache = new SnapshotCache(), snapshotTtlMs?: number, extraHandlers?: ExtraDiscoveryHandlers): Promise<ControlPlane> {
  const server = await startDiscoveryServer({
    proto: loadDiscoveryProto(),
    watcher: cache,
    authenticator: tokens,
    metrics: createControlPlaneMetrics({ registry: new Registry(), status: cache }),
    logger: silentLogger(),
    transport: { kind: 'tls', keyPem: TEST_TLS.keyPem, certPem: TEST_TLS.certPem },
    host: '127.0.0.1',
    port,
    debounceMs: 5,
    ...(snapshotTtlMs !== undefined ? { snapshotTtlMs } : {}),
    ...(extraHandlers ? { extraHandlers } : {}),
  });
  return { cache, server };
}

/** The operator as far as recordings go: its store behind ReportEvents on the same TLS discovery server. */
async function startRecordingControlPlane(tokens: TokenList, recordingsDir: string, signer: CheckpointSigner, port = 0, cache = new SnapshotCache()): Promise<ControlPlane & { recordings: RecordingService; stop(): Promise<void> }> {
  const recordings = await startRecordingService({ dir: recordingsDir, signer, registry: new Registry(), logger: silentLogger(), authenticator: tokens });
  const controlPlane = await startControlPlane(tokens, port, cache, undefined, { ReportEvents: recordings.reportEvents });
  return {
    ...controlPlane,
    recordings,
    // As the operator shuts down: the server stops taking uploads, then open sessions are sealed interrupted.
    stop: async () => {
      await controlPlane.server.close(0);
      await recordings.close();
    },
  };
}

/** Every line of every recording file under `dir`. */
async function recordedText(dir: string): Promise<string> {
  const days = await readdir(dir).catch(() => [] as string[]);
  let text = '';
  for (const day of days.filter((name) => !name.startsWith('.'))) {
    for (const file of await readdir(join(dir, day))) text += await readFile(join(dir, day, file), 'utf8');
  }
  return text;
}

/** The CLI as a child process, its output collected. */
class SidecarProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(args: readonly string[], env: NodeJS.ProcessEnv) {
    // NODE_OPTIONS is jest's (--experimental-vm-modules); the sidecar runs as a plain node process.
    this.child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'sidecar', ...args], {
      env: { ...process.env, NODE_OPTIONS: '', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout.on('data', (chunk: Buffer) => (this.stdout += chunk.toString('utf8')));
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('utf8')));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  async until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (this.child.exitCode !== null) throw new Error(`sidecar exited (${this.child.exitCode}) before ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr.slice(-3_000)}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr.slice(-3_000)}`);
      await sleep(25);
    }
  }

  /** Resolves with the exit code, or rejects if it is still running after `timeoutMs`. */
  async exitWithin(timeoutMs: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms\nstderr: ${this.stderr.slice(-2_000)}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The status of GET /readyz, or 0 while nothing listens. */
async function readyz(adminPort: number): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status;
  } catch {
    return 0;
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

let postgres: PostgresServer;
let dir: string;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  postgres = await startPostgres();
  await preparePaymentsDatabase(postgres);
}, 60_000);

afterAll(async () => {
  await postgres?.stop();
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-sidecar-cli-'));
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await rm(dir, { recursive: true, force: true });
});

function snapshotServedOn(port: number): SidecarSnapshot {
  return snapshotFrom(manifests(postgres, APP_OWNER, RULES).replace('port: 15432', `port: ${port}`));
}

function startSidecar(args: readonly string[], env: NodeJS.ProcessEnv = {}): SidecarProcess {
  const sidecar = new SidecarProcess(args, env);
  cleanups.push(async () => {
    if (sidecar.child.exitCode === null && sidecar.child.signalCode === null) {
      sidecar.child.kill('SIGKILL');
      await sidecar.exited;
    }
  });
  return sidecar;
}

describe('gatehouse sidecar in a child process', () => {
  test('serves nothing and is not ready before the first snapshot; then ready, enforcing, re-reading a rotated token, draining on SIGTERM', async () => {
    const tokens = new TokenList();
    tokens.valid.add('token-one');
    let controlPlane = await startControlPlane(tokens);
    cleanups.push(() => controlPlane.server.close(0));
    const [sidecarPort, adminPort] = [await freePort(), await freePort()];
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'token-one\n');

    const sidecar = startSidecar(
      ['--control-plane', `127.0.0.1:${controlPlane.server.port}`, '--token-file', tokenFile, '--admin-port', String(adminPort),
        '--admin-host', '127.0.0.1', '--recording-spool', join(dir, 'spool'), '--log-level', 'info', '--drain-seconds', '5'],
      { GATEHOUSE_CONTROL_PLANE_CA: TEST_TLS.caPem, POD_NAMESPACE: 'payments', POD_NAME: 'app-pod' },
    );
    // Connected and authenticated, but the operator has no snapshot for this pod yet.
    await sidecar.until('the control plane stream', () => controlPlane.server.connectedStreams() === 1);
    expect(await readyz(adminPort)).toBe(503);
    expect(await listening(sidecarPort)).toBe(false);
    expect(sidecar.stdout).toBe('');

    const snapshot = snapshotServedOn(sidecarPort);
    controlPlane.cache.setSnapshot(NODE, setsFor(snapshot));
    await sidecar.until('the ready line', () => sidecar.stdout.split('\n').includes('ready'));
    expect(sidecar.stdout).toContain(`node ${NODE}, policy snapshot ${snapshot.version}`);
    expect(sidecar.stdout).toContain(`db on 127.0.0.1:${sidecarPort}`);
    expect(await readyz(adminPort)).toBe(200);
    expect((await fetch(`http://127.0.0.1:${adminPort}/healthz`)).status).toBe(200);

    const count = await psqlOnce(sidecarPort, 'SELECT count(*) FROM orders');
    expect(count).toEqual({ code: 0, stdout: '50', stderr: '' });
    const drop = await psqlOnce(sidecarPort, 'DROP TABLE orders');
    expect(drop.stderr).toContain('ERROR:  42501: gatehouse: schema changes go through migrations');
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    expect(metrics).toMatch(/gatehouse_sidecar_blocked_statements_total\{[^}]*rule="app-policy\/no-ddl"[^}]*\} 1/);

    // The kubelet rotates the token and the old one stops counting: the next connection must present the new one.
    const session = new InteractivePsql({ port: sidecarPort });
    cleanups.push(() => session.close());
    expect(await session.run('SELECT count(*) FROM orders;')).toEqual({ stdout: '50', stderr: '' });
    await writeFile(tokenFile, 'token-two\n');
    tokens.valid.clear();
    tokens.valid.add('token-two');
    const controlPlanePort = controlPlane.server.port;
    await controlPlane.server.close(0);
    controlPlane = await startControlPlane(tokens, controlPlanePort, controlPlane.cache);
    await sidecar.until('a reconnect with the rotated token', () => controlPlane.server.connectedStreams() === 1);
    expect(tokens.seen).toEqual(['token-one', 'token-two']);
    expect(await session.run('SELECT count(*) FROM orders;')).toEqual({ stdout: '50', stderr: '' });

    // SIGTERM: no new sessions, the live one may finish, then a clean exit.
    session.close();
    sidecar.child.kill('SIGTERM');
    expect(await sidecar.exitWithin(10_000)).toBe(0);
    expect(await listening(sidecarPort)).toBe(false);
    expect(await readyz(adminPort)).toBe(0);
  }, 60_000);

  test('fails closed: with the control plane gone past the snapshot TTL, a new session is refused naming the lost control plane', async () => {
    const tokens = new TokenList();
    tokens.valid.add('token-one');
    const controlPlane = await startControlPlane(tokens, 0, new SnapshotCache(), 1_000);
    const [sidecarPort, adminPort] = [await freePort(), await freePort()];
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'token-one');
    controlPlane.cache.setSnapshot(NODE, setsFor(snapshotServedOn(sidecarPort)));
    const sidecar = startSidecar(
      ['--control-plane', `127.0.0.1:${controlPlane.server.port}`, '--token-file', tokenFile, '--node-id', NODE,
        '--admin-port', String(adminPort), '--admin-host', '127.0.0.1', '--recording-spool', join(dir, 'spool')],
      { GATEHOUSE_CONTROL_PLANE_CA: TEST_TLS.caPem },
    );
    await sidecar.until('the ready line', () => sidecar.stdout.split('\n').includes('ready'));
    expect((await psqlOnce(sidecarPort, 'SELECT 1')).stdout).toBe('1');

    await controlPlane.server.close(0);
    const lostAt = Date.now();
    await sleep(1_500);
    const refused = await psqlOnce(sidecarPort, 'SELECT 1');
    expect(refused.code).toBe(2);
    const since = /FATAL: {2}gatehouse: policy snapshot expired: control plane unreachable since (\S+), longer than the snapshot TTL/.exec(refused.stderr);
    expect(since).not.toBeNull();
    expect(Math.abs(Date.parse(since![1]!) - lostAt)).toBeLessThan(1_000);
    expect(await readyz(adminPort)).toBe(200); // startup-probe semantics: it still answers, with refusals
  }, 30_000);

  test('verifies the control plane against the given CA: with another CA it never connects, never sends its token, stays unready', async () => {
    const tokens = new TokenList();
    tokens.valid.add('token-one');
    const controlPlane = await startControlPlane(tokens);
    cleanups.push(() => controlPlane.server.close(0));
    const adminPort = await freePort();
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'token-one');
    const caFile = join(dir, 'ca.crt');
    await writeFile(caFile, TEST_TLS.otherCaPem);

    const sidecar = startSidecar(
      ['--control-plane', `127.0.0.1:${controlPlane.server.port}`, '--ca-file', caFile, '--token-file', tokenFile, '--node-id', NODE,
        '--admin-port', String(adminPort), '--admin-host', '127.0.0.1', '--recording-spool', join(dir, 'spool')],
      // The right CA in the env must lose to the flag.
      { GATEHOUSE_CONTROL_PLANE_CA: TEST_TLS.caPem },
    );
    controlPlane.cache.setSnapshot(NODE, setsFor(snapshotServedOn(await freePort())));
    await sidecar.until('a failed connection attempt', () => sidecar.stderr.includes('control plane stream ended'));
    expect(await readyz(adminPort)).toBe(503);
    expect(tokens.seen).toEqual([]);
    expect(sidecar.stdout).toBe('');
  }, 30_000);

  test('without a CA it refuses to start, saying how to give one', async () => {
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'token-one');
    const sidecar = startSidecar(['--control-plane', '127.0.0.1:1', '--token-file', tokenFile, '--node-id', NODE], { GATEHOUSE_CONTROL_PLANE_CA: '' });
    expect(await sidecar.exitWithin(15_000)).toBe(1);
    expect(sidecar.stderr).toContain('error GH_ERR_SIDECAR_NO_CA: gatehouse sidecar connects to the control plane over TLS only');
    expect(sidecar.stderr).toContain('--ca-file PATH or set GATEHOUSE_CONTROL_PLANE_CA');
    expect(sidecar.stdout).toBe('');
  }, 30_000);
});

describe('sidecarSettings: flags, env and what is missing', () => {
  const cwd = '/';
  let tokenFile: string;
  let caFile: string;
  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    GATEHOUSE_CONTROL_PLANE: 'gatehouse-operator.gatehouse-system.svc:18000',
    GATEHOUSE_CONTROL_PLANE_CA: TEST_TLS.caPem,
    GATEHOUSE_TOKEN_FILE: tokenFile,
    POD_NAMESPACE: 'payments',
    POD_NAME: 'orders-7d9f8c-abcde',
    ...extra,
  });

  beforeEach(async () => {
    tokenFile = join(dir, 'token');
    caFile = join(dir, 'ca.crt');
    await writeFile(tokenFile, 'a-token');
    await writeFile(caFile, TEST_TLS.otherCaPem);
  });

  test('everything from the env the injection webhook sets, with the defaults', async () => {
    const settings = await sidecarSettings([], env({ GATEHOUSE_MASKING_HASH_KEY: 'k'.repeat(32) }), cwd);
    expect(settings).toMatchObject({
      controlPlane: 'gatehouse-operator.gatehouse-system.svc:18000',
      caPem: TEST_TLS.caPem,
      caSource: 'GATEHOUSE_CONTROL_PLANE_CA',
      tokenFile,
      nodeId: 'payments/orders-7d9f8c-abcde',
      adminHost: '0.0.0.0',
      adminPort: DEFAULT_SIDECAR_ADMIN_PORT,
      recordingSpool: DEFAULT_RECORDING_SPOOL,
    });
    expect(Buffer.from(settings.hashKey!).toString()).toBe('k'.repeat(32));
    expect((await sidecarSettings([], env({ GATEHOUSE_RECORDING_SPOOL: '/spool/from/env' }), cwd)).recordingSpool).toBe('/spool/from/env');
  });

  test('flags win over env', async () => {
    const otherToken = join(dir, 'other-token');
    await writeFile(otherToken, 'b-token');
    const settings = await sidecarSettings(
      ['--control-plane', '10.0.0.1:9000', '--ca-file', caFile, '--token-file', otherToken, '--node-id', 'ns/pod', '--admin-port', '9999'],
      env({ GATEHOUSE_ADMIN_PORT: '1234' }),
      cwd,
    );
    expect(settings).toMatchObject({ controlPlane: '10.0.0.1:9000', caPem: TEST_TLS.otherCaPem, caSource: caFile, tokenFile: otherToken, nodeId: 'ns/pod', adminPort: 9999 });
    expect(settings.hashKey).toBeUndefined();
    expect((await sidecarSettings([], env({ GATEHOUSE_ADMIN_PORT: '1234' }), cwd)).adminPort).toBe(1234);
    expect((await sidecarSettings(['--recording-spool', 'spool'], env({ GATEHOUSE_RECORDING_SPOOL: '/spool/from/env' }), cwd)).recordingSpool).toBe(join(cwd, 'spool'));
  });

  test.each([
    ['no control plane', [], { GATEHOUSE_CONTROL_PLANE: '' }, 'GH_ERR_SIDECAR_NO_CONTROL_PLANE'],
    ['an address without a port', ['--control-plane', 'operator.svc'], {}, 'GH_ERR_SIDECAR_BAD_ADDRESS'],
    ['no CA', [], { GATEHOUSE_CONTROL_PLANE_CA: '' }, 'GH_ERR_SIDECAR_NO_CA'],
    ['a CA that is not a certificate', [], { GATEHOUSE_CONTROL_PLANE_CA: 'not a pem' }, 'GH_ERR_SIDECAR_CA_INVALID'],
    ['a CA file that does not exist', ['--ca-file', '/nonexistent/ca.crt'], {}, 'GH_ERR_SIDECAR_CA_INVALID'],
    ['no token file', [], { GATEHOUSE_TOKEN_FILE: '' }, 'GH_ERR_SIDECAR_NO_TOKEN_FILE'],
    ['a token file that is not there', ['--token-file', '/nonexistent/token'], {}, 'GH_ERR_SIDECAR_TOKEN_FILE'],
    ['no node id', [], { POD_NAME: '' }, 'GH_ERR_SIDECAR_NO_NODE_ID'],
    ['a node id that is not namespace/pod', ['--node-id', 'just-a-pod'], {}, 'GH_ERR_SIDECAR_BAD_NODE_ID'],
    ['an admin port that is not a port', ['--admin-port', '70000'], {}, 'GH_ERR_INVALID_ARGUMENT'],
  ] as const)('%s', async (_what, args, extra, code) => {
    await expect(sidecarSettings([...args], env(extra), cwd)).rejects.toMatchObject({ code });
  });

  test('an empty token file is refused like a missing one', async () => {
    await writeFile(tokenFile, '\n');
    await expect(sidecarSettings([], env(), cwd)).rejects.toMatchObject({ code: 'GH_ERR_SIDECAR_TOKEN_FILE', message: expect.stringContaining('the file is empty') });
  });
});

describe('gatehouse sidecar recordings', () => {
  test('uploads to the operator over TLS; with the operator down mid-session it spools, then uploads when it is back; the recording verifies intact', async () => {
    const tokens = new TokenList();
    tokens.valid.add('token-one');
    const recordings = join(dir, 'recordings');
    const spool = join(dir, 'spool');
    const signer = await generateCheckpointSigner();
    let operator = await startRecordingControlPlane(tokens, recordings, signer);
    cleanups.push(() => operator.stop());
    const [sidecarPort, adminPort] = [await freePort(), await freePort()];
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'token-one');
    operator.cache.setSnapshot(NODE, setsFor(snapshotServedOn(sidecarPort)));
    const sidecar = startSidecar(
      ['--control-plane', `127.0.0.1:${operator.server.port}`, '--token-file', tokenFile, '--node-id', NODE,
        '--admin-port', String(adminPort), '--admin-host', '127.0.0.1'],
      { GATEHOUSE_CONTROL_PLANE_CA: TEST_TLS.caPem, GATEHOUSE_RECORDING_SPOOL: spool },
    );
    await sidecar.until('the ready line', () => sidecar.stdout.split('\n').includes('ready'));

    const session = new InteractivePsql({ port: sidecarPort });
    cleanups.push(() => session.close());
    expect(await session.run('SELECT count(*) FROM orders WHERE id < 10;')).toEqual({ stdout: '9', stderr: '' });
    await waitUntil(async () => (await recordedText(recordings)).includes('WHERE id < 10'), 'the first statement in the operator\'s store');

    // The operator goes away mid-session; the session goes on (the snapshot is still valid) and its events wait in the spool.
    const port = operator.server.port;
    await operator.stop();
    expect(await session.run('SELECT count(*) FROM orders WHERE id < 20;')).toEqual({ stdout: '19', stderr: '' });
    expect((await session.run('DROP TABLE orders;')).stderr).toContain('schema changes go through migrations');
    await waitUntil(async () => (await spoolText(spool)).includes('DROP TABLE orders'), 'the events in the spool');
    expect(await recordedText(recordings)).not.toContain('DROP TABLE orders');

    operator = await startRecordingControlPlane(tokens, recordings, signer, port, operator.cache);
    session.close();
    await waitUntil(async () => (await recordedText(recordings)).includes('"status":"sealed"') && (await readdir(spool)).length === 0, 'the spooled events uploaded and the session sealed', 30_000);

    const jwks = join(dir, 'recording-key.jwks.json');
    await writeFile(jwks, JSON.stringify({ keys: [signer.publicJwk] }));
    const io = bufferedIO(dir);
    const code = await runCli(['sessions', 'verify', '--dir', recordings, '--key', jwks], io);
    // Part 1 sealed interrupted when the operator stopped; part 2 continues the chain and is sealed by the session's end.
    expect(io.out()).toMatch(/ok {2}.*\.jsonl: intact, interrupted/);
    expect(io.out()).toMatch(/ok {2}.*\.part2\.jsonl: intact, sealed/);
    expect(io.out()).toContain('2 file(s) intact, 0 problem(s)');
    expect(code).toBe(0);
    const text = await recordedText(recordings);
    for (const statement of ['WHERE id < 10', 'WHERE id < 20', 'DROP TABLE orders']) expect(text).toContain(statement);

    sidecar.child.kill('SIGTERM');
    expect(await sidecar.exitWithin(10_000)).toBe(0);
  }, 90_000);
});

async function spoolText(spool: string): Promise<string> {
  let text = '';
  for (const file of await readdir(spool).catch(() => [] as string[])) text += await readFile(join(spool, file), 'utf8').catch(() => '');
  return text;
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
