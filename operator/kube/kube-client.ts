// A thin, typed Kubernetes client for the operator: get, list, create, replace, delete, patch (JSON,
// merge, server-side apply), the /status subresource and watch, for any resource described by a
// ResourceType. Failures are GatehouseErrors with the HTTP status kept (see kube-errors.ts).
import { homedir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { GatehouseError } from '../../api/errors.js';
import { API_GROUP, API_VERSION } from '../../api/kinds/kinds.js';
import { httpStatusError, isNotFound, statusBody, type KubeRequestContext } from './kube-errors.js';
import type { KubeMetrics } from './kube-metrics.js';
import { KubeTransport, type QueryValue, type TransportRequest } from './kube-transport.js';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string;
    ownerReferences?: unknown[];
    [field: string]: unknown;
  };
  [field: string]: unknown;
}

/** Where a kind lives in the API. group '' is the core group (/api/v1). */
export interface ResourceType {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

const gatehouse = (plural: string, kind: string): ResourceType => ({ group: API_GROUP, version: API_VERSION, plural, kind, namespaced: true });

export const RESOURCE_TYPES = {
  pods: { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true },
  serviceAccounts: { group: '', version: 'v1', plural: 'serviceaccounts', kind: 'ServiceAccount', namespaced: true },
  secrets: { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true },
  namespaces: { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false },
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true },
  events: { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true },
  nonHumanIdentities: gatehouse('nonhumanidentities', 'NonHumanIdentity'),
  accessPolicies: gatehouse('accesspolicies', 'AccessPolicy'),
  protectedResources: gatehouse('protectedresources', 'ProtectedResource'),
  accessRequests: gatehouse('accessrequests', 'AccessRequest'),
  mutatingWebhookConfigurations: {
    group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations', kind: 'MutatingWebhookConfiguration', namespaced: false,
  },
  validatingWebhookConfigurations: {
    group: 'admissionregistration.k8s.io', version: 'v1', plural: 'validatingwebhookconfigurations', kind: 'ValidatingWebhookConfiguration', namespaced: false,
  },
} as const satisfies Record<string, ResourceType>;

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent {
  type: WatchEventType;
  /** For ERROR events, the metav1.Status the server sent (code 410 means the resourceVersion is gone). */
  object: KubeObject;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
  continue?: string;
}

export interface WatchOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion: string;
  allowBookmarks: boolean;
  timeoutSeconds?: number;
}

export type PatchKind = 'json' | 'merge' | 'apply';

export interface PatchOptions {
  /** Required for 'apply' (server-side apply tracks field ownership by manager). */
  fieldManager?: string;
  /** Only for 'apply': take over fields another manager owns. */
  force?: boolean;
}

export interface DeleteOptions {
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  /** Delete only if the object still has this uid / resourceVersion (409 otherwise). */
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface KubeClient {
  /** The object, or undefined when it does not exist (404). */
  get<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string): Promise<T | undefined>;
  /** One page; pass `continue` from the previous result for the next. Items carry apiVersion and kind. */
  list<T extends KubeObject>(type: ResourceType, opts: ListOptions): Promise<ListResult<T>>;
  create<T extends KubeObject>(type: ResourceType, obj: T): Promise<T>;
  /** PUT with the object's resourceVersion: 409 when someone else changed it first. */
  replace<T extends KubeObject>(type: ResourceType, obj: T): Promise<T>;
  /** Resolves also when the object is already gone: deleting is idempotent. */
  delete(type: ResourceType, namespace: string | undefined, name: string, opts?: DeleteOptions): Promise<void>;
  patch<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string, patch: unknown, kind: PatchKind, opts?: PatchOptions): Promise<T>;
  /** A merge patch of `{status}` on the /status subresource. */
  patchStatus<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string, status: unknown): Promise<T>;
  /**
   * Streams events from `resourceVersion` on. The promise never rejects; onDone is called exactly
   * once: without an error when the server ends the stream or abort() is called, with the mapped
   * error otherwise (an HTTP 410 arrives here as GH_ERR_KUBE_GONE, a 410 inside the stream as an
   * ERROR event). No event is delivered after onDone.
   */
  watch(type: ResourceType, opts: WatchOptions, onEvent: (event: WatchEvent) => void, onDone: (err?: Error) => void): Promise<{ abort(): void }>;
  /** Closes pooled connections. */
  close?(): void;
}

export interface KubeClientOptions {
  kubeconfigPath?: string;
  inCluster?: boolean;
  /** A kubeconfig already loaded; wins over the path and in-cluster options. */
  kubeConfig?: KubeConfig;
  /** Per request (not per watch); default 30 s. */
  requestTimeoutMs?: number;
  metrics?: KubeMetrics;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export function apiVersionOf(type: ResourceType): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}

/** The collection or object URL path, e.g. /apis/gatehouse.dev/v1alpha1/namespaces/ns/accesspolicies/p/status. */
export function resourcePath(type: ResourceType, namespace: string | undefined, name?: string, subresource?: string): string {
  let path = type.group === '' ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
  if (namespace !== undefined) path += `/namespaces/${encodeURIComponent(namespace)}`;
  path += `/${type.plural}`;
  if (name !== undefined) path += `/${encodeURIComponent(name)}`;
  if (subresource !== undefined) path += `/${subresource}`;
  return path;
}

/** KUBECONFIG, then ~/.kube/config, then the pod's ServiceAccount, like kubectl and client-go. */
export function loadKubeConfig(options: Pick<KubeClientOptions, 'kubeconfigPath' | 'inCluster'>): KubeConfig {
  const config = new KubeConfig();
  try {
    if (options.kubeconfigPath !== undefined) config.loadFromFile(options.kubeconfigPath);
    else if (options.inCluster === true) config.loadFromCluster();
    else if (process.env.KUBECONFIG || existsSync(join(homedir(), '.kube', 'config')) || existsSync(IN_CLUSTER_TOKEN)) config.loadFromDefault();
    else throw new Error('no KUBECONFIG, no ~/.kube/config and no in-cluster ServiceAccount token');
  } catch (error) {
    if (error instanceof GatehouseError) throw error;
    throw new GatehouseError('GH_ERR_KUBE_CONFIG', { detail: (error as Error).message }, { cause: error });
  }
  return config;
}

const PATCH_CONTENT_TYPES: Record<PatchKind, string> = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  // JSON is YAML, so the apply body is sent as JSON under the apply content type.
  apply: 'application/apply-patch+yaml',
};

class HttpKubeClient implements KubeClient {
  constructor(
    private readonly transport: KubeTransport,
    private readonly metrics: KubeMetrics | undefined,
  ) {}

  async get<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string): Promise<T | undefined> {
    try {
      const { body } = await this.call('get', type, { method: 'GET', path: this.objectPath(type, namespace, name) }, namespace, name);
      return withTypeMeta(type, body as T);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async list<T extends KubeObject>(type: ResourceType, opts: ListOptions): Promise<ListResult<T>> {
    this.checkScope(type, opts.namespace, true);
    const query = { labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector, limit: opts.limit, continue: opts.continue };
    const { body } = await this.call('list', type, { method: 'GET', path: resourcePath(type, opts.namespace), query }, opts.namespace);
    const list = body as { items?: T[] | null; metadata?: { resourceVersion?: string; continue?: string } } | undefined;
    if (!Array.isArray(list?.items ?? [])) throw this.badResponse('list', type, 'items is not an array');
    const next = list?.metadata?.continue;
    return {
      items: (list?.items ?? []).map((item) => withTypeMeta(type, item)),
      resourceVersion: list?.metadata?.resourceVersion ?? '',
      ...(next ? { continue: next } : {}),
    };
  }

  async create<T extends KubeObject>(type: ResourceType, obj: T): Promise<T> {
    const namespace = obj.metadata.namespace;
    this.checkScope(type, namespace, false);
    const body = withTypeMeta(type, obj);
    const response = await this.call('create', type, { method: 'POST', path: resourcePath(type, namespace), body }, namespace, obj.metadata.name);
    return response.body as T;
  }

  async replace<T extends KubeObject>(type: ResourceType, obj: T): Promise<T> {
    const namespace = obj.metadata.namespace;
    const path = this.objectPath(type, namespace, obj.metadata.name);
    const response = await this.call('replace', type, { method: 'PUT', path, body: withTypeMeta(type, obj) }, namespace, obj.metadata.name);
    return response.body as T;
  }

  async delete(type: ResourceType, namespace: string | undefined, name: string, opts: DeleteOptions = {}): Promise<void> {
    const body = { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: opts.propagationPolicy, preconditions: opts.preconditions };
    try {
      await this.call('delete', type, { method: 'DELETE', path: this.objectPath(type, namespace, name), body, contentType: 'application/json' }, namespace, name);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  async patch<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string, patch: unknown, kind: PatchKind, opts: PatchOptions = {}): Promise<T> {
    if (kind === 'apply' && !opts.fieldManager) {
      throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: 'a server-side apply patch needs opts.fieldManager' });
    }
    if (kind !== 'apply' && opts.force === true) {
      throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: 'opts.force is only for server-side apply patches' });
    }
    const body = kind === 'apply' && isPlainObject(patch) ? { apiVersion: apiVersionOf(type), kind: type.kind, ...patch } : patch;
    const request: TransportRequest = {
      method: 'PATCH',
      path: this.objectPath(type, namespace, name),
      // The API server refuses a force parameter, even false, on anything but an apply patch.
      query: { fieldManager: opts.fieldManager, force: kind === 'apply' ? opts.force : undefined },
      body,
      contentType: PATCH_CONTENT_TYPES[kind],
      context: this.context('patch', type, namespace, name),
    };
    const response = await this.call('patch', type, request, namespace, name);
    return response.body as T;
  }

  async patchStatus<T extends KubeObject>(type: ResourceType, namespace: string | undefined, name: string, status: unknown): Promise<T> {
    this.checkScope(type, namespace, false);
    const request = {
      method: 'PATCH' as const,
      path: resourcePath(type, namespace, name, 'status'),
      body: { status },
      contentType: PATCH_CONTENT_TYPES.merge,
    };
    const response = await this.call('patch', type, request, namespace, name);
    return response.body as T;
  }

  async watch(type: ResourceType, opts: WatchOptions, onEvent: (event: WatchEvent) => void, onDone: (err?: Error) => void): Promise<{ abort(): void }> {
    const context = this.context('watch', type, opts.namespace);
    try {
      this.checkScope(type, opts.namespace, true);
    } catch (error) {
      onDone(error as Error);
      return { abort: () => undefined };
    }
    const query: Record<string, QueryValue> = {
      watch: true,
      resourceVersion: opts.resourceVersion,
      allowWatchBookmarks: opts.allowBookmarks,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
      timeoutSeconds: opts.timeoutSeconds,
    };
    let done = false;
    let handle: { abort(): void } | undefined;
    const finish = (error?: Error): void => {
      if (done) return;
      done = true;
      onDone(error);
    };
    const onLine = (line: string): void => {
      if (done) return;
      const event = parseWatchEvent(line);
      if (event === undefined) {
        // A line that is not an event means the stream is corrupt; end it so the caller relists.
        finish(new GatehouseError('GH_ERR_KUBE_WATCH_EVENT', { resource: context.resource, detail: `not a watch event: ${line.slice(0, 120)}` }));
        handle?.abort();
        return;
      }
      onEvent(event);
    };
    this.metrics?.apiRequests.inc({ verb: 'watch', resource: context.resource });
    handle = await this.transport.stream({ method: 'GET', path: resourcePath(type, opts.namespace), query, context }, { onLine, onClose: finish });
    return handle;
  }

  close(): void {
    this.transport.close();
  }

  private async call(verb: string, type: ResourceType, request: Omit<TransportRequest, 'context'> & { context?: KubeRequestContext }, namespace?: string, name?: string) {
    const context = request.context ?? this.context(verb, type, namespace, name);
    const started = performance.now();
    try {
      const response = await this.transport.request({ ...request, context });
      this.metrics?.apiRequests.inc({ verb, resource: context.resource });
      return response;
    } catch (error) {
      this.metrics?.apiRequests.inc({ verb, resource: context.resource });
      this.metrics?.apiErrors.inc({ verb, resource: context.resource, code: (error as GatehouseError).code ?? 'unknown' });
      throw error;
    } finally {
      this.metrics?.apiLatency.observe({ verb, resource: context.resource }, (performance.now() - started) / 1000);
    }
  }

  private objectPath(type: ResourceType, namespace: string | undefined, name: string): string {
    this.checkScope(type, namespace, false);
    if (!name) throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `a ${type.kind} name is required` });
    return resourcePath(type, namespace, name);
  }

  /** Namespaced kinds need a namespace (except when listing across all); cluster-scoped ones refuse one. */
  private checkScope(type: ResourceType, namespace: string | undefined, collection: boolean): void {
    if (type.namespaced && namespace === undefined && !collection) {
      throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `${type.kind} is namespaced; pass a namespace` });
    }
    if (!type.namespaced && namespace !== undefined) {
      throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `${type.kind} is cluster-scoped; pass no namespace (got ${namespace})` });
    }
  }

  private context(verb: string, type: ResourceType, namespace?: string, name?: string): KubeRequestContext {
    return { verb, resource: resourceName(type), namespace, name, server: this.transport.server };
  }

  private badResponse(verb: string, type: ResourceType, detail: string): GatehouseError {
    return new GatehouseError('GH_ERR_KUBE_BAD_RESPONSE', { verb, resource: resourceName(type), detail });
  }
}

/** plural.group, as kubectl and RBAC name a resource; just the plural for the core group. */
export function resourceName(type: ResourceType): string {
  return type.group === '' ? type.plural : `${type.plural}.${type.group}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** List items and some servers' answers lack apiVersion/kind; consumers should not have to care. */
function withTypeMeta<T extends KubeObject>(type: ResourceType, obj: T): T {
  if (obj.apiVersion !== undefined && obj.kind !== undefined) return obj;
  return { ...obj, apiVersion: obj.apiVersion ?? apiVersionOf(type), kind: obj.kind ?? type.kind };
}

const WATCH_EVENT_TYPES: ReadonlySet<string> = new Set(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

/** A watch line as an event, or undefined if it is not one (bad JSON, unknown type, no object). */
export function parseWatchEvent(line: string): WatchEvent | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isPlainObject(parsed) || typeof parsed.type !== 'string' || !WATCH_EVENT_TYPES.has(parsed.type)) return undefined;
  if (!isPlainObject(parsed.object)) return undefined;
  const object = parsed.object as Record<string, unknown>;
  if (parsed.type !== 'ERROR' && !isPlainObject(object.metadata)) return undefined;
  return { type: parsed.type as WatchEventType, object: (isPlainObject(object.metadata) ? object : { ...object, metadata: { name: '' } }) as KubeObject };
}

/** The error an ERROR watch event stands for (its object is a metav1.Status). */
export function watchEventError(type: ResourceType, event: WatchEvent, server = ''): GatehouseError {
  const status = statusBody(event.object);
  return httpStatusError(status.code ?? 500, status, { verb: 'watch', resource: resourceName(type), server });
}

export function createKubeClient(options: KubeClientOptions = {}): KubeClient {
  const config = options.kubeConfig ?? loadKubeConfig(options);
  return new HttpKubeClient(new KubeTransport(config, options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS), options.metrics);
}
