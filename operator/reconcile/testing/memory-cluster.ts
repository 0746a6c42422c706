// An in-memory cluster for reconciler and control-plane tests: MemoryStores filled from a folder of
// manifests, and a GatehouseWriter that applies what it writes to the stores the way the API
// server would (a new object, generation kept, resourceVersion bumped) and records every write.
import { loadConfigDir } from '../../../api/manifests/config.js';
import type { AccessPolicy, NonHumanIdentity, ObservedStatusT, ProtectedResource } from '../../../api/kinds/kinds.js';
import { MemoryStore, type ClusterStores, type KubePod, type KubeSecret, type KubeServiceAccount } from '../cluster-objects.js';
import type { GatehouseWriter, ReconciledKind, ReconciledObject } from '../status-writer.js';

export interface MemoryStores extends ClusterStores {
  readonly identities: MemoryStore<NonHumanIdentity>;
  readonly resources: MemoryStore<ProtectedResource>;
  readonly policies: MemoryStore<AccessPolicy>;
  readonly secrets: MemoryStore<KubeSecret>;
  readonly serviceAccounts: MemoryStore<KubeServiceAccount>;
  readonly pods: MemoryStore<KubePod>;
}

export function emptyStores(): MemoryStores {
  return {
    identities: new MemoryStore(),
    resources: new MemoryStore(),
    policies: new MemoryStore(),
    secrets: new MemoryStore(),
    serviceAccounts: new MemoryStore(),
    pods: new MemoryStore(),
  };
}

let resourceVersion = 1;

function stamped<T extends { metadata: { generation?: number; resourceVersion?: string } }>(object: T): T {
  const copy = structuredClone(object);
  copy.metadata.generation ??= 1;
  copy.metadata.resourceVersion = String(resourceVersion++);
  return copy;
}

/** The folder's objects as the API server would hold them: Secrets base64-encoded, ServiceAccounts for every identity. */
export async function storesFromFolder(dir: string): Promise<MemoryStores> {
  const config = await loadConfigDir(dir);
  const stores = emptyStores();
  for (const identity of config.identities) {
    stores.identities.put(stamped(identity));
    const serviceAccount = identity.spec.serviceAccountName;
    if (serviceAccount) stores.serviceAccounts.put({ metadata: { name: serviceAccount, namespace: identity.metadata.namespace ?? 'default' } });
  }
  for (const resource of config.resources) stores.resources.put(stamped(resource));
  for (const policy of config.policies) stores.policies.put(stamped(policy));
  for (const secret of config.secrets) stores.secrets.put(encodedSecret(secret.metadata.namespace ?? 'default', secret.metadata.name, secret.data));
  return stores;
}

export function encodedSecret(namespace: string, name: string, values: Record<string, string>): KubeSecret {
  const data = Object.fromEntries(Object.entries(values).map(([key, value]) => [key, Buffer.from(value).toString('base64')]));
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace, resourceVersion: String(resourceVersion++) }, data };
}

/** A changed copy of an object with generation bumped, as a spec edit on the API server does. */
export function edited<T extends ReconciledObject>(object: T, edit: (copy: T) => void): T {
  const copy = structuredClone(object);
  edit(copy);
  copy.metadata.generation = (copy.metadata.generation ?? 1) + 1;
  copy.metadata.resourceVersion = String(resourceVersion++);
  return copy;
}

export interface StatusWrite {
  readonly kind: ReconciledKind;
  readonly key: string;
  readonly status: ObservedStatusT;
}

export class MemoryWriter implements GatehouseWriter {
  readonly statusWrites: StatusWrite[] = [];
  readonly finalizerWrites: { key: string; finalizers: readonly string[] }[] = [];

  constructor(private readonly stores: MemoryStores) {}

  async writeStatus(kind: ReconciledKind, namespace: string, name: string, status: ObservedStatusT): Promise<void> {
    this.statusWrites.push({ kind, key: `${namespace}/${name}`, status: structuredClone(status) });
    const store = this.storeOf(kind);
    const current = store.get(namespace, name);
    if (!current) throw new Error(`${kind} ${namespace}/${name} not found`);
    store.put({ ...structuredClone(current), status: structuredClone(status) });
  }

  async writeFinalizers(object: ReconciledObject, finalizers: readonly string[]): Promise<void> {
    const namespace = object.metadata.namespace ?? 'default';
    this.finalizerWrites.push({ key: `${namespace}/${object.metadata.name}`, finalizers: [...finalizers] });
    const store = this.storeOf(object.kind);
    const current = store.get(namespace, object.metadata.name);
    if (!current) throw new Error(`${object.kind} ${namespace}/${object.metadata.name} not found`);
    const copy = structuredClone(current) as ReconciledObject & { metadata: { finalizers?: string[]; deletionTimestamp?: string } };
    copy.metadata.finalizers = [...finalizers];
    // As on the API server: an object being deleted goes once its last finalizer is removed.
    if (copy.metadata.deletionTimestamp !== undefined && finalizers.length === 0) store.remove(namespace, object.metadata.name);
    else store.put(copy);
  }

  private storeOf(kind: ReconciledKind): MemoryStore<ReconciledObject> {
    const stores: Record<ReconciledKind, MemoryStore<ReconciledObject>> = {
      NonHumanIdentity: this.stores.identities as MemoryStore<ReconciledObject>,
      ProtectedResource: this.stores.resources as MemoryStore<ReconciledObject>,
      AccessPolicy: this.stores.policies as MemoryStore<ReconciledObject>,
    };
    return stores[kind];
  }
}
