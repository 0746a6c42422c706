import { GatehouseError } from '../../api/errors.js';
import { silentLogger } from '../../api/logging/logger.js';
import { ALL_TYPE_URLS, TYPE_URLS } from '../../api/proto/snapshot-resources.js';
import type { SidecarSnapshot } from '../../api/snapshot/sidecar-snapshot.js';
import {
  eventually,
  FakeAuthenticator,
  loadSamples,
  setsFor,
  startFixture,
  TEST_TLS,
  withCredential,
  withPolicyRevision,
  type DiscoveryFixture,
  type FixtureOptions,
  type Samples,
} from '../../operator/control-plane/testing/discovery-fixture.js';
import { DEFAULT_BACKOFF, reconnectDelay, SnapshotClient, type SnapshotClientOptions } from './snapshot-client.js';

let samples: Samples;
let fixture: DiscoveryFixture;
const clients: SnapshotClient[] = [];

beforeAll(async () => {
  samples = await loadSamples();
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.stop()));
  await fixture.server.close(100);
});

async function serve(snapshot: SidecarSnapshot | undefined, options: FixtureOptions = {}): Promise<void> {
  fixture = await startFixture(options);
  if (snapshot) fixture.cache.setSnapshot('n', setsFor(snapshot));
}

interface Harness {
  readonly client: SnapshotClient;
  readonly applied: SidecarSnapshot[];
}

function connect(overrides: Partial<SnapshotClientOptions> = {}): Harness {
  const applied: SidecarSnapshot[] = [];
  const client = new SnapshotClient({
    proto: fixture.proto,
    address: fixture.address,
    transport: { kind: 'plaintext-local-mode' },
    nodeId: 'n',
    token: () => FakeAuthenticator.tokenFor('n'),
    sidecarVersion: 'test',
    apply: async (snapshot) => {
      applied.push(snapshot);
    },
    logger: silentLogger(),
    backoff: { initialMs: 20, maxMs: 100 },
    ...overrides,
  });
  clients.push(client);
  client.start();
  return { client, applied };
}

function ackedEverywhere(): boolean {
  const current = fixture.cache.versions('n');
  const status = fixture.cache.nodeStatus('n');
  return current !== undefined && ALL_TYPE_URLS.every((typeUrl) => status?.types[typeUrl]?.ackedVersion === current[typeUrl]);
}

/** A client that applied and ACKed the sample snapshot, after which its operator stopped. */
async function appliedThenOperatorStopped(): Promise<Harness & { port: number }> {
  await serve(samples.ciRunner);
  const harness = connect();
  await eventually('initial', ackedEverywhere);
  const port = fixture.server.port;
  await fixture.server.close(100);
  await eventually('disconnected', () => !harness.client.connected);
  return { ...harness, port };
}

describe('SnapshotClient applies and acknowledges', () => {
  test('applies the operator\'s snapshot exactly as built, then ACKs every type', async () => {
    await serve(samples.billing);
    const { client, applied } = connect();
    await eventually('applied', () => client.lastGood !== undefined);
    expect(client.lastGood).toEqual(samples.billing);
    expect(client.connected).toBe(true);
    expect(applied).toHaveLength(1);
    await eventually('acked', ackedEverywhere);
  });

  test('a change that touches two types is applied once, whole, never half', async () => {
    await serve(samples.ciRunner);
    const { client, applied } = connect();
    await eventually('initial', ackedEverywhere);
    const next = withCredential(withPolicyRevision(samples.ciRunner, 1), 'rotated');
    expect(fixture.cache.setSnapshot('n', setsFor(next)).sort()).toEqual([TYPE_URLS.credential, TYPE_URLS.identityPolicy].sort());
    await eventually('acked', ackedEverywhere);
    expect(applied.map((snapshot) => snapshot.version)).toEqual([samples.ciRunner.version, next.version]);
    expect(client.lastGood).toEqual(next);
  });

  test('a snapshot apply() refuses is NACKed with its code; the last good one stays', async () => {
    await serve(samples.ciRunner);
    let refuse = true;
    const bad = withPolicyRevision(samples.ciRunner, 1);
    const { client } = connect({
      apply: async (snapshot) => {
        if (snapshot.version === bad.version && refuse) throw new GatehouseError('GH_ERR_POLICY_RULE_INCONSISTENT', { detail: 'rule x never compiles' });
      },
    });
    await eventually('initial', ackedEverywhere);
    const acked = fixture.cache.versions('n')![TYPE_URLS.identityPolicy];
    fixture.cache.setSnapshot('n', setsFor(bad));
    await eventually('nack', () => fixture.cache.nodeStatus('n')?.types[TYPE_URLS.identityPolicy]?.lastNack !== undefined);
    const status = fixture.cache.nodeStatus('n')!.types[TYPE_URLS.identityPolicy]!;
    expect(status.lastNack).toMatchObject({ code: 'GH_ERR_POLICY_RULE_INCONSISTENT', message: 'rule x never compiles' });
    expect(status.ackedVersion).toBe(acked);
    expect(client.lastGood!.version).toBe(samples.ciRunner.version);
    expect(client.lastRefusal?.code).toBe('GH_ERR_POLICY_RULE_INCONSISTENT');
    // A later, good snapshot goes through.
    refuse = false;
    const fixed = withPolicyRevision(samples.ciRunner, 2);
    fixture.cache.setSnapshot('n', setsFor(fixed));
    await eventually('fixed applied', () => client.lastGood?.version === fixed.version);
    await eventually('fixed acked', ackedEverywhere);
    expect(client.lastRefusal).toBeUndefined();
  });

  test('a plain exception from apply() is NACKed as GH_ERR_CP_APPLY_FAILED', async () => {
    await serve(samples.ciRunner);
    connect({ apply: async () => Promise.reject(new Error('port 15432 in use')) });
    await eventually('nack', () => fixture.cache.nodeStatus('n')?.types[TYPE_URLS.credential]?.lastNack !== undefined);
    const nack = fixture.cache.nodeStatus('n')!.types[TYPE_URLS.credential]!.lastNack!;
    expect(nack.code).toBe('GH_ERR_CP_APPLY_FAILED');
    expect(nack.message).toContain('port 15432 in use');
    expect(fixture.cache.nodeStatus('n')!.types[TYPE_URLS.credential]!.ackedVersion).toBeUndefined();
  });
});

describe('SnapshotClient reconnects', () => {
  test('keeps the last good snapshot while the operator is down, then re-subscribes and gets the current one', async () => {
    const { client, applied, port } = await appliedThenOperatorStopped();
    expect(client.lastGood!.version).toBe(samples.ciRunner.version);
    await new Promise((resolve) => setTimeout(resolve, 150)); // a few failed attempts
    const changed = withPolicyRevision(samples.ciRunner, 7);
    await serve(changed, { port });
    await eventually('reconnected with the new snapshot', () => client.connected && client.lastGood?.version === changed.version);
    await eventually('acked on the new server', ackedEverywhere);
    expect(applied.map((snapshot) => snapshot.version)).toEqual([samples.ciRunner.version, changed.version]);
  });

  test('an operator restarted with the same content sends nothing and nothing is re-applied', async () => {
    const { client, applied, port } = await appliedThenOperatorStopped();
    await serve(samples.ciRunner, { port });
    await eventually('reconnected', () => client.connected);
    expect(ackedEverywhere()).toBe(true); // the subscription told the new operator what runs
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(applied).toHaveLength(1);
    expect(await fixture.server.connectedStreams()).toBe(1);
  });

  test('a refused token keeps it retrying with a token read afresh each time', async () => {
    await serve(samples.ciRunner);
    let reads = 0;
    const { client } = connect({ token: () => (++reads < 3 ? 'stale-token' : FakeAuthenticator.tokenFor('n')) });
    await eventually('connected with the refreshed token', () => client.lastGood !== undefined);
    expect(reads).toBeGreaterThanOrEqual(3);
    expect(fixture.authenticator.calls).toBeGreaterThanOrEqual(3);
  });

  test('backoff grows exponentially with jitter, up to the cap', () => {
    expect(reconnectDelay(0, DEFAULT_BACKOFF, () => 0)).toBe(125);
    expect(reconnectDelay(0, DEFAULT_BACKOFF, () => 0.999)).toBeCloseTo(250, 0);
    expect(reconnectDelay(3, DEFAULT_BACKOFF, () => 0)).toBe(1_000);
    expect(reconnectDelay(30, DEFAULT_BACKOFF, () => 0)).toBe(15_000);
    expect(reconnectDelay(30, DEFAULT_BACKOFF, () => 0.999)).toBeLessThan(30_000);
  });
});

describe('SnapshotClient expiry', () => {
  test('no snapshot is expired; a connected one is not; a lost one expires TTL after the loss', async () => {
    await serve(samples.ciRunner, { snapshotTtlMs: 60_000 });
    let now = 1_000_000;
    const { client } = connect({ clock: () => now });
    expect(client.expired()).toBe(true);
    await eventually('initial', () => client.lastGood !== undefined);
    expect(client.expiresAt()).toBeUndefined();
    expect(client.expired(now + 10 * 60_000)).toBe(false);
    now = 2_000_000;
    await fixture.server.close(100);
    await eventually('disconnected', () => !client.connected);
    expect(client.expiresAt()).toBe(2_060_000);
    expect(client.expired(2_059_999)).toBe(false);
    expect(client.expired(2_060_000)).toBe(true);
    await serve(undefined); // keep afterEach happy: a server to close
  });

  test('the earliest credential expiry bounds the snapshot even while connected', async () => {
    const expiresAt = Date.now() + 10 * 60_000;
    await serve(withCredential(samples.ciRunner, 'short-lived', expiresAt));
    const { client } = connect();
    await eventually('applied', () => client.lastGood !== undefined);
    expect(client.expiresAt()).toBe(expiresAt);
    expect(client.expired(expiresAt - 1)).toBe(false);
    expect(client.expired(expiresAt)).toBe(true);
  });
});

describe('SnapshotClient transport', () => {
  test('connects over TLS, verifying the operator with its CA', async () => {
    await serve(samples.ciRunner, { transport: { kind: 'tls', keyPem: TEST_TLS.keyPem, certPem: TEST_TLS.certPem } });
    const { client } = connect({ transport: { kind: 'tls', caPem: TEST_TLS.caPem, serverName: 'localhost' } });
    await eventually('applied over TLS', () => client.lastGood?.version === samples.ciRunner.version);
  });

  test('refuses an operator its CA did not sign', async () => {
    await serve(samples.ciRunner, { transport: { kind: 'tls', keyPem: TEST_TLS.keyPem, certPem: TEST_TLS.certPem } });
    const { client } = connect({ transport: { kind: 'tls', caPem: TEST_TLS.otherCaPem, serverName: 'localhost' } });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(client.connected).toBe(false);
    expect(client.lastGood).toBeUndefined();
    expect(fixture.authenticator.calls).toBe(0);
  });

  test('stop closes the stream', async () => {
    await serve(samples.ciRunner);
    const { client } = connect();
    await eventually('connected', () => client.connected);
    await client.stop();
    expect(client.connected).toBe(false);
    await eventually('server saw it go', () => fixture.server.connectedStreams() === 0);
  });
});
