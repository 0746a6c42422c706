// The local control plane without a sidecar: what it sets in the SnapshotCache for a config folder
// (credentials from the CredentialManager, not read straight from Secrets), what it refuses, and
// how the local discovery server keeps everything but its own sidecar out.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { isGatehouseError } from '../../api/errors.js';
import { silentLogger } from '../../api/logging/logger.js';
import type { ConfigProblem } from '../../api/manifests/config.js';
import { loadDiscoveryProto } from '../../api/proto/discovery-proto.js';
import { ALL_TYPE_URLS, fromResourceSets, TYPE_URLS, type ResourceSets, type TypedResource } from '../../api/proto/snapshot-resources.js';
import { until } from '../../testing/async-checks.js';
import { createControlPlaneMetrics } from '../control-plane/control-plane-metrics.js';
import { ERROR_CODE_METADATA_KEY } from '../control-plane/node-stream.js';
import { SnapshotCache } from '../control-plane/snapshot-cache.js';
import { FakeAuthenticator, RawDiscoveryStream } from '../control-plane/testing/discovery-fixture.js';
import { ManualScheduler } from '../credentials/manual-scheduler.js';
import { LocalControlPlane } from './local-control-plane.js';
import { startLocalDiscoveryServer, type LocalDiscoveryServer } from './local-discovery-server.js';
import { localCredentialIssuers } from './local-issuers.js';

const SAMPLES = join(process.cwd(), 'config', 'samples');
const NODE = 'local/test';

let dir: string;
let cache: SnapshotCache;
let registry: Registry;
let problems: ConfigProblem[];
let failures: { resource: string; error: Error }[];
const planes: LocalControlPlane[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-local-cp-'));
  await cp(SAMPLES, dir, { recursive: true });
  cache = new SnapshotCache();
  registry = new Registry();
  problems = [];
  failures = [];
});

afterEach(async () => {
  await Promise.all(planes.splice(0).map((plane) => plane.close()));
  await rm(dir, { recursive: true, force: true });
});

function controlPlane(identity: string, options: { demo?: boolean; scheduler?: ManualScheduler } = {}): LocalControlPlane {
  const logger = silentLogger();
  const plane = new LocalControlPlane(
    {
      configDir: dir,
      identity,
      namespace: 'payments',
      nodeId: NODE,
      cache,
      issuers: (secrets) => localCredentialIssuers({ secrets, logger, demoDatabase: options.demo ?? false }),
      logger,
      registry,
      watchDebounceMs: 20,
      ...(options.scheduler ? { scheduler: options.scheduler } : {}),
    },
    { onProblems: (found) => problems.push(...found), onCredentialFailure: (resource, error) => failures.push({ resource, error }) },
  );
  planes.push(plane);
  return plane;
}

/** What a sidecar would receive for NODE: every type's resources from the cache. */
function cachedSets(): ResourceSets {
  const sets: Partial<Record<string, readonly TypedResource[]>> = {};
  for (const typeUrl of ALL_TYPE_URLS) {
    const watch = cache.createWatch({ nodeId: NODE, typeUrl, knownVersion: '' }, () => undefined);
    if (watch.kind !== 'immediate') throw new Error(`nothing cached for ${typeUrl}`);
    sets[typeUrl] = watch.response.resources;
  }
  return sets as ResourceSets;
}

async function editFile(file: string, edit: (text: string) => string): Promise<void> {
  const path = join(dir, file);
  await writeFile(path, edit(await readFile(path, 'utf8')));
}

describe('LocalControlPlane', () => {
  test('sets the identity\'s snapshot in the cache with the credential the manager issued', async () => {
    const published = await controlPlane('ci-runner').start();
    expect(published.resources.map((entry) => entry.resource.metadata.name)).toEqual(['orders-db']);
    expect(published.resources[0]!.credential).toEqual({ username: 'gatehouse_demo', password: 'demo-only-not-a-secret' });
    // What travels is exactly what was built: the sidecar reassembles the same version.
    expect(fromResourceSets(cachedSets())).toEqual(published);
  });

  test('a jwt resource gets a signed, expiring token (the postgres sidecar leaves it unused)', async () => {
    const published = await controlPlane('billing-service').start();
    const api = published.resources.find((entry) => entry.resource.metadata.name === 'billing-api')!;
    expect(api.credential!.username).toBe('payments/billing-service');
    expect(api.credential!.password.split('.')).toHaveLength(3);
    expect(api.credential!.expiresAt).toBeGreaterThan(Date.now());
    expect(cachedSets()[TYPE_URLS.credential].find((resource) => resource.name === 'billing-api')?.expiresAtMs).toBe(api.credential!.expiresAt);
  });

  test('a folder with errors is refused at startup', async () => {
    await editFile('policies/ci-read-only.yaml', (text) => text.replace('effect: deny', 'effect: forbid'));
    const refusal = await controlPlane('ci-runner').start().catch((error: unknown) => error);
    expect(isGatehouseError(refusal, 'GH_ERR_CONFIG_INVALID')).toBe(true);
    expect(problems.some((problem) => problem.file === 'policies/ci-read-only.yaml')).toBe(true);
    expect(cache.versions(NODE)).toBeUndefined();
  });

  test('a broken edit is refused and the cached snapshot stays; a good one replaces it', async () => {
    const plane = controlPlane('ci-runner');
    await plane.start();
    const before = cache.versions(NODE);
    await editFile('policies/ci-read-only.yaml', (text) => `${text}\n  rules: [oops\n`);
    expect((await plane.reload()).kind).toBe('refused');
    expect(cache.versions(NODE)).toEqual(before);
    expect(await registry.getSingleMetricAsString('gatehouse_control_plane_config_reloads_total')).toContain('outcome="refused"} 1');

    await editFile('policies/ci-read-only.yaml', (text) => text.replace(/\n {2}rules: \[oops\n$/, '\n').replace('schema changes go through migrations', 'no DDL'));
    expect((await plane.reload()).kind).toBe('published');
    expect(cache.versions(NODE)![TYPE_URLS.identityPolicy]).not.toBe(before![TYPE_URLS.identityPolicy]);
    expect(cache.versions(NODE)![TYPE_URLS.credential]).toBe(before![TYPE_URLS.credential]);
  });

  test('the watcher publishes a changed Secret as a new credential', async () => {
    await controlPlane('ci-runner').start();
    const before = cache.versions(NODE)!;
    await editFile('secrets/orders-db-admin.yaml', (text) => text.replace('demo-only-not-a-secret', 'rotated-password'));
    await until(() => cache.versions(NODE)![TYPE_URLS.credential] !== before[TYPE_URLS.credential]);
    expect(fromResourceSets(cachedSets()).resources[0]!.credential?.password).toBe('rotated-password');
    expect(cache.versions(NODE)![TYPE_URLS.identityPolicy]).toBe(before[TYPE_URLS.identityPolicy]);
  });

  test('a renewal due at two thirds of the TTL is published without any file change (jwt: a new token)', async () => {
    const scheduler = new ManualScheduler(Date.now());
    const first = await controlPlane('billing-service', { scheduler }).start();
    const token = (snapshot: typeof first) => snapshot.resources.find((entry) => entry.resource.metadata.name === 'billing-api')!.credential!.password;
    const before = cache.versions(NODE)!;
    await scheduler.advance(201_000); // credentialTTL 5m: renewal at 200 s
    await until(() => cache.versions(NODE)![TYPE_URLS.credential] !== before[TYPE_URLS.credential]);
    expect(token(fromResourceSets(cachedSets()))).not.toBe(token(first));
    expect(cache.versions(NODE)![TYPE_URLS.identityPolicy]).toBe(before[TYPE_URLS.identityPolicy]);
  });

  test('with the demo database, postgres-dynamic is refused by name and the resource has no credential', async () => {
    await editFile('resources/orders-db.yaml', (text) => text.replace('strategy: static', 'strategy: postgres-dynamic'));
    const published = await controlPlane('ci-runner', { demo: true }).start();
    expect(published.resources[0]!.credential).toBeUndefined();
    expect(failures).toHaveLength(1);
    expect(failures[0]!.resource).toBe('orders-db');
    expect(isGatehouseError(failures[0]!.error, 'GH_ERR_LOCAL_DEMO_DYNAMIC_ROLES')).toBe(true);
    expect(failures[0]!.error.message).toContain('demo database (PGlite)');
  });

  test('an identity not in the folder is refused', async () => {
    const refusal = await controlPlane('nobody').start().catch((error: unknown) => error);
    expect(isGatehouseError(refusal, 'GH_ERR_REF_UNKNOWN_IDENTITY')).toBe(true);
  });
});

describe('startLocalDiscoveryServer', () => {
  const proto = loadDiscoveryProto();
  let server: LocalDiscoveryServer | undefined;
  const streams: RawDiscoveryStream[] = [];

  afterEach(async () => {
    for (const stream of streams.splice(0)) stream.close();
    await server?.close(100);
    server = undefined;
  });

  async function serve(): Promise<LocalDiscoveryServer> {
    server = await startLocalDiscoveryServer({ proto, watcher: cache, metrics: createControlPlaneMetrics({ registry, status: cache }), logger: silentLogger(), nodeId: NODE });
    return server;
  }

  function open(nodeId: string, token: string): RawDiscoveryStream {
    const stream = new RawDiscoveryStream(proto, server!.address);
    streams.push(stream);
    stream.subscribe(nodeId, ALL_TYPE_URLS, {}, token);
    return stream;
  }

  test('refuses to listen anywhere but loopback', async () => {
    const refusal = await startLocalDiscoveryServer({ proto, watcher: cache, metrics: createControlPlaneMetrics({ registry, status: cache }), logger: silentLogger(), nodeId: NODE, host: '0.0.0.0' })
      .catch((error: unknown) => error);
    expect(isGatehouseError(refusal, 'GH_ERR_LOCAL_NOT_LOOPBACK')).toBe(true);
  });

  test('serves its own sidecar\'s token, and nothing else: no cluster token, no other node', async () => {
    await controlPlane('ci-runner').start();
    const { token } = await serve();
    expect((await open(NODE, token).next()).type_url).toBe(TYPE_URLS.identityPolicy);

    const clusterToken = await open(NODE, FakeAuthenticator.tokenFor(NODE)).status;
    expect(clusterToken.code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(clusterToken.metadata.get(ERROR_CODE_METADATA_KEY)).toEqual(['GH_ERR_LOCAL_TOKEN']);

    const otherNode = await open('payments/some-pod', token).status;
    expect(otherNode.code).toBe(GrpcStatus.PERMISSION_DENIED);
  });
});
