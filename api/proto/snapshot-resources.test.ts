import { join } from 'node:path';
import { isGatehouseError } from '../errors.js';
import { loadConfigDir } from '../manifests/config.js';
import { buildSnapshotFromConfig, type SidecarSnapshot } from '../snapshot/sidecar-snapshot.js';
import { loadDiscoveryProto } from './discovery-proto.js';
import { fromResourceSets, toResourceSets, TYPE_URLS, typeName, type ResourceSets } from './snapshot-resources.js';

let ciRunner: SidecarSnapshot;
let billing: SidecarSnapshot;
beforeAll(async () => {
  const config = await loadConfigDir(join(process.cwd(), 'config/samples'));
  ciRunner = buildSnapshotFromConfig(config, 'ci-runner', 'payments');
  billing = buildSnapshotFromConfig(config, 'billing-service', 'payments');
});

function errorOf(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

function withPayload(sets: ResourceSets, typeUrl: keyof typeof TYPE_URLS, index: number, payload: unknown): ResourceSets {
  const url = TYPE_URLS[typeUrl];
  const resources = sets[url].map((resource, i) => (i === index ? { ...resource, payload: Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)) } : resource));
  return { ...sets, [url]: resources };
}

describe('snapshot resources', () => {
  test('a snapshot survives the round trip through the three typed sets, version included', () => {
    for (const snapshot of [ciRunner, billing]) {
      const back = fromResourceSets(toResourceSets(snapshot));
      expect(back).toEqual(snapshot);
      expect(back.version).toBe(snapshot.version);
    }
  });

  test('one IdentityPolicy, one ProtectedResource per resource, credentials where there are some', () => {
    const sets = toResourceSets(billing);
    expect(sets[TYPE_URLS.identityPolicy].map((resource) => resource.name)).toEqual(['billing-service']);
    expect(sets[TYPE_URLS.protectedResource].map((resource) => resource.name).sort()).toEqual(['billing-api', 'orders-db']);
    expect(sets[TYPE_URLS.credential].map((resource) => resource.name)).toEqual(billing.resources.filter((entry) => entry.credential).map((entry) => entry.resource.metadata.name));
  });

  test('a credential expiry travels as the resource expiry', () => {
    const expiring: SidecarSnapshot = { ...ciRunner, resources: ciRunner.resources.map((entry) => ({ ...entry, credential: { username: 'u', password: 'p', expiresAt: 1_700_000_000_000 } })) };
    const sets = toResourceSets(expiring);
    expect(sets[TYPE_URLS.credential][0]!.expiresAtMs).toBe(1_700_000_000_000);
    expect(fromResourceSets(sets).resources[0]!.credential).toEqual({ username: 'u', password: 'p', expiresAt: 1_700_000_000_000 });
  });

  test('malformed payloads are refused with GH_ERR_CP_PAYLOAD', () => {
    const sets = toResourceSets(ciRunner);
    const cases: ResourceSets[] = [
      withPayload(sets, 'identityPolicy', 0, '{not json'),
      withPayload(sets, 'identityPolicy', 0, { identity: { kind: 'Pod' }, bindings: [] }),
      withPayload(sets, 'protectedResource', 0, { resource: 'orders-db' }),
      withPayload(sets, 'credential', 0, { resource: 'orders-db', credential: { username: 'u' } }),
    ];
    for (const bad of cases) expect(isGatehouseError(errorOf(() => fromResourceSets(bad)), 'GH_ERR_CP_PAYLOAD')).toBe(true);
  });

  test('policies bound to a resource the snapshot does not describe are inconsistent', () => {
    const sets = { ...toResourceSets(ciRunner), [TYPE_URLS.protectedResource]: [] };
    expect(isGatehouseError(errorOf(() => fromResourceSets(sets)), 'GH_ERR_CP_INCONSISTENT')).toBe(true);
    const none = { ...toResourceSets(ciRunner), [TYPE_URLS.identityPolicy]: [] };
    expect(isGatehouseError(errorOf(() => fromResourceSets(none)), 'GH_ERR_CP_INCONSISTENT')).toBe(true);
  });

  test('type names for labels', () => {
    expect(typeName(TYPE_URLS.credential)).toBe('Credential');
    expect(typeName('other/x')).toBe('other/x');
  });
});

describe('discovery proto', () => {
  test('loads the service with typed (de)serializers that keep snake_case and numbers', () => {
    const proto = loadDiscoveryProto();
    const method = proto.streamSnapshots;
    expect(method.path).toBe('/gatehouse.v1.PolicyDiscoveryService/StreamSnapshots');
    expect(method.requestStream && method.responseStream).toBe(true);
    const bytes = method.responseSerialize({
      version_info: 'v1',
      nonce: 'n',
      type_url: TYPE_URLS.credential,
      resources: [{ name: 'r', version: 'x', payload: Buffer.from('{}'), expires_at_unix_ms: 1_700_000_000_123 }],
      type_versions: { [TYPE_URLS.credential]: 'v1' },
      snapshot_ttl_ms: 60_000,
    });
    const back = method.responseDeserialize(bytes);
    expect(back.resources[0]!.expires_at_unix_ms).toBe(1_700_000_000_123);
    expect(Buffer.isBuffer(back.resources[0]!.payload)).toBe(true);
    expect(back.type_versions).toEqual({ [TYPE_URLS.credential]: 'v1' });
    const request = method.requestDeserialize(method.requestSerialize({ type_url: 't' }));
    expect(request).toMatchObject({ node: null, error_detail: null, version_info: '', response_nonce: '', resource_names: [] });
    expect(Object.keys(proto.service).sort()).toEqual(['ReportEvents', 'RequestApproval', 'StreamSnapshots']);
  });

  test('a missing .proto is a clear error', () => {
    expect(isGatehouseError(errorOf(() => loadDiscoveryProto('/nonexistent/discovery.proto')), 'GH_ERR_CP_PROTO_NOT_FOUND')).toBe(true);
  });
});
