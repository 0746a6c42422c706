// The Sidecar with its SnapshotClient against a real discovery server and a real PostgreSQL, as
// separate objects: it fails closed when its snapshot expires (control plane lost past the TTL,
// or a credential past its expiry) and serves again when the snapshot counts again; credential
// changes end exactly the sessions they must; readiness follows the first snapshot.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../api/logging/logger.js';
import { SqlClassifier, loadSqlParser } from '../api/sql/classify.js';
import { snapshotVersion, type SidecarSnapshot } from '../api/snapshot/sidecar-snapshot.js';
import {
  FakeAuthenticator, setsFor, startFixture, withCredential, type DiscoveryFixture,
} from '../operator/control-plane/testing/discovery-fixture.js';
import { adminPsqlOn, APP_OWNER, manifests, preparePaymentsDatabase, snapshotFrom } from './postgres/testing/sidecar-fixture.js';
import { InteractivePsql, psqlOnce } from '../testing/interactive-psql.js';
import { startPostgres, type PostgresServer, type PostgresUser } from '../testing/postgres-server.js';
import { SnapshotClient } from './control-plane/snapshot-client.js';
import { createSidecarMetrics, type SidecarMetrics } from './metrics/sidecar-metrics.js';
import { FileSessionRecorder } from './recording/session-recorder.js';
import { Sidecar, type SnapshotLease } from './sidecar.js';
import { eventually as waitFor } from '../testing/async-checks.js';

const RULES = '  rules:\n    - {name: read, effect: allow, operations: [read, transaction, session]}';
const NODE = 'default/app-pod';
const SNAPSHOT_TTL_MS = 1_500;

let server: PostgresServer;
let recordings: string;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  await loadSqlParser();
  server = await startPostgres();
  await preparePaymentsDatabase(server);
  recordings = await mkdtemp(join(tmpdir(), 'gatehouse-sidecar-test-'));
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await rm(recordings, { recursive: true, force: true });
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function snapshotFor(login: PostgresUser = APP_OWNER): SidecarSnapshot {
  return snapshotFrom(manifests(server, login, RULES));
}

function newSidecar(lease?: SnapshotLease): { sidecar: Sidecar; metrics: SidecarMetrics } {
  const metrics = createSidecarMetrics({ defaultMetrics: false });
  const sidecar = new Sidecar({
    logger: silentLogger(),
    metrics,
    classifier: new SqlClassifier(),
    recorder: new FileSessionRecorder(recordings),
    hashKey: Buffer.from('test-hash-key-0123456789abcdef'),
    portFor: () => 0,
    ...(lease ? { lease } : {}),
  });
  cleanups.push(() => sidecar.stop(200));
  return { sidecar, metrics };
}

async function serve(snapshot: SidecarSnapshot, port = 0): Promise<DiscoveryFixture> {
  const fixture = await startFixture({ snapshotTtlMs: SNAPSHOT_TTL_MS, debounceMs: 5, port });
  fixture.cache.setSnapshot(NODE, setsFor(snapshot));
  cleanups.push(() => fixture.server.close(0));
  return fixture;
}

/** A Sidecar fed by a SnapshotClient from `fixture`, once it applied its first snapshot. */
async function connectedSidecar(fixture: DiscoveryFixture): Promise<{ sidecar: Sidecar; client: SnapshotClient; metrics: SidecarMetrics; port: number }> {
  const client: SnapshotClient = new SnapshotClient({
    proto: fixture.proto,
    address: fixture.address,
    transport: { kind: 'plaintext-local-mode' },
    nodeId: NODE,
    token: () => FakeAuthenticator.tokenFor(NODE),
    sidecarVersion: 'test',
    apply: (snapshot) => sidecar.apply(snapshot),
    logger: silentLogger(),
    backoff: { initialMs: 50, maxMs: 200 },
  });
  const { sidecar, metrics } = newSidecar(client);
  cleanups.push(() => client.stop());
  client.start();
  await waitFor('the first snapshot applied', () => sidecar.version !== undefined);
  return { sidecar, client, metrics, port: sidecar.portOf('db')! };
}

function liveSession(port: number): InteractivePsql {
  const session = new InteractivePsql({ port });
  cleanups.push(() => session.close());
  return session;
}

async function expiredGauge(metrics: SidecarMetrics): Promise<number> {
  const metric = await metrics.registry.getSingleMetric('gatehouse_sidecar_policy_snapshot_expired')!.get();
  return metric.values[0]?.value ?? Number.NaN;
}

const ORDERS = 'SELECT count(*) FROM orders;';
const SERVED = { stdout: '50', stderr: '' };

describe('Sidecar fails closed on an expired snapshot', () => {
  test('control plane lost: the last good snapshot serves until its TTL, then denies; a restarted control plane restores service', async () => {
    const snapshot = snapshotFor();
    let fixture = await serve(snapshot);
    const { sidecar, client, metrics, port } = await connectedSidecar(fixture);
    const session = liveSession(port);
    expect(await session.run(ORDERS)).toEqual(SERVED);

    const controlPlanePort = fixture.server.port;
    await fixture.server.close(0);
    const lostAt = Date.now();
    await waitFor('the client noticed', () => !client.connected);
    expect(await session.run(ORDERS)).toEqual(SERVED);
    expect((await psqlOnce(port, 'SELECT 1')).code).toBe(0);
    expect(Date.now() - lostAt).toBeLessThan(SNAPSHOT_TTL_MS);

    await waitFor('the snapshot expired', () => client.expired(), SNAPSHOT_TTL_MS + 2_000);
    const denied = await session.run(ORDERS);
    const since = new Date(client.lostSince()!);
    expect(Math.abs(since.getTime() - lostAt)).toBeLessThan(1_000);
    const lostControlPlane = `policy snapshot expired: control plane unreachable since ${since.toISOString()}, longer than the snapshot TTL`;
    expect(denied.stderr).toContain(`ERROR:  42501: gatehouse: ${lostControlPlane}`);
    expect(denied.stderr).toContain('Denied by Gatehouse policy: rule gatehouse/snapshot-expired (deny).');
    // A new session is told the same cause, not that its (placeholder) credential expired.
    const refused = await psqlOnce(port, 'SELECT 1');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`FATAL:  gatehouse: ${lostControlPlane}`);
    expect(refused.stderr).not.toContain('credential');
    expect(await expiredGauge(metrics)).toBe(1);
    expect(sidecar.notReadyReason()).toBeUndefined(); // startup-probe semantics: still serving (denials)

    fixture = await serve(snapshot, controlPlanePort);
    await waitFor('the client reconnected', () => client.connected);
    expect(await session.run(ORDERS)).toEqual(SERVED);
    expect((await psqlOnce(port, 'SELECT count(*) FROM orders')).stdout).toBe('50');
    expect(await expiredGauge(metrics)).toBe(0);
  });

  test('a credential past its expiry denies everything; its renewal restores the same live session', async () => {
    const expiresSoon = withCredential(snapshotFor(), APP_OWNER.password, Date.now() + 1_000);
    const fixture = await serve(expiresSoon);
    const { client, port } = await connectedSidecar(fixture);
    const session = liveSession(port);
    expect(await session.run(ORDERS)).toEqual(SERVED);

    await waitFor('the credential expired', () => client.expired(), 3_000);
    const denied = await session.run(ORDERS);
    expect(denied.stderr).toMatch(/42501: gatehouse: policy snapshot expired: the credential for db expired at \S+ and no renewal arrived/);
    expect((await psqlOnce(port, 'SELECT 1')).stderr).toMatch(/FATAL: {2}gatehouse: policy snapshot expired: the credential for db expired at \S+ and no renewal arrived/);

    // A renewal extends the same login: the session is not cut, and is served again.
    fixture.cache.setSnapshot(NODE, setsFor(withCredential(snapshotFor(), APP_OWNER.password, Date.now() + 60_000)));
    await waitFor('the renewal applied', () => !client.expired());
    expect(await session.run(ORDERS)).toEqual(SERVED);
  });
});

describe('Sidecar.apply and credentials', () => {
  test('a rotated password ends live sessions; an expiry-only renewal keeps them; a revoked credential ends them', async () => {
    await adminPsqlOn(server, "CREATE ROLE sidecar_rotating LOGIN PASSWORD 'pw-one'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO sidecar_rotating");
    const { sidecar } = newSidecar();
    const first = snapshotFor({ user: 'sidecar_rotating', password: 'pw-one' });
    await sidecar.apply(first);
    const port = sidecar.portOf('db')!;

    const kept = liveSession(port);
    expect(await kept.run(ORDERS)).toEqual(SERVED);
    await sidecar.apply(withCredential(first, 'pw-one', Date.now() + 60_000));
    expect(await kept.run(ORDERS)).toEqual(SERVED);

    await adminPsqlOn(server, "ALTER ROLE sidecar_rotating PASSWORD 'pw-two'");
    const rotated = withCredential(first, 'pw-two');
    await sidecar.apply(rotated);
    const cut = await kept.run(ORDERS);
    expect(cut.stderr).toContain('FATAL:  57P01: gatehouse: session closed: the credential was rotated');
    expect(await kept.exited).toBe(2);
    expect((await psqlOnce(port, 'SELECT current_user')).stdout).toBe('sidecar_rotating');

    const revokedLater = liveSession(port);
    expect(await revokedLater.run(ORDERS)).toEqual(SERVED);
    const resources = rotated.resources.map(({ credential: _revoked, ...entry }) => entry);
    await sidecar.apply({ version: snapshotVersion({ identity: rotated.identity, resources }), identity: rotated.identity, resources });
    expect((await revokedLater.run(ORDERS)).stderr).toContain('session closed: the credential was revoked');
  });

  test('exports when each held credential expires, and forgets credentials no longer held', async () => {
    const { sidecar, metrics } = newSidecar();
    const expiry = async () => (await metrics.credentialExpiry.get()).values.map(({ labels, value }) => ({ ...labels, value }));
    const expiresAt = Date.parse('2026-11-22T12:00:00Z');
    await sidecar.apply(withCredential(snapshotFor(), APP_OWNER.password, expiresAt));
    expect(await expiry()).toEqual([{ resource: 'db', identity: 'app', value: expiresAt / 1000 }]);
    await sidecar.apply(withCredential(snapshotFor(), APP_OWNER.password, expiresAt + 600_000));
    expect(await expiry()).toEqual([{ resource: 'db', identity: 'app', value: expiresAt / 1000 + 600 }]);
    // A static credential has no expiry to export.
    await sidecar.apply(snapshotFor());
    expect(await expiry()).toEqual([]);
  });

  test('not ready until the first snapshot is applied', async () => {
    const { sidecar } = newSidecar();
    expect(sidecar.notReadyReason()).toBe('no policy snapshot yet');
    await sidecar.apply(snapshotFor());
    expect(sidecar.notReadyReason()).toBeUndefined();
  });
});
