// The cluster control plane over in-memory stores: which pods get which snapshot, one credential per
// identity and resource however many pods, recomputation on changes, pod changes applied to their
// own node alone (and always to the state a full recompute gives), removal of gone pods, fail
// closed when an identity goes, and revocation for the ProtectedResource finalizer.
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { isGatehouseError } from '../../api/errors.js';
import type { ProtectedResource } from '../../api/kinds/kinds.js';
import { silentLogger } from '../../api/logging/logger.js';
import { ALL_TYPE_URLS, fromResourceSets, TYPE_URLS, type ResourceSets, type TypedResource, type TypeUrl } from '../../api/proto/snapshot-resources.js';
import type { SidecarSnapshot } from '../../api/snapshot/sidecar-snapshot.js';
import { SnapshotCache } from '../control-plane/snapshot-cache.js';
import type { CredentialIssuer, CredentialRequest, IssuedCredential } from '../credentials/credential-issuer.js';
import { JwtIssuer } from '../credentials/jwt-issuer.js';
import { StaticCredentialIssuer } from '../credentials/static-issuer.js';
import type { KubePod } from '../reconcile/cluster-objects.js';
import { edited, encodedSecret, storesFromFolder, type MemoryStores } from '../reconcile/testing/memory-cluster.js';
import { secretLookupFrom } from './cluster-issuers.js';
import { ClusterControlPlane } from './cluster-control-plane.js';
import { INJECTED_ANNOTATION } from './sidecar-pods.js';

const SAMPLES = join(process.cwd(), 'config', 'samples');
const NS = 'payments';

/** Remembers which nodes were handed a snapshot, so a test sees which pods a change touched. */
class RecordingCache extends SnapshotCache {
  readonly setFor: string[] = [];
  readonly lastSets = new Map<string, ResourceSets>();

  override setSnapshot(nodeId: string, sets: ResourceSets): TypeUrl[] {
    this.setFor.push(nodeId);
    this.lastSets.set(nodeId, sets);
    return super.setSnapshot(nodeId, sets);
  }
}

async function metricValue(registry: Registry, name: string): Promise<number> {
  const metric = registry.getSingleMetric(name);
  return metric ? ((await metric.get()).values[0]?.value ?? 0) : 0;
}

/** Stands in for PostgreSQL (the real issuer is tested against a real server in operator/credentials). */
class RecordingDynamicIssuer implements CredentialIssuer {
  readonly strategy = 'postgres-dynamic';
  readonly issued: string[] = [];
  readonly revoked: string[] = [];
  failRevocations = false;
  private next = 0;

  async issue(request: CredentialRequest): Promise<IssuedCredential> {
    const id = `gh_role_${this.next++}`;
    this.issued.push(`${request.identity.metadata.name}@${request.resource.metadata.name}=${id}`);
    return { strategy: 'postgres-dynamic', id, username: id, password: `pw-${id}`, issuedAt: Date.now(), expiresAt: Date.now() + 600_000, renewAt: Date.now() + 400_000 };
  }

  async revoke(credential: IssuedCredential, _resource: ProtectedResource): Promise<void> {
    if (this.failRevocations) throw new Error('database unreachable');
    this.revoked.push(credential.id);
  }
}

let stores: MemoryStores;
let cache: RecordingCache;
let registry: Registry;
let dynamic: RecordingDynamicIssuer;
let removed: string[];
let plane: ClusterControlPlane;

function pod(name: string, serviceAccountName: string, injected = true): KubePod {
  return {
    metadata: { name, namespace: NS, ...(injected ? { annotations: { [INJECTED_ANNOTATION]: 'true' } } : {}) },
    spec: { serviceAccountName },
    status: { phase: 'Running' },
  };
}

function snapshotOf(nodeId: string): SidecarSnapshot | undefined {
  if (!cache.versions(nodeId)) return undefined;
  const sets: Partial<Record<string, readonly TypedResource[]>> = {};
  for (const typeUrl of ALL_TYPE_URLS) {
    const watch = cache.createWatch({ nodeId, typeUrl, knownVersion: '' }, () => undefined);
    if (watch.kind !== 'immediate') throw new Error(`nothing cached for ${typeUrl}`);
    sets[typeUrl] = watch.response.resources;
  }
  return fromResourceSets(sets as ResourceSets);
}

/** The resource list the cache holds for a node and type (the very object it hashed). */
function cachedList(nodeId: string, typeUrl: TypeUrl): readonly TypedResource[] {
  const watch = cache.createWatch({ nodeId, typeUrl, knownVersion: '' }, () => undefined);
  if (watch.kind !== 'immediate') throw new Error(`nothing cached for ${nodeId} ${typeUrl}`);
  return watch.response.resources;
}

function resourcesOf(nodeId: string): string[] | undefined {
  return snapshotOf(nodeId)?.resources.map((entry) => entry.resource.metadata.name);
}

beforeEach(async () => {
  stores = await storesFromFolder(SAMPLES);
  cache = new RecordingCache();
  registry = new Registry();
  dynamic = new RecordingDynamicIssuer();
  removed = [];
  const logger = silentLogger();
  plane = new ClusterControlPlane({
    stores,
    cache,
    issuers: { static: new StaticCredentialIssuer({ secrets: secretLookupFrom(stores.secrets) }), 'postgres-dynamic': dynamic, jwt: new JwtIssuer({ logger, issuer: 'gatehouse-test' }) },
    logger,
    registry,
    debounceMs: 5,
    onNodeRemoved: (nodeId) => removed.push(nodeId),
  });
  stores.pods.put(pod('ci-1', 'ci-runner'));
  stores.pods.put(pod('ci-2', 'ci-runner'));
  stores.pods.put(pod('billing-1', 'billing'));
  stores.pods.put(pod('plain', 'ci-runner', false));
  stores.pods.put(pod('stranger', 'no-identity-claims-me'));
});

afterEach(async () => {
  await plane.close();
});

async function started(): Promise<void> {
  plane.start();
  await plane.settled();
}

describe('ClusterControlPlane', () => {
  test('every injected pod with an identity gets its identity\'s snapshot, with the credential from the Secret', async () => {
    await started();
    const ci = snapshotOf(`${NS}/ci-1`)!;
    expect(ci.identity.metadata.name).toBe('ci-runner');
    expect(ci.resources.map((entry) => entry.resource.metadata.name)).toEqual(['orders-db']);
    expect(ci.resources[0]!.credential).toEqual({ username: 'gatehouse_demo', password: 'demo-only-not-a-secret' });
    expect(snapshotOf(`${NS}/ci-2`)!.version).toBe(ci.version);
    const billing = snapshotOf(`${NS}/billing-1`)!;
    expect(billing.identity.metadata.name).toBe('billing-service');
    expect(billing.resources.map((entry) => entry.resource.metadata.name).sort()).toEqual(['billing-api', 'orders-db']);
    expect(billing.resources.find((entry) => entry.resource.metadata.name === 'billing-api')!.credential!.password.split('.')).toHaveLength(3);
    // Not injected, or nobody's identity: no snapshot.
    expect(cache.versions(`${NS}/plain`)).toBeUndefined();
    expect(cache.versions(`${NS}/stranger`)).toBeUndefined();
    expect(plane.nodeIds().sort()).toEqual([`${NS}/billing-1`, `${NS}/ci-1`, `${NS}/ci-2`]);
  });

  test('one credential per identity and resource, however many pods share it', async () => {
    stores.resources.put(edited(stores.resources.get(NS, 'orders-db')!, (resource) => {
      resource.spec.credentials.strategy = 'postgres-dynamic';
    }));
    stores.pods.put(pod('ci-3', 'ci-runner'));
    await started();
    expect(dynamic.issued.filter((entry) => entry.startsWith('ci-runner@'))).toHaveLength(1);
    const password = snapshotOf(`${NS}/ci-1`)!.resources[0]!.credential!.password;
    expect(snapshotOf(`${NS}/ci-3`)!.resources[0]!.credential!.password).toBe(password);
    expect(snapshotOf(`${NS}/billing-1`)!.resources.find((entry) => entry.resource.metadata.name === 'orders-db')!.credential!.password).not.toBe(password);
  });

  test('a deleted AccessPolicy leaves the snapshot within the debounce', async () => {
    await started();
    expect(snapshotOf(`${NS}/billing-1`)!.resources.map((entry) => entry.resource.metadata.name)).toContain('billing-api');
    const before = cache.versions(`${NS}/billing-1`)!;
    const started_ = Date.now();
    stores.policies.remove(NS, 'billing-service-api');
    plane.changed();
    await plane.settled();
    expect(Date.now() - started_).toBeLessThan(500);
    expect(resourcesOf(`${NS}/billing-1`)).toEqual(['orders-db']);
    expect(cache.versions(`${NS}/billing-1`)).not.toEqual(before);
    // Other identities' snapshots do not move.
    expect(resourcesOf(`${NS}/ci-1`)).toEqual(['orders-db']);
  });

  test('the policy is published even while credentials cannot be issued', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => {
      release = resolve;
    });
    const slowIssue = dynamic.issue.bind(dynamic);
    dynamic.issue = async (request) => {
      await blocked;
      return slowIssue(request);
    };
    stores.resources.put(edited(stores.resources.get(NS, 'orders-db')!, (resource) => {
      resource.spec.credentials.strategy = 'postgres-dynamic';
    }));
    plane.start();
    // Published before any credential exists: the resource is there, without a credential.
    expect(snapshotOf(`${NS}/ci-1`)!.resources[0]!.credential).toBeUndefined();
    stores.policies.remove(NS, 'ci-read-only');
    plane.changed();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(snapshotOf(`${NS}/ci-1`)!.resources[0]!.policies.map((policy) => policy.metadata.name)).toEqual(['baseline-guardrails']);
    release();
    await plane.settled();
  });

  test('a status write (new resourceVersion, same spec) does not change any snapshot', async () => {
    await started();
    const before = cache.versions(`${NS}/ci-1`);
    const policy = structuredClone(stores.policies.get(NS, 'ci-read-only')!);
    policy.metadata.resourceVersion = '999999';
    policy.status = { observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True', reason: 'Ready', message: 'ok', lastTransitionTime: '2026-11-22T10:00:00Z' }] };
    stores.policies.put(policy);
    plane.changed();
    await plane.settled();
    expect(cache.versions(`${NS}/ci-1`)).toEqual(before);
    // The snapshot carries names and specs only.
    expect(snapshotOf(`${NS}/ci-1`)!.resources[0]!.policies.every((entry) => Object.keys(entry.metadata).sort().join() === 'name,namespace')).toBe(true);
  });

  test('a rotated Secret reaches the snapshot as a new credential', async () => {
    await started();
    stores.secrets.put(encodedSecret(NS, 'orders-db-admin', { username: 'gatehouse_demo', password: 'rotated' }));
    plane.changed();
    await plane.settled();
    expect(snapshotOf(`${NS}/ci-1`)!.resources[0]!.credential!.password).toBe('rotated');
  });

  test('a pod that goes away is removed from the cache; a new pod is added', async () => {
    await started();
    stores.pods.remove(NS, 'ci-2');
    stores.pods.put(pod('ci-4', 'ci-runner'));
    plane.changed();
    await plane.settled();
    expect(cache.versions(`${NS}/ci-2`)).toBeUndefined();
    expect(removed).toEqual([`${NS}/ci-2`]);
    expect(resourcesOf(`${NS}/ci-4`)).toEqual(['orders-db']);
  });

  test('a finished pod is no longer served', async () => {
    await started();
    stores.pods.put({ ...pod('ci-2', 'ci-runner'), status: { phase: 'Succeeded' } });
    plane.changed();
    await plane.settled();
    expect(cache.versions(`${NS}/ci-2`)).toBeUndefined();
  });

  test('an identity deleted under a running pod leaves it an empty snapshot: everything denied', async () => {
    await started();
    stores.identities.remove(NS, 'ci-runner');
    plane.changed();
    await plane.settled();
    const snapshot = snapshotOf(`${NS}/ci-1`)!;
    expect(snapshot.identity.metadata.name).toBe('ci-runner');
    expect(snapshot.resources).toEqual([]);
    // And it stays empty on later recomputes.
    plane.changed();
    await plane.settled();
    expect(resourcesOf(`${NS}/ci-1`)).toEqual([]);
  });

  test('a resource being deleted leaves the snapshots and its credentials are revoked', async () => {
    stores.resources.put(edited(stores.resources.get(NS, 'orders-db')!, (resource) => {
      resource.spec.credentials.strategy = 'postgres-dynamic';
    }));
    await started();
    expect(dynamic.issued).toHaveLength(2); // ci-runner and billing-service; backup-agent has no pod
    const deleting = structuredClone(stores.resources.get(NS, 'orders-db')!) as ProtectedResource & { metadata: { deletionTimestamp?: string } };
    deleting.metadata.deletionTimestamp = new Date().toISOString();
    stores.resources.put(deleting);
    plane.changed();
    await plane.settled();
    expect(resourcesOf(`${NS}/ci-1`)).toEqual([]);
    expect(dynamic.revoked.sort()).toEqual(['gh_role_0', 'gh_role_1']);
    await expect(plane.revokeResource(deleting)).resolves.toBeUndefined();
  });

  test('revokeResource rejects while a revocation fails, and succeeds once it goes through', async () => {
    stores.resources.put(edited(stores.resources.get(NS, 'orders-db')!, (resource) => {
      resource.spec.credentials.strategy = 'postgres-dynamic';
    }));
    await started();
    const deleting = structuredClone(stores.resources.get(NS, 'orders-db')!) as ProtectedResource & { metadata: { deletionTimestamp?: string } };
    deleting.metadata.deletionTimestamp = new Date().toISOString();
    stores.resources.put(deleting);
    dynamic.failRevocations = true;
    const refusal = await plane.revokeResource(deleting).catch((error: unknown) => error);
    expect(isGatehouseError(refusal, 'GH_ERR_CLUSTER_REVOCATION_PENDING')).toBe(true);
    expect((refusal as Error).message).toContain('2 credential(s)');
    dynamic.failRevocations = false;
    await plane.revokeResource(deleting);
    expect(dynamic.revoked.sort()).toEqual(['gh_role_0', 'gh_role_1']);
  });
});

describe('ClusterControlPlane: pod changes redo only that pod', () => {
  const counter = (name: string): Promise<number> => metricValue(registry, `gatehouse_control_plane_${name}`);
  const usePostgresDynamic = (): void => {
    stores.resources.put(edited(stores.resources.get(NS, 'orders-db')!, (resource) => {
      resource.spec.credentials.strategy = 'postgres-dynamic';
    }));
  };
  const change = (next: KubePod): void => {
    stores.pods.put(next);
    plane.podChanged(next);
  };
  const drop = (name: string): void => {
    const gone = stores.pods.get(NS, name)!;
    stores.pods.remove(NS, name);
    plane.podChanged(gone);
  };

  test('a pod joining an identity that has pods: only its node is set, with the lists the others hold', async () => {
    await started();
    expect(await counter('recomputes_total')).toBe(1);
    expect(await counter('selections_total')).toBe(2); // ci-runner and billing-service
    cache.setFor.length = 0;
    change(pod('ci-3', 'ci-runner'));
    await plane.settled();
    expect(cache.setFor).toEqual([`${NS}/ci-3`]);
    expect(await counter('recomputes_total')).toBe(1);
    expect(await counter('selections_total')).toBe(2);
    expect(await counter('pod_changes_total')).toBe(1);
    expect(cache.versions(`${NS}/ci-3`)).toEqual(cache.versions(`${NS}/ci-1`));
    // The very sets (and lists) ci-1 was last given: the cache hashes them once for every pod of the identity.
    expect(cache.lastSets.get(`${NS}/ci-3`)).toBe(cache.lastSets.get(`${NS}/ci-1`));
    expect(cachedList(`${NS}/ci-3`, TYPE_URLS.credential)).toBe(cachedList(`${NS}/ci-1`, TYPE_URLS.credential));
    expect(snapshotOf(`${NS}/ci-3`)!.resources[0]!.credential).toEqual({ username: 'gatehouse_demo', password: 'demo-only-not-a-secret' });
  });

  test('the first pod of an identity computes its selection and gets its credentials; nobody else is touched', async () => {
    usePostgresDynamic();
    await started();
    cache.setFor.length = 0;
    change(pod('backup-1', 'backup-agent'));
    await plane.settled();
    expect(await counter('recomputes_total')).toBe(1);
    expect(await counter('selections_total')).toBe(3);
    expect(dynamic.issued.filter((entry) => entry.startsWith('backup-agent@'))).toHaveLength(1);
    const backup = snapshotOf(`${NS}/backup-1`)!;
    expect(backup.identity.metadata.name).toBe('backup-agent');
    expect(backup.resources.map((entry) => entry.resource.metadata.name)).toEqual(['orders-db']);
    expect(backup.resources[0]!.credential!.username).toMatch(/^gh_role_/);
    // Published first without the credential, then again once it was issued; no other pod.
    expect(new Set(cache.setFor)).toEqual(new Set([`${NS}/backup-1`]));
  });

  test('the last pod of an identity leaving releases its credentials; one of several leaving does not', async () => {
    usePostgresDynamic();
    await started();
    const ciRole = dynamic.issued.find((entry) => entry.startsWith('ci-runner@'))!.split('=')[1];
    const billingRole = dynamic.issued.find((entry) => entry.startsWith('billing-service@'))!.split('=')[1];
    cache.setFor.length = 0;
    drop('ci-1');
    await plane.settled();
    expect(dynamic.revoked).toEqual([]);
    expect(cache.versions(`${NS}/ci-1`)).toBeUndefined();
    expect(snapshotOf(`${NS}/ci-2`)!.resources[0]!.credential!.username).toBe(ciRole);
    drop('ci-2');
    await plane.settled();
    expect(dynamic.revoked).toEqual([ciRole]);
    expect(removed).toEqual([`${NS}/ci-1`, `${NS}/ci-2`]);
    expect(plane.nodeIds()).toEqual([`${NS}/billing-1`]);
    expect(snapshotOf(`${NS}/billing-1`)!.resources.find((entry) => entry.resource.metadata.name === 'orders-db')!.credential!.username).toBe(billingRole);
    expect(cache.setFor).toEqual([]);
    expect(await counter('recomputes_total')).toBe(1);
    // The identity's next first pod selects again and gets a new credential.
    change(pod('ci-9', 'ci-runner'));
    await plane.settled();
    expect(await counter('selections_total')).toBe(3);
    expect(snapshotOf(`${NS}/ci-9`)!.resources[0]!.credential!.username).not.toBe(ciRole);
  });

  test('a pod whose ServiceAccount changes acts as the other identity; the old one is released with its last pod', async () => {
    usePostgresDynamic();
    await started();
    const ciRole = dynamic.issued.find((entry) => entry.startsWith('ci-runner@'))!.split('=')[1];
    cache.setFor.length = 0;
    change(pod('ci-2', 'billing'));
    await plane.settled();
    expect(cache.setFor).toEqual([`${NS}/ci-2`]);
    expect(snapshotOf(`${NS}/ci-2`)!.identity.metadata.name).toBe('billing-service');
    expect(cache.versions(`${NS}/ci-2`)).toEqual(cache.versions(`${NS}/billing-1`));
    expect(dynamic.revoked).toEqual([]);
    change(pod('ci-1', 'billing'));
    await plane.settled();
    expect(dynamic.revoked).toEqual([ciRole]);
    expect(snapshotOf(`${NS}/ci-1`)!.identity.metadata.name).toBe('billing-service');
    expect(await counter('selections_total')).toBe(2);
    // To a ServiceAccount no identity claims: it keeps the identity it had, with nothing allowed.
    change(pod('ci-1', 'no-identity-claims-me'));
    await plane.settled();
    expect(snapshotOf(`${NS}/ci-1`)!.identity.metadata.name).toBe('billing-service');
    expect(resourcesOf(`${NS}/ci-1`)).toEqual([]);
    expect(resourcesOf(`${NS}/ci-2`)).toEqual(['billing-api', 'orders-db']);
    expect(await counter('recomputes_total')).toBe(1);
  });

  test('an orphaned pod stays denied through its own changes; a new pod of the gone identity gets nothing', async () => {
    await started();
    stores.identities.remove(NS, 'ci-runner');
    plane.changed();
    await plane.settled();
    expect(resourcesOf(`${NS}/ci-1`)).toEqual([]);
    change({ ...pod('ci-1', 'ci-runner'), metadata: { ...pod('ci-1', 'ci-runner').metadata, uid: 'recreated' } });
    change(pod('ci-5', 'ci-runner'));
    await plane.settled();
    const orphan = snapshotOf(`${NS}/ci-1`)!;
    expect(orphan.identity.metadata.name).toBe('ci-runner');
    expect(orphan.resources).toEqual([]);
    expect(cache.versions(`${NS}/ci-5`)).toBeUndefined();
    // A full recompute agrees, and the identity coming back serves both again.
    plane.changed();
    await plane.settled();
    expect(resourcesOf(`${NS}/ci-1`)).toEqual([]);
    const restored = (await storesFromFolder(SAMPLES)).identities.get(NS, 'ci-runner')!;
    stores.identities.put(restored);
    plane.changed();
    await plane.settled();
    expect(resourcesOf(`${NS}/ci-1`)).toEqual(['orders-db']);
    expect(resourcesOf(`${NS}/ci-5`)).toEqual(['orders-db']);
  });

  test('pod changes in one debounce are applied together, and a Gatehouse change with them makes it a full recompute', async () => {
    await started();
    change(pod('ci-3', 'ci-runner'));
    change(pod('ci-4', 'ci-runner'));
    drop('billing-1');
    await plane.settled();
    expect(await counter('pod_changes_total')).toBe(3);
    expect(await counter('recomputes_total')).toBe(1);
    change(pod('ci-6', 'ci-runner'));
    stores.policies.remove(NS, 'ci-read-only');
    plane.changed();
    await plane.settled();
    expect(await counter('recomputes_total')).toBe(2);
    expect(await counter('pod_changes_total')).toBe(3);
    expect(snapshotOf(`${NS}/ci-6`)!.resources[0]!.policies.map((policy) => policy.metadata.name)).toEqual(['baseline-guardrails']);
    expect(cache.versions(`${NS}/ci-6`)).toEqual(cache.versions(`${NS}/ci-1`));
  });
});

/** Issues the same credential for the same identity and resource every time, so two planes can be compared byte for byte. */
class DeterministicIssuer implements CredentialIssuer {
  private static readonly expiresAt = Date.now() + 3_600_000;

  constructor(readonly strategy: 'jwt' | 'postgres-dynamic') {}

  async issue(request: CredentialRequest): Promise<IssuedCredential> {
    const id = `${request.identity.metadata.name}@${request.resource.metadata.name}`;
    return { strategy: this.strategy, id, username: id, password: `pw-${id}`, issuedAt: 0, expiresAt: DeterministicIssuer.expiresAt, renewAt: DeterministicIssuer.expiresAt };
  }

  async revoke(): Promise<void> {}
}

/** mulberry32: a small seeded generator, so a failing sequence can be replayed from its seed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('ClusterControlPlane: incremental pod changes end where a full recompute does', () => {
  const POD_NAMES = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'];
  const SERVICE_ACCOUNTS = ['ci-runner', 'billing', 'backup-agent', 'no-identity-claims-me'];

  test('random sequences of pod adds, updates and deletes, policy and identity changes', async () => {
    const originals = await storesFromFolder(SAMPLES);
    const policyNames = originals.policies.list(NS).map((policy) => policy.metadata.name);
    const identityNames = originals.identities.list(NS).map((identity) => identity.metadata.name);
    for (let seed = 1; seed <= 25; seed++) {
      const random = seededRandom(seed);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
      const shared = await storesFromFolder(SAMPLES);
      const make = (planeCache: SnapshotCache, planeRegistry: Registry): ClusterControlPlane => new ClusterControlPlane({
        stores: shared,
        cache: planeCache,
        issuers: { static: new StaticCredentialIssuer({ secrets: secretLookupFrom(shared.secrets) }), jwt: new DeterministicIssuer('jwt'), 'postgres-dynamic': new DeterministicIssuer('postgres-dynamic') },
        logger: silentLogger(),
        registry: planeRegistry,
        debounceMs: 1,
      });
      const incrementalCache = new SnapshotCache();
      const fullCache = new SnapshotCache();
      const incrementalRegistry = new Registry();
      const incremental = make(incrementalCache, incrementalRegistry);
      const full = make(fullCache, new Registry());
      incremental.start();
      full.start();
      const log: string[] = [];
      let batchesWithOtherChanges = 0;
      let otherChangeInBatch = false;
      try {
        for (let step = 0; step < 30; step++) {
          const roll = random();
          if (roll < 0.55) {
            const next: KubePod = {
              metadata: { name: pick(POD_NAMES), namespace: NS, ...(random() < 0.85 ? { annotations: { [INJECTED_ANNOTATION]: 'true' } } : {}) },
              spec: { serviceAccountName: pick(SERVICE_ACCOUNTS) },
              status: { phase: random() < 0.1 ? 'Succeeded' : 'Running' },
            };
            shared.pods.put(next);
            incremental.podChanged(next);
            log.push(`put ${next.metadata.name} sa=${next.spec!.serviceAccountName} injected=${next.metadata.annotations !== undefined} ${next.status!.phase}`);
          } else if (roll < 0.75) {
            const name = pick(POD_NAMES);
            const gone = shared.pods.get(NS, name);
            shared.pods.remove(NS, name);
            if (gone) incremental.podChanged(gone);
            log.push(`delete ${name}`);
          } else if (roll < 0.88) {
            const name = pick(policyNames);
            if (shared.policies.get(NS, name)) shared.policies.remove(NS, name);
            else shared.policies.put(originals.policies.get(NS, name)!);
            incremental.changed();
            otherChangeInBatch = true;
            log.push(`toggle policy ${name}`);
          } else {
            const name = pick(identityNames);
            if (shared.identities.get(NS, name)) shared.identities.remove(NS, name);
            else shared.identities.put(originals.identities.get(NS, name)!);
            incremental.changed();
            otherChangeInBatch = true;
            log.push(`toggle identity ${name}`);
          }
          // The reference recomputes everything on every change.
          full.changed();
          if (random() < 0.5 && step < 29) continue;
          await Promise.all([incremental.settled(), full.settled()]);
          if (otherChangeInBatch) batchesWithOtherChanges++;
          otherChangeInBatch = false;
          log.push('settle');
          const stateOf = (planeCache: SnapshotCache, plane_: ClusterControlPlane) => ({
            nodes: [...plane_.nodeIds()].sort(),
            versions: POD_NAMES.map((name) => planeCache.versions(`${NS}/${name}`) ?? null),
          });
          expect({ seed, log, state: stateOf(incrementalCache, incremental) }).toEqual({ seed, log, state: stateOf(fullCache, full) });
        }
        // Pod changes alone never caused a full recompute (the start did one).
        expect(await metricValue(incrementalRegistry, 'gatehouse_control_plane_recomputes_total')).toBe(1 + batchesWithOtherChanges);
      } finally {
        await incremental.close();
        await full.close();
      }
    }
  });
});
