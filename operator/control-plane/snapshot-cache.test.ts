import { ALL_TYPE_URLS, TYPE_URLS } from '../../api/proto/snapshot-resources.js';
import { SnapshotCache, type WatchResponse } from './snapshot-cache.js';
import { loadSamples, setsFor, withCredential, withPolicyRevision, type Samples } from './testing/discovery-fixture.js';

let samples: Samples;
beforeAll(async () => {
  samples = await loadSamples();
});

function collect(): { responses: WatchResponse[]; respond: (response: WatchResponse) => void } {
  const responses: WatchResponse[] = [];
  return { responses, respond: (response) => responses.push(response) };
}

describe('SnapshotCache versions', () => {
  test('versions are content hashes: same content, same versions, in any cache and for any node', () => {
    const a = new SnapshotCache();
    const b = new SnapshotCache();
    a.setSnapshot('node-a', setsFor(samples.ciRunner));
    b.setSnapshot('node-b', setsFor(samples.ciRunner));
    expect(a.versions('node-a')).toEqual(b.versions('node-b'));
    expect(Object.keys(a.versions('node-a')!).sort()).toEqual([...ALL_TYPE_URLS].sort());
    a.setSnapshot('node-c', setsFor(samples.billing));
    expect(a.versions('node-c')![TYPE_URLS.identityPolicy]).not.toBe(a.versions('node-a')![TYPE_URLS.identityPolicy]);
  });

  test('a policy edit changes only the IdentityPolicy version; a rotated credential only the Credential version', () => {
    const cache = new SnapshotCache();
    cache.setSnapshot('n', setsFor(samples.ciRunner));
    const before = cache.versions('n')!;
    expect(cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, 1)))).toEqual([TYPE_URLS.identityPolicy]);
    const afterPolicy = cache.versions('n')!;
    expect(afterPolicy[TYPE_URLS.protectedResource]).toBe(before[TYPE_URLS.protectedResource]);
    expect(cache.setSnapshot('n', setsFor(withCredential(withPolicyRevision(samples.ciRunner, 1), 'rotated')))).toEqual([TYPE_URLS.credential]);
  });

  test('the same content again changes nothing and answers no watch', () => {
    const cache = new SnapshotCache();
    cache.setSnapshot('n', setsFor(samples.ciRunner));
    const { responses, respond } = collect();
    const known = cache.versions('n')![TYPE_URLS.identityPolicy]!;
    expect(cache.createWatch({ nodeId: 'n', typeUrl: TYPE_URLS.identityPolicy, knownVersion: known }, respond).kind).toBe('registered');
    expect(cache.setSnapshot('n', setsFor(samples.ciRunner))).toEqual([]);
    expect(responses).toHaveLength(0);
  });

  test('changedAtMs comes from the injected clock and moves only for types that changed', () => {
    let now = 1_000;
    const cache = new SnapshotCache({ clock: () => now });
    cache.setSnapshot('n', setsFor(samples.ciRunner));
    now = 2_000;
    cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, 1)));
    const changedAt = (typeUrl: string): number => {
      const watch = cache.createWatch({ nodeId: 'n', typeUrl, knownVersion: '' }, () => undefined);
      if (watch.kind !== 'immediate') throw new Error('expected an immediate response');
      return watch.response.changedAtMs;
    };
    expect(changedAt(TYPE_URLS.identityPolicy)).toBe(2_000);
    expect(changedAt(TYPE_URLS.protectedResource)).toBe(1_000);
  });
});

describe('SnapshotCache watches', () => {
  test('a node behind gets an immediate response with every type version of the snapshot', () => {
    const cache = new SnapshotCache();
    cache.setSnapshot('n', setsFor(samples.billing));
    const watch = cache.createWatch({ nodeId: 'n', typeUrl: TYPE_URLS.protectedResource, knownVersion: '' }, () => undefined);
    if (watch.kind !== 'immediate') throw new Error('expected an immediate response');
    expect(watch.response.resources.map((resource) => resource.name).sort()).toEqual(['billing-api', 'orders-db']);
    expect(watch.response.typeVersions).toEqual(cache.versions('n'));
    expect(watch.response.version).toBe(cache.versions('n')![TYPE_URLS.protectedResource]);
  });

  test('a watch registered before any snapshot is answered by the first one', () => {
    const cache = new SnapshotCache();
    const { responses, respond } = collect();
    expect(cache.createWatch({ nodeId: 'n', typeUrl: TYPE_URLS.credential, knownVersion: '' }, respond).kind).toBe('registered');
    cache.setSnapshot('n', setsFor(samples.ciRunner));
    expect(responses).toHaveLength(1);
    expect(responses[0]!.resources[0]!.name).toBe('orders-db');
  });

  test('a watch is answered once, on change, and a cancelled one never', () => {
    const cache = new SnapshotCache();
    cache.setSnapshot('n', setsFor(samples.ciRunner));
    const known = cache.versions('n')![TYPE_URLS.identityPolicy]!;
    const first = collect();
    const cancelled = collect();
    cache.createWatch({ nodeId: 'n', typeUrl: TYPE_URLS.identityPolicy, knownVersion: known }, first.respond);
    const watch = cache.createWatch({ nodeId: 'n', typeUrl: TYPE_URLS.identityPolicy, knownVersion: known }, cancelled.respond);
    if (watch.kind === 'registered') watch.cancel();
    cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, 1)));
    cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, 2)));
    expect(first.responses).toHaveLength(1);
    expect(first.responses[0]!.version).not.toBe(known);
    expect(cancelled.responses).toHaveLength(0);
  });

  test('a watch on an unchanged type stays open when another type changes', () => {
    const cache = new SnapshotCache();
    cache.setSnapshot('n', setsFor(samples.ciRunner));
    const { responses, respond } = collect();
    cache.createWatch({ nodeId: 'n', typeUrl: TYPE_URLS.protectedResource, knownVersion: cache.versions('n')![TYPE_URLS.protectedResource]! }, respond);
    cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, 1)));
    expect(responses).toHaveLength(0);
  });

  test('nodes are isolated: a change for one answers no watch of another', () => {
    const cache = new SnapshotCache();
    cache.setSnapshot('a', setsFor(samples.ciRunner));
    cache.setSnapshot('b', setsFor(samples.ciRunner));
    const a = collect();
    const b = collect();
    const known = cache.versions('a')![TYPE_URLS.identityPolicy]!;
    cache.createWatch({ nodeId: 'a', typeUrl: TYPE_URLS.identityPolicy, knownVersion: known }, a.respond);
    cache.createWatch({ nodeId: 'b', typeUrl: TYPE_URLS.identityPolicy, knownVersion: known }, b.respond);
    cache.setSnapshot('a', setsFor(withPolicyRevision(samples.ciRunner, 1)));
    expect(a.responses).toHaveLength(1);
    expect(b.responses).toHaveLength(0);
    expect(cache.versions('b')![TYPE_URLS.identityPolicy]).toBe(known);
  });

  test('resource names narrow the response, the version stays the type version', () => {
    const cache = new SnapshotCache();
    cache.setSnapshot('n', setsFor(samples.billing));
    const watch = cache.createWatch({ nodeId: 'n', typeUrl: TYPE_URLS.protectedResource, knownVersion: '', resourceNames: ['orders-db'] }, () => undefined);
    if (watch.kind !== 'immediate') throw new Error('expected an immediate response');
    expect(watch.response.resources.map((resource) => resource.name)).toEqual(['orders-db']);
    expect(watch.response.version).toBe(cache.versions('n')![TYPE_URLS.protectedResource]);
  });

  test('a type the cache does not serve is never answered', () => {
    const cache = new SnapshotCache();
    cache.setSnapshot('n', setsFor(samples.ciRunner));
    const { responses, respond } = collect();
    expect(cache.createWatch({ nodeId: 'n', typeUrl: 'type.gatehouse.dev/gatehouse.v2.Future', knownVersion: '' }, respond).kind).toBe('registered');
    cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, 1)));
    expect(responses).toHaveLength(0);
  });

  test('a watch opened from inside respond waits for the next change', () => {
    const cache = new SnapshotCache();
    cache.setSnapshot('n', setsFor(samples.ciRunner));
    const seen: string[] = [];
    const rearm = (response: WatchResponse): void => {
      seen.push(response.version);
      cache.createWatch({ nodeId: 'n', typeUrl: TYPE_URLS.identityPolicy, knownVersion: response.version }, rearm);
    };
    cache.createWatch({ nodeId: 'n', typeUrl: TYPE_URLS.identityPolicy, knownVersion: cache.versions('n')![TYPE_URLS.identityPolicy]! }, rearm);
    cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, 1)));
    cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, 2)));
    expect(seen).toHaveLength(2);
    expect(new Set(seen).size).toBe(2);
  });
});

describe('SnapshotCache node status', () => {
  test('records sent, acked and the last NACK; a NACK leaves the acked version in force', () => {
    let now = 10;
    const cache = new SnapshotCache({ clock: () => now });
    cache.setSnapshot('n', setsFor(samples.ciRunner));
    const typeUrl = TYPE_URLS.identityPolicy;
    cache.recordDelivery({ kind: 'sent', nodeId: 'n', typeUrl, version: 'v1' });
    now = 20;
    cache.recordDelivery({ kind: 'ack', nodeId: 'n', typeUrl, version: 'v1' });
    cache.recordDelivery({ kind: 'sent', nodeId: 'n', typeUrl, version: 'v2' });
    now = 30;
    cache.recordDelivery({ kind: 'nack', nodeId: 'n', typeUrl, version: 'v2', error: { code: 'GH_ERR_X', message: 'bad rule' } });
    expect(cache.nodeStatus('n')!.types[typeUrl]).toEqual({
      sentVersion: 'v2',
      sentAtMs: 20,
      ackedVersion: 'v1',
      ackedAtMs: 20,
      lastNack: { version: 'v2', code: 'GH_ERR_X', message: 'bad rule', atMs: 30 },
    });
    expect(cache.nodeStatus('n')!.currentVersions).toEqual(cache.versions('n'));
    expect(cache.nodeIds()).toEqual(['n']);
  });

  test('clearSnapshot forgets the node', () => {
    const cache = new SnapshotCache();
    cache.setSnapshot('n', setsFor(samples.ciRunner));
    cache.recordDelivery({ kind: 'ack', nodeId: 'n', typeUrl: TYPE_URLS.credential, version: 'v1' });
    cache.clearSnapshot('n');
    expect(cache.nodeStatus('n')).toBeUndefined();
    expect(cache.nodeIds()).toEqual([]);
    expect(cache.versions('n')).toBeUndefined();
  });
});
