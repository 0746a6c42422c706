// The slice of the cluster the reconcilers and the cluster control plane read: read-only stores
// (the informer caches in the operator, plain maps in tests) of the Gatehouse kinds and of the
// core objects they refer to, typed only as far as Gatehouse looks into them.
import { API_GROUP, type AccessPolicy, type NonHumanIdentity, type ObjectMeta, type ProtectedResource } from '../../api/kinds/kinds.js';
import { namespaceOf, type Secret } from '../../api/manifests/config.js';
import type { KubeObject } from '../kube/kube-client.js';
import { stripManagedFields } from '../kube/informer.js';

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

/** A Pod as far as Gatehouse reads one: all that cachedPod keeps. */
export interface KubePod {
  metadata: LiveMeta;
  spec?: { serviceAccountName?: string };
  status?: { phase?: string };
}

/** Keys of ours (`gatehouse.dev/…`, `….gatehouse.dev/…`); a missing map stays missing. */
function ownKeys(map: Record<string, string> | undefined): Record<string, string> | undefined {
  if (map === undefined) return undefined;
  const kept: Record<string, string> = {};
  for (const [key, value] of Object.entries(map)) {
    const prefix = key.slice(0, key.indexOf('/') + 1);
    if (prefix === `${API_GROUP}/` || prefix.endsWith(`.${API_GROUP}/`)) kept[key] = value;
  }
  return kept;
}

/**
 * What the operator's Pod cache keeps of a pod: identity, version, deletion state, our own labels
 * and annotations, the ServiceAccount and the phase. A served pod is 3–20 kB of JSON (containers,
 * volumes, managedFields, status); kept whole, every pod of a scale-up outlives two scavenges and
 * is copied into the old generation, while the admissions of the next pods queue behind the GC.
 * The reader functions (cluster-control-plane/sidecar-pods.ts, operator.ts) take a KubePod, so a
 * field read that is not kept here does not compile.
 */
export function cachedPod(pod: KubeObject): KubeObject & KubePod {
  const { name, namespace, uid, resourceVersion, generation, deletionTimestamp, finalizers, labels, annotations } = pod.metadata;
  const metadata: KubeObject['metadata'] & LiveMeta = { name };
  if (namespace !== undefined) metadata.namespace = namespace;
  if (uid !== undefined) metadata.uid = uid;
  if (resourceVersion !== undefined) metadata.resourceVersion = resourceVersion;
  if (generation !== undefined) metadata.generation = generation;
  if (deletionTimestamp !== undefined) metadata.deletionTimestamp = deletionTimestamp;
  if (finalizers !== undefined) metadata.finalizers = finalizers;
  const ownLabels = ownKeys(labels);
  if (ownLabels !== undefined) metadata.labels = ownLabels;
  const ownAnnotations = ownKeys(annotations);
  if (ownAnnotations !== undefined) metadata.annotations = ownAnnotations;
  const kept: KubeObject & KubePod = { metadata };
  if (pod.apiVersion !== undefined) kept.apiVersion = pod.apiVersion;
  if (pod.kind !== undefined) kept.kind = pod.kind;
  const spec = pod.spec as { serviceAccountName?: unknown } | undefined;
  if (spec !== undefined) kept.spec = typeof spec.serviceAccountName === 'string' ? { serviceAccountName: spec.serviceAccountName } : {};
  const status = pod.status as { phase?: unknown } | undefined;
  if (status !== undefined) kept.status = typeof status.phase === 'string' ? { phase: status.phase } : {};
  return kept;
}

/**
 * Secret types whose contents Gatehouse never reads: Helm's release records (often the largest
 * objects in a cluster, one per revision), ServiceAccount and bootstrap tokens, image pull
 * credentials. Their data is not cached. A ProtectedResource naming one finds no keys in it and is
 * not Ready, as for a Secret without `username`.
 */
export const SECRET_TYPES_WITHOUT_DATA: ReadonlySet<string> = new Set([
  'helm.sh/release.v1',
  'kubernetes.io/service-account-token',
  'bootstrap.kubernetes.io/token',
  'kubernetes.io/dockerconfigjson',
  'kubernetes.io/dockercfg',
]);

/** What the operator's Secret cache keeps: everything (less managedFields) but the data of SECRET_TYPES_WITHOUT_DATA. */
export function cachedSecret(secret: KubeObject): KubeObject {
  const stripped = stripManagedFields(secret);
  const type = (secret as { type?: unknown }).type;
  if (typeof type !== 'string' || !SECRET_TYPES_WITHOUT_DATA.has(type)) return stripped;
  const kept: KubeObject & { type: string } = { metadata: stripped.metadata, type };
  if (secret.apiVersion !== undefined) kept.apiVersion = secret.apiVersion;
  if (secret.kind !== undefined) kept.kind = secret.kind;
  return kept;
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
