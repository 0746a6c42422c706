// Storage with the real API server's object semantics: one global resourceVersion counter, uid and
// creationTimestamp on create, generation bumped only when something besides metadata and status
// changes, optimistic concurrency on resourceVersion, finalizers (delete only marks; removing the last
// finalizer deletes) and namespace termination. Every change is published to the watch hub.
import { randomUUID } from 'node:crypto';
import { alreadyExists, ApiStatusError, conflict, notFound } from './api-status.js';
import { clone, jsonEqual, objectKey, type KubeObject } from './objects.js';
import { typeKey, type ResourceType } from './resource-types.js';
import type { WatchEventType, WatchHub } from './watch-hub.js';

export interface WriteOptions {
  /** dryRun=All: run every check and return the result, store nothing. */
  readonly dryRun?: boolean;
}

export interface DeleteOptions extends WriteOptions {
  readonly preconditions?: { uid?: string; resourceVersion?: string };
}

const NAMESPACES_KEY = typeKey('', 'namespaces');

function withoutMetadataAndStatus(object: KubeObject): Record<string, unknown> {
  const { metadata: _metadata, status: _status, ...rest } = object;
  return rest;
}

export class ObjectStore {
  private readonly buckets = new Map<string, Map<string, KubeObject>>();
  private resourceVersion = 0;

  constructor(private readonly hub: WatchHub) {}

  get currentResourceVersion(): number {
    return this.resourceVersion;
  }

  private bucket(type: ResourceType): Map<string, KubeObject> {
    const key = typeKey(type.group, type.plural);
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = new Map();
      this.buckets.set(key, bucket);
    }
    return bucket;
  }

  get(type: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const found = this.bucket(type).get(objectKey(type.namespaced ? namespace : undefined, name));
    return found === undefined ? undefined : clone(found);
  }

  /** Objects of a type, optionally in one namespace, in key order (namespace, then name) as etcd lists them. */
  list(type: ResourceType, namespace?: string): KubeObject[] {
    const objects = [...this.bucket(type).entries()]
      .filter(([, object]) => namespace === undefined || !type.namespaced || object.metadata.namespace === namespace)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, object]) => clone(object));
    return objects;
  }

  /** The Namespace object called `name`, if it exists. */
  namespace(name: string): KubeObject | undefined {
    const found = this.buckets.get(NAMESPACES_KEY)?.get(objectKey(undefined, name));
    return found === undefined ? undefined : clone(found);
  }

  create(type: ResourceType, input: KubeObject, options: WriteOptions = {}): KubeObject {
    const name = input.metadata.name!;
    const key = objectKey(type.namespaced ? input.metadata.namespace : undefined, name);
    if (this.bucket(type).has(key)) throw alreadyExists(type, name);
    const object = clone(input);
    const { resourceVersion: _rv, deletionTimestamp: _dt, deletionGracePeriodSeconds: _dg, ...metadata } = object.metadata;
    object.metadata = { ...metadata, uid: randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), generation: 1 };
    if (!type.namespaced) delete object.metadata.namespace;
    if (options.dryRun === true) return { ...object, metadata: { ...object.metadata } };
    return this.commit(type, key, object, 'ADDED');
  }

  /**
   * Replaces a stored object with `next` (the whole new object), checking resourceVersion when the
   * caller sent one. Identity fields are kept from the stored object; a no-op write changes nothing.
   */
  update(type: ResourceType, next: KubeObject, options: WriteOptions = {}): KubeObject {
    const name = next.metadata.name!;
    const key = objectKey(type.namespaced ? next.metadata.namespace : undefined, name);
    const stored = this.bucket(type).get(key);
    if (stored === undefined) throw notFound(type, name);
    const sent = next.metadata.resourceVersion;
    if (sent !== undefined && sent !== '' && sent !== stored.metadata.resourceVersion) throw conflict(type, name);
    const object = clone(next);
    object.metadata = {
      ...object.metadata,
      name: stored.metadata.name,
      namespace: stored.metadata.namespace,
      uid: stored.metadata.uid,
      creationTimestamp: stored.metadata.creationTimestamp,
      deletionTimestamp: stored.metadata.deletionTimestamp,
      deletionGracePeriodSeconds: stored.metadata.deletionGracePeriodSeconds,
      generation: stored.metadata.generation,
      resourceVersion: stored.metadata.resourceVersion,
    };
    dropUndefined(object.metadata);
    if (object.metadata.finalizers?.length === 0) delete object.metadata.finalizers;
    // A write that removes the last finalizer of an object being deleted completes the deletion.
    if (object.metadata.deletionTimestamp !== undefined && (object.metadata.finalizers ?? []).length === 0) {
      return options.dryRun === true ? object : this.remove(type, key, object);
    }
    // managedFields timestamps alone do not make a change, so no-op writes keep their resourceVersion.
    if (jsonEqual(withoutManagedFields(object), withoutManagedFields(stored))) return clone(stored);
    if (!jsonEqual(withoutMetadataAndStatus(object), withoutMetadataAndStatus(stored))) {
      object.metadata.generation = (stored.metadata.generation ?? 1) + 1;
    }
    if (options.dryRun === true) return object;
    return this.commit(type, key, object, 'MODIFIED');
  }

  /** Deletes, or only marks deleted while finalizers remain. Returns the object as last seen. */
  delete(type: ResourceType, namespace: string | undefined, name: string, options: DeleteOptions = {}): KubeObject {
    const key = objectKey(type.namespaced ? namespace : undefined, name);
    const stored = this.bucket(type).get(key);
    if (stored === undefined) throw notFound(type, name);
    const { uid, resourceVersion } = options.preconditions ?? {};
    if (uid !== undefined && uid !== stored.metadata.uid) {
      throw new ApiStatusError(409, 'Conflict', `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${stored.metadata.uid}`);
    }
    if (resourceVersion !== undefined && resourceVersion !== stored.metadata.resourceVersion) throw conflict(type, name);
    const isNamespace = type.group === '' && type.plural === 'namespaces';
    const mustWait = (stored.metadata.finalizers ?? []).length > 0 || (isNamespace && this.namespaceHasObjects(name));
    if (!mustWait) return options.dryRun === true ? clone(stored) : this.remove(type, key, clone(stored));
    if (stored.metadata.deletionTimestamp !== undefined) return clone(stored);
    const marked = clone(stored);
    marked.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    marked.metadata.deletionGracePeriodSeconds = 0;
    if (isNamespace) marked.status = { ...(marked.status as object | undefined), phase: 'Terminating' };
    if (options.dryRun === true) return marked;
    const result = this.commit(type, key, marked, 'MODIFIED');
    if (isNamespace) this.terminateNamespace(name);
    return result;
  }

  private namespaceHasObjects(namespace: string): boolean {
    for (const [bucketKey, bucket] of this.buckets) {
      if (bucketKey === NAMESPACES_KEY) continue;
      for (const object of bucket.values()) if (object.metadata.namespace === namespace) return true;
    }
    return false;
  }

  /** What the namespace controller does: delete everything inside (finalizers still hold objects). */
  private terminateNamespace(namespace: string): void {
    for (const [bucketKey, bucket] of this.buckets) {
      if (bucketKey === NAMESPACES_KEY) continue;
      for (const [key, object] of [...bucket]) {
        if (object.metadata.namespace !== namespace) continue;
        if ((object.metadata.finalizers ?? []).length === 0) this.removeByKey(bucketKey, key, clone(object));
        else if (object.metadata.deletionTimestamp === undefined) {
          const marked = clone(object);
          marked.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
          this.commitByKey(bucketKey, key, marked, 'MODIFIED');
        }
      }
    }
    this.finishNamespaceIfEmpty(namespace);
  }

  private finishNamespaceIfEmpty(namespace: string): void {
    const namespaces = this.buckets.get(NAMESPACES_KEY);
    const object = namespaces?.get(objectKey(undefined, namespace));
    if (object === undefined || object.metadata.deletionTimestamp === undefined || this.namespaceHasObjects(namespace)) return;
    if ((object.metadata.finalizers ?? []).length > 0) return;
    this.removeByKey(NAMESPACES_KEY, objectKey(undefined, namespace), clone(object));
  }

  /** Removes every object of a type (when its CRD is deleted). */
  dropType(type: ResourceType): void {
    const bucketKey = typeKey(type.group, type.plural);
    for (const [key, object] of [...(this.buckets.get(bucketKey) ?? [])]) this.removeByKey(bucketKey, key, clone(object));
  }

  private commit(type: ResourceType, key: string, object: KubeObject, eventType: WatchEventType): KubeObject {
    return this.commitByKey(typeKey(type.group, type.plural), key, object, eventType);
  }

  private commitByKey(bucketKey: string, key: string, object: KubeObject, eventType: WatchEventType): KubeObject {
    this.resourceVersion += 1;
    object.metadata.resourceVersion = String(this.resourceVersion);
    let bucket = this.buckets.get(bucketKey);
    if (bucket === undefined) {
      bucket = new Map();
      this.buckets.set(bucketKey, bucket);
    }
    const previous = eventType === 'MODIFIED' ? bucket.get(key) : undefined;
    bucket.set(key, object);
    this.hub.publish({ type: eventType, resourceVersion: this.resourceVersion, typeKey: bucketKey, object: clone(object), previous });
    return clone(object);
  }

  private remove(type: ResourceType, key: string, object: KubeObject): KubeObject {
    return this.removeByKey(typeKey(type.group, type.plural), key, object);
  }

  private removeByKey(bucketKey: string, key: string, object: KubeObject): KubeObject {
    this.buckets.get(bucketKey)?.delete(key);
    this.resourceVersion += 1;
    object.metadata.resourceVersion = String(this.resourceVersion);
    this.hub.publish({ type: 'DELETED', resourceVersion: this.resourceVersion, typeKey: bucketKey, object: clone(object) });
    if (object.metadata.namespace !== undefined && bucketKey !== NAMESPACES_KEY) this.finishNamespaceIfEmpty(object.metadata.namespace);
    return object;
  }
}

function withoutManagedFields(object: KubeObject): KubeObject {
  const { managedFields: _managedFields, ...metadata } = object.metadata;
  return { ...object, metadata };
}

function dropUndefined(record: object): void {
  for (const [key, value] of Object.entries(record)) if (value === undefined) delete (record as Record<string, unknown>)[key];
}
