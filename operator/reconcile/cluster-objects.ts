// The slice of the cluster the reconcilers and the cluster control plane read: read-only stores
// (the informer caches in the operator, plain maps in tests) of the Gatehouse kinds and of the
// core objects they refer to, typed only as far as Gatehouse looks into them.
import type { AccessPolicy, NonHumanIdentity, ObjectMeta, ProtectedResource } from '../../api/kinds/kinds.js';
import { namespaceOf, type Secret } from '../../api/manifests/config.js';

/** What an informer's cache offers: one object by namespace and name, or all (of a namespace). */
export interface ObjectStore<T> {
  get(namespace: string, name: string): T | undefined;
  list(namespace?: string): T[];
}

/** Metadata fields the API server sets that api/kinds does not model. */
export interface LiveMeta extends ObjectMeta {
  deletionTimestamp?: string;
  finalizers?: string[];
}

/** A core/v1 Secret as the API server serves it: `data` values are base64. */
export interface KubeSecret {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

export interface KubeServiceAccount {
  metadata: ObjectMeta;
}

export interface KubePod {
  metadata: LiveMeta;
  spec?: { serviceAccountName?: string };
  status?: { phase?: string };
}

export interface ClusterStores {
  readonly identities: ObjectStore<NonHumanIdentity>;
  readonly resources: ObjectStore<ProtectedResource>;
  readonly policies: ObjectStore<AccessPolicy>;
  readonly secrets: ObjectStore<KubeSecret>;
  readonly serviceAccounts: ObjectStore<KubeServiceAccount>;
}

export function liveMeta(object: { metadata: ObjectMeta }): LiveMeta {
  return object.metadata as LiveMeta;
}

export function isDeleting(object: { metadata: ObjectMeta }): boolean {
  return liveMeta(object).deletionTimestamp !== undefined;
}

/** `namespace/name`, the work queue key of every reconciler. */
export function keyOf(object: { metadata: ObjectMeta }): string {
  return `${namespaceOf(object)}/${object.metadata.name}`;
}

/** Splits a work queue key; a key without a slash names a cluster-scoped object (namespace ''). */
export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** The Secret with its values decoded, as api/manifests and the credential issuers take it. */
export function decodeSecret(secret: KubeSecret): Secret {
  const data: Record<string, string> = {};
  for (const [key, encoded] of Object.entries(secret.data ?? {})) data[key] = Buffer.from(encoded, 'base64').toString('utf8');
  // stringData is write-only on a real API server; a store filled from manifests may still carry it.
  for (const [key, plain] of Object.entries(secret.stringData ?? {})) data[key] = plain;
  return { apiVersion: 'v1', kind: 'Secret', metadata: secret.metadata, data };
}

/** An ObjectStore over a Map, for tests and for anything kept in memory. */
export class MemoryStore<T extends { metadata: ObjectMeta }> implements ObjectStore<T> {
  private readonly objects = new Map<string, T>();

  constructor(objects: readonly T[] = []) {
    for (const object of objects) this.put(object);
  }

  put(object: T): void {
    this.objects.set(keyOf(object), object);
  }

  remove(namespace: string, name: string): void {
    this.objects.delete(`${namespace}/${name}`);
  }

  get(namespace: string, name: string): T | undefined {
    return this.objects.get(`${namespace}/${name}`);
  }

  list(namespace?: string): T[] {
    const all = [...this.objects.values()];
    return namespace === undefined ? all : all.filter((object) => namespaceOf(object) === namespace);
  }
}
