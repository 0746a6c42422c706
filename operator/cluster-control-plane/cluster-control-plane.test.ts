// The cluster control plane over in-memory stores: which pods get which snapshot, one credential per
// identity and resource however many pods, recomputation on changes, removal of gone pods, fail
// closed when an identity goes, and revocation for the ProtectedResource finalizer.
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { isGatehouseError } from '../../api/errors.js';
import type { ProtectedResource } from '../../api/kinds/kinds.js';
import { silentLogger } from '../../api/logging/logger.js';
import { ALL_TYPE_URLS, fromResourceSets, type ResourceSets, type TypedResource } from '../../api/proto/snapshot-resources.js';
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
let cache: SnapshotCache;
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

function resourcesOf(nodeId: string): string[] | undefined {
  return snapshotOf(nodeId)?.resources.map((entry) => entry.resource.metadata.name);
}

beforeEach(async () => {
  stores = await storesFromFolder(SAMPLES);
  cache = new SnapshotCache();
  dynamic = new RecordingDynamicIssuer();
  removed = [];
  const logger = silentLogger();
  plane = new ClusterControlPlane({
    stores,
    cache,
    issuers: { static: new StaticCredentialIssuer({ secrets: secretLookupFrom(stores.secrets) }), 'postgres-dynamic': dynamic, jwt: new JwtIssuer({ logger, issuer: 'gatehouse-test' }) },
    logger,
    registry: new Registry(),
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
