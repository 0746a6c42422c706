// The three reconcilers over in-memory stores: what Ready says for the samples and for each kind of
// breakage, that status is written only when it changes, and the credentials finalizer.
import { join } from 'node:path';
import { silentLogger } from '../../api/logging/logger.js';
import type { ProtectedResource } from '../../api/kinds/kinds.js';
import { conditionTime } from '../kube/conditions.js';
import { ClusterValidation } from './cluster-config.js';
import { keyOf } from './cluster-objects.js';
import { dependentsOf } from './dependents.js';
import { IdentityReconciler } from './identity-reconciler.js';
import { PolicyReconciler } from './policy-reconciler.js';
import type { Condition } from './ready-condition.js';
import { CREDENTIALS_FINALIZER, ResourceReconciler, type CredentialRevoker } from './resource-reconciler.js';
import { edited, encodedSecret, MemoryWriter, storesFromFolder, type MemoryStores } from './testing/memory-cluster.js';

const SAMPLES = join(process.cwd(), 'config', 'samples');
const NS = 'payments';

let stores: MemoryStores;
let writer: MemoryWriter;
let revoked: string[];
let revokeFailure: Error | undefined;
let clock: Date;
let identities: IdentityReconciler;
let resources: ResourceReconciler;
let policies: PolicyReconciler;

beforeEach(async () => {
  stores = await storesFromFolder(SAMPLES);
  writer = new MemoryWriter(stores);
  revoked = [];
  revokeFailure = undefined;
  clock = new Date('2026-11-22T10:00:00Z');
  const revoker: CredentialRevoker = {
    async revokeResource(resource: ProtectedResource) {
      if (revokeFailure) throw revokeFailure;
      revoked.push(keyOf(resource));
    },
  };
  const deps = { stores, validation: new ClusterValidation(stores), writer, now: () => clock };
  identities = new IdentityReconciler(deps);
  resources = new ResourceReconciler({ ...deps, revoker, logger: silentLogger() });
  policies = new PolicyReconciler(deps);
});

function ready(store: { get(namespace: string, name: string): { status?: { conditions?: Condition[] } } | undefined }, name: string): Condition | undefined {
  return store.get(NS, name)?.status?.conditions?.find((condition) => condition.type === 'Ready');
}

async function reconcileAll(): Promise<void> {
  for (const identity of stores.identities.list()) await identities.reconcile(keyOf(identity));
  for (const resource of stores.resources.list()) await resources.reconcile(keyOf(resource));
  for (const policy of stores.policies.list()) await policies.reconcile(keyOf(policy));
}

describe('reconcilers on the samples', () => {
  test('every sample object is Ready=True with observedGeneration', async () => {
    await reconcileAll();
    const all = [...stores.identities.list(), ...stores.resources.list(), ...stores.policies.list()];
    expect(all.length).toBeGreaterThan(8);
    for (const object of all) {
      const condition = object.status?.conditions?.find((entry) => entry.type === 'Ready');
      expect({ name: object.metadata.name, status: condition?.status, reason: condition?.reason }).toEqual({ name: object.metadata.name, status: 'True', reason: 'Ready' });
      expect(condition?.observedGeneration).toBe(object.metadata.generation);
      expect(object.status?.observedGeneration).toBe(object.metadata.generation);
      expect(condition?.lastTransitionTime).toBe(conditionTime(clock));
    }
  });

  test('status is written only when it changes; a spec edit is written with the new generation', async () => {
    await reconcileAll();
    const first = writer.statusWrites.length;
    await reconcileAll();
    expect(writer.statusWrites.length).toBe(first);

    const before = ready(stores.policies, 'ci-read-only')!;
    clock = new Date('2026-11-22T11:00:00Z');
    stores.policies.put(edited(stores.policies.get(NS, 'ci-read-only')!, (policy) => policy.spec.rules.pop()));
    await policies.reconcile(`${NS}/ci-read-only`);
    expect(writer.statusWrites.length).toBe(first + 1);
    const after = ready(stores.policies, 'ci-read-only')!;
    expect(after.observedGeneration).toBe(2);
    expect(stores.policies.get(NS, 'ci-read-only')!.status?.observedGeneration).toBe(2);
    expect(after.message).not.toBe(before.message);
    // Still True: the transition time stays where the status last changed.
    expect(after.lastTransitionTime).toBe(before.lastTransitionTime);
  });
});

describe('NonHumanIdentity', () => {
  test('ServiceAccountNotFound until the ServiceAccount exists', async () => {
    stores.serviceAccounts.remove(NS, 'ci-runner');
    await identities.reconcile(`${NS}/ci-runner`);
    expect(ready(stores.identities, 'ci-runner')).toMatchObject({ status: 'False', reason: 'ServiceAccountNotFound' });
    expect(ready(stores.identities, 'ci-runner')!.message).toContain('ServiceAccount ci-runner does not exist in namespace payments');

    clock = new Date('2026-11-22T10:05:00Z');
    stores.serviceAccounts.put({ metadata: { name: 'ci-runner', namespace: NS } });
    await identities.reconcile(`${NS}/ci-runner`);
    expect(ready(stores.identities, 'ci-runner')).toMatchObject({ status: 'True', reason: 'Ready', lastTransitionTime: conditionTime(clock) });
  });

  test('two identities claiming one ServiceAccount: IdentityConflict on the second', async () => {
    stores.identities.put(edited(stores.identities.get(NS, 'backup-agent')!, (identity) => {
      identity.spec.serviceAccountName = 'ci-runner';
    }));
    await reconcileAll();
    const conflicted = [ready(stores.identities, 'backup-agent'), ready(stores.identities, 'ci-runner')].filter((condition) => condition?.status === 'False');
    expect(conflicted).toHaveLength(1);
    expect(conflicted[0]).toMatchObject({ reason: 'IdentityConflict' });
  });
});

describe('ProtectedResource', () => {
  const cases: { name: string; change: () => void; reason: string; mentions: string }[] = [
    { name: 'credentials Secret deleted', change: () => stores.secrets.remove(NS, 'orders-db-admin'), reason: 'SecretNotFound', mentions: 'orders-db-admin' },
    {
      name: 'credentials Secret without password',
      change: () => stores.secrets.put(encodedSecret(NS, 'orders-db-admin', { username: 'app' })),
      reason: 'SecretKeysMissing',
      mentions: 'password',
    },
  ];
  test.each(cases)('$name: $reason', async ({ change, reason, mentions }) => {
    await reconcileAll();
    change();
    await resources.reconcile(`${NS}/orders-db`);
    const condition = ready(stores.resources, 'orders-db')!;
    expect(condition).toMatchObject({ status: 'False', reason });
    expect(condition.message).toContain(mentions);
    // Another resource is not affected.
    expect(ready(stores.resources, 'billing-api')).toMatchObject({ status: 'True' });
  });

  test('CA Secret: CASecretNotFound, then CASecretInvalid when it holds no PEM, then CASecretKeyMissing', async () => {
    stores.secrets.remove(NS, 'billing-api-ca');
    await resources.reconcile(`${NS}/billing-api`);
    expect(ready(stores.resources, 'billing-api')).toMatchObject({ status: 'False', reason: 'CASecretNotFound' });
    stores.secrets.put(encodedSecret(NS, 'billing-api-ca', { 'ca.crt': 'not a certificate' }));
    await resources.reconcile(`${NS}/billing-api`);
    expect(ready(stores.resources, 'billing-api')).toMatchObject({ status: 'False', reason: 'CASecretInvalid' });
    stores.secrets.put(encodedSecret(NS, 'billing-api-ca', { 'bundle.pem': '-----BEGIN CERTIFICATE-----' }));
    await resources.reconcile(`${NS}/billing-api`);
    expect(ready(stores.resources, 'billing-api')).toMatchObject({ status: 'False', reason: 'CASecretKeyMissing' });
  });

  test('two resources on one sidecar port: PortConflict', async () => {
    stores.resources.put(edited(stores.resources.get(NS, 'billing-api')!, (resource) => {
      resource.spec.sidecar.port = 15432;
    }));
    await reconcileAll();
    const reasons = [ready(stores.resources, 'billing-api')!.reason, ready(stores.resources, 'orders-db')!.reason].sort();
    expect(reasons).toEqual(['PortConflict', 'Ready']);
  });

  test('postgres-dynamic: the finalizer is added; on deletion credentials are revoked, then it is removed', async () => {
    stores.resources.put(edited(stores.resources.get(NS, 'orders-db')!, (resource) => {
      resource.spec.credentials.strategy = 'postgres-dynamic';
    }));
    await resources.reconcile(`${NS}/orders-db`);
    const live = stores.resources.get(NS, 'orders-db')! as ProtectedResource & { metadata: { finalizers?: string[]; deletionTimestamp?: string } };
    expect(live.metadata.finalizers).toEqual([CREDENTIALS_FINALIZER]);
    expect(ready(stores.resources, 'orders-db')).toMatchObject({ status: 'True' });

    // Deletion with a second, foreign finalizer: ours goes after the revocation, theirs stays.
    const deleting = structuredClone(live);
    deleting.metadata.finalizers = ['example.com/other', CREDENTIALS_FINALIZER];
    deleting.metadata.deletionTimestamp = clock.toISOString();
    stores.resources.put(deleting);
    revokeFailure = new Error('database unreachable');
    await expect(resources.reconcile(`${NS}/orders-db`)).rejects.toThrow('database unreachable');
    expect((stores.resources.get(NS, 'orders-db')!.metadata as { finalizers?: string[] }).finalizers).toContain(CREDENTIALS_FINALIZER);

    revokeFailure = undefined;
    await resources.reconcile(`${NS}/orders-db`);
    expect(revoked).toEqual([`${NS}/orders-db`]);
    expect((stores.resources.get(NS, 'orders-db')!.metadata as { finalizers?: string[] }).finalizers).toEqual(['example.com/other']);
  });

  test('a static resource carries no finalizer; switching away from postgres-dynamic removes it', async () => {
    await resources.reconcile(`${NS}/orders-db`);
    expect(writer.finalizerWrites).toEqual([]);
    stores.resources.put(edited(stores.resources.get(NS, 'orders-db')!, (resource) => {
      resource.spec.credentials.strategy = 'postgres-dynamic';
    }));
    await resources.reconcile(`${NS}/orders-db`);
    stores.resources.put(edited(stores.resources.get(NS, 'orders-db')!, (resource) => {
      resource.spec.credentials.strategy = 'static';
    }));
    await resources.reconcile(`${NS}/orders-db`);
    expect(writer.finalizerWrites.map((write) => write.finalizers)).toEqual([[CREDENTIALS_FINALIZER], []]);
    expect(revoked).toEqual([]);
  });

  test('deleting a resource without the finalizer changes nothing', async () => {
    const deleting = structuredClone(stores.resources.get(NS, 'orders-db')!) as ProtectedResource & { metadata: { deletionTimestamp?: string } };
    deleting.metadata.deletionTimestamp = clock.toISOString();
    stores.resources.put(deleting);
    await resources.reconcile(`${NS}/orders-db`);
    expect(writer.statusWrites).toEqual([]);
    expect(writer.finalizerWrites).toEqual([]);
  });
});

describe('AccessPolicy', () => {
  test('its resource deleted: ResourceNotFound naming it; back again: Ready', async () => {
    await reconcileAll();
    const orders = stores.resources.get(NS, 'orders-db')!;
    stores.resources.remove(NS, 'orders-db');
    await policies.reconcile(`${NS}/ci-read-only`);
    const condition = ready(stores.policies, 'ci-read-only')!;
    expect(condition).toMatchObject({ status: 'False', reason: 'ResourceNotFound' });
    expect(condition.message).toContain('spec.resources[0]: ProtectedResource orders-db does not exist in namespace payments');
    stores.resources.put(orders);
    await policies.reconcile(`${NS}/ci-read-only`);
    expect(ready(stores.policies, 'ci-read-only')).toMatchObject({ status: 'True', reason: 'Ready' });
  });

  test('a missing identity and a missing resource: ResourceNotFound first, the message names both', async () => {
    stores.policies.put(edited(stores.policies.get(NS, 'ci-read-only')!, (policy) => {
      policy.spec.subjects = [{ identity: 'nobody' }];
      policy.spec.resources = ['orders-db', 'gone-db'];
    }));
    await policies.reconcile(`${NS}/ci-read-only`);
    const condition = ready(stores.policies, 'ci-read-only')!;
    expect(condition).toMatchObject({ status: 'False', reason: 'ResourceNotFound' });
    expect(condition.message).toContain('NonHumanIdentity nobody does not exist');
    expect(condition.message).toContain('ProtectedResource gone-db does not exist');
  });

  test('only a missing identity: IdentityNotFound', async () => {
    stores.identities.remove(NS, 'ci-runner');
    await policies.reconcile(`${NS}/ci-read-only`);
    expect(ready(stores.policies, 'ci-read-only')).toMatchObject({ status: 'False', reason: 'IdentityNotFound' });
  });

  test('a resource of the same name in another namespace is still not found', async () => {
    const moved = structuredClone(stores.resources.get(NS, 'orders-db')!);
    moved.metadata.namespace = 'elsewhere';
    stores.resources.remove(NS, 'orders-db');
    stores.resources.put(moved);
    await policies.reconcile(`${NS}/ci-read-only`);
    const condition = ready(stores.policies, 'ci-read-only')!;
    expect(condition).toMatchObject({ status: 'False', reason: 'ResourceNotFound' });
    expect(condition.message).toContain('elsewhere');
  });

  test('other errors validate reports are Invalid: a bad glob, a TTL above the identity maximum', async () => {
    stores.policies.put(edited(stores.policies.get(NS, 'ci-read-only')!, (policy) => {
      policy.spec.rules[0]!.tables = ['a.b.c.d'];
      policy.spec.credentialTTL = '2h';
    }));
    await policies.reconcile(`${NS}/ci-read-only`);
    const condition = ready(stores.policies, 'ci-read-only')!;
    expect(condition).toMatchObject({ status: 'False', reason: 'Invalid' });
    expect(condition.message).toContain('spec.rules[0].tables[0]');
    expect(condition.message).toContain('exceeds maxCredentialTTL 15m');
  });

  test('warnings ride along on Ready=True', async () => {
    stores.policies.put(edited(stores.policies.get(NS, 'ci-read-only')!, (policy) => {
      policy.spec.subjects.push({ group: 'nobody-is-in-this-group' });
    }));
    await policies.reconcile(`${NS}/ci-read-only`);
    const condition = ready(stores.policies, 'ci-read-only')!;
    expect(condition).toMatchObject({ status: 'True', reason: 'Ready' });
    expect(condition.message).toContain('nobody-is-in-this-group');
  });

  test('a deleted policy is not written to', async () => {
    stores.policies.remove(NS, 'ci-read-only');
    await policies.reconcile(`${NS}/ci-read-only`);
    expect(writer.statusWrites).toEqual([]);
  });
});

describe('dependentsOf', () => {
  test('a Secret wakes the resources that name it; a ServiceAccount the identities', () => {
    expect(dependentsOf(stores, { kind: 'Secret', namespace: NS, name: 'orders-db-admin' }).resources).toEqual([`${NS}/orders-db`]);
    expect(dependentsOf(stores, { kind: 'Secret', namespace: NS, name: 'billing-api-ca' }).resources).toEqual([`${NS}/billing-api`]);
    expect(dependentsOf(stores, { kind: 'Secret', namespace: 'other', name: 'orders-db-admin' }).resources).toEqual([]);
    expect(dependentsOf(stores, { kind: 'ServiceAccount', namespace: NS, name: 'billing' }).identities).toEqual([`${NS}/billing-service`]);
  });

  test('a resource or identity wakes its namespace\'s policies; a deleted object is still reconciled itself', () => {
    const policyKeys = stores.policies.list(NS).map(keyOf).sort();
    expect([...dependentsOf(stores, { kind: 'ProtectedResource', namespace: NS, name: 'orders-db' }).policies].sort()).toEqual(policyKeys);
    expect([...dependentsOf(stores, { kind: 'NonHumanIdentity', namespace: NS, name: 'ci-runner' }).policies].sort()).toEqual(policyKeys);
    expect(dependentsOf(stores, { kind: 'AccessPolicy', namespace: NS, name: 'gone' }).policies).toContain(`${NS}/gone`);
    expect(dependentsOf(stores, { kind: 'ProtectedResource', namespace: 'other', name: 'x' })).toEqual({ identities: [], resources: ['other/x'], policies: [] });
  });
});
