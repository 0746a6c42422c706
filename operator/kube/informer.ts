// A cache of one resource kept current by list + watch, after client-go's reflector and indexer.
// It lists, then watches from the list's resourceVersion with bookmarks; when that version is gone
// (410) it lists again and reports the difference, deletions it missed included; when a watch fails,
// ends or goes silent for stallTimeoutMs, it is restarted with jittered exponential backoff.
// Nothing a server sends can crash the process: bad events restart the watch and relist.
// What the cache keeps of each object is the transform's choice (after controller-runtime's cache
// transforms): by default everything but metadata.managedFields, which nothing in the operator reads.
import { setTimeout as sleep } from 'node:timers/promises';
import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import { objectKey } from './controller.js';
import { isGone } from './kube-errors.js';
import { resourceName, watchEventError, type KubeClient, type KubeObject, type ResourceType, type WatchEvent } from './kube-client.js';
import type { KubeMetrics } from './kube-metrics.js';

export type InformerEvent = 'add' | 'update' | 'delete';
export type InformerHandler<T> = (obj: T, old?: T) => void;
/**
 * What the cache keeps of an object as the server sent it. It must keep metadata.name, namespace and
 * resourceVersion, and should build a new object rather than edit the one it is given.
 */
export type CacheTransform<T> = (obj: T) => T;

export interface InformerOptions<T extends KubeObject = KubeObject> {
  client: KubeClient;
  type: ResourceType;
  namespace?: string;
  labelSelector?: string;
  logger: Logger;
  metrics?: KubeMetrics;
  /** A watch that delivers nothing (no event, no bookmark) for this long is restarted. Default 150 s. */
  stallTimeoutMs?: number;
  /** Delay before retrying a failed list or watch: initialMs doubling up to maxMs, jittered. Default 800 ms to 30 s. */
  backoff?: { initialMs: number; maxMs: number };
  /** Items per list page. Default 500. */
  pageSize?: number;
  /** Server-side watch timeout; randomised between this and twice this when absent (300 s). */
  watchTimeoutSeconds?: number;
  /**
   * Applied to every listed and watched object before it is cached or handed to a handler, so what
   * the operator never reads is not kept alive (and not promoted by the GC). Default: stripManagedFields.
   */
  transform?: CacheTransform<T>;
}

/** Why a watch ended, which decides what happens next. */
type WatchEnd = 'closed' | 'gone' | 'error' | 'stalled' | 'bad_event' | 'stopped';

interface WatchOutcome {
  readonly reason: WatchEnd;
  /** The watch delivered at least one event or bookmark: the connection worked. */
  readonly delivered: boolean;
  readonly error?: unknown;
}

type RelistReason = 'initial' | 'gone' | 'error';

const DEFAULT_STALL_TIMEOUT_MS = 150_000;
const DEFAULT_BACKOFF = { initialMs: 800, maxMs: 30_000 };
const DEFAULT_PAGE_SIZE = 500;
const MIN_WATCH_TIMEOUT_SECONDS = 300;

export class Informer<T extends KubeObject> {
  private readonly client: KubeClient;
  private readonly type: ResourceType;
  private readonly namespace: string | undefined;
  private readonly labelSelector: string | undefined;
  private readonly logger: Logger;
  private readonly metrics: KubeMetrics | undefined;
  private readonly resource: string;
  private readonly stallTimeoutMs: number;
  private readonly backoffOptions: { initialMs: number; maxMs: number };
  private readonly pageSize: number;
  private readonly watchTimeoutSeconds: number | undefined;
  private readonly transform: CacheTransform<T>;
  private readonly handlers: Record<InformerEvent, InformerHandler<T>[]> = { add: [], update: [], delete: [] };
  private readonly syncWaiters = new Set<{ resolve: () => void; reject: (error: unknown) => void }>();
  private readonly stopSignal = new AbortController();
  private store = new Map<string, T>();
  private resourceVersion = '';
  private synced = false;
  private failures = 0;
  private loop: Promise<void> | undefined;
  private endWatch: (() => void) | undefined;

  constructor(options: InformerOptions<T>) {
    if (!options.type.namespaced && options.namespace !== undefined) {
      throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `${options.type.kind} is cluster-scoped; an informer for it takes no namespace` });
    }
    this.client = options.client;
    this.type = options.type;
    this.namespace = options.namespace;
    this.labelSelector = options.labelSelector;
    this.metrics = options.metrics;
    this.resource = resourceName(options.type);
    this.logger = options.logger.child({ informer: this.resource, namespace: options.namespace });
    this.stallTimeoutMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    this.backoffOptions = options.backoff ?? DEFAULT_BACKOFF;
    this.pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    this.watchTimeoutSeconds = options.watchTimeoutSeconds;
    this.transform = options.transform ?? stripManagedFields;
  }

  /** Registers a handler; an add handler registered after the first sync is told about every cached object. */
  on(event: InformerEvent, handler: InformerHandler<T>): void {
    this.handlers[event].push(handler);
    if (event === 'add' && this.synced) for (const obj of this.store.values()) this.call('add', handler, obj);
  }

  start(): void {
    if (this.loop !== undefined || this.stopSignal.signal.aborted) return;
    this.loop = this.run();
  }

  /** Ends the watch and the retry loop; waitForSync callers still waiting are rejected. */
  async stop(): Promise<void> {
    this.stopSignal.abort();
    this.endWatch?.();
    for (const waiter of this.syncWaiters) waiter.reject(new GatehouseError('GH_ERR_KUBE_INFORMER_STOPPED', { resource: this.resource }));
    this.syncWaiters.clear();
    await this.loop;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (this.stopSignal.signal.aborted) return Promise.reject(new GatehouseError('GH_ERR_KUBE_INFORMER_STOPPED', { resource: this.resource }));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.syncWaiters.delete(waiter);
        reject(signal?.reason);
      };
      const waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (error: unknown) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      this.syncWaiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(namespace ? `${namespace}/${name}` : name);
  }

  list(namespace?: string): T[] {
    const all = [...this.store.values()];
    return namespace === undefined ? all : all.filter((obj) => obj.metadata.namespace === namespace);
  }

  /** The resourceVersion the next watch starts from (the last list's, or the last event's). */
  lastResourceVersion(): string {
    return this.resourceVersion;
  }

  private get stopped(): boolean {
    return this.stopSignal.signal.aborted;
  }

  private async run(): Promise<void> {
    let relist: RelistReason | undefined = 'initial';
    while (!this.stopped) {
      if (relist !== undefined) {
        const listed = await this.relist(relist);
        if (!listed) {
          await this.backoff();
          continue;
        }
        relist = undefined;
      }
      const outcome = await this.watchOnce();
      if (this.stopped || outcome.reason === 'stopped') break;
      relist = await this.afterWatch(outcome);
    }
  }

  /** Decides what follows a watch: relist at once on 410, back off on failures, re-watch otherwise. */
  private async afterWatch(outcome: WatchOutcome): Promise<RelistReason | undefined> {
    this.metrics?.watchRestarts.inc({ resource: this.resource, reason: outcome.reason });
    if (outcome.delivered) this.failures = 0;
    const log = { reason: outcome.reason, resourceVersion: this.resourceVersion, err: outcome.error };
    switch (outcome.reason) {
      case 'gone':
        this.logger.info(log, 'watch resourceVersion expired; listing again');
        return 'gone';
      case 'bad_event':
        this.logger.warn(log, 'watch delivered a malformed event; listing again');
        await this.backoff();
        return 'error';
      case 'closed':
        this.logger.debug(log, 'watch ended; watching again');
        if (!outcome.delivered) await this.backoff();
        return undefined;
      default:
        this.logger.warn(log, outcome.reason === 'stalled' ? 'watch delivered nothing in time; restarting it' : 'watch failed; restarting it');
        await this.backoff();
        return undefined;
    }
  }

  /** Lists every page, replaces the cache and reports the difference; false if the list failed. */
  private async relist(reason: RelistReason): Promise<boolean> {
    this.metrics?.relists.inc({ resource: this.resource, reason });
    const items: T[] = [];
    let resourceVersion = '';
    let next: string | undefined;
    try {
      do {
        const page = await this.unlessStopped(
          this.client.list<T>(this.type, { namespace: this.namespace, labelSelector: this.labelSelector, limit: this.pageSize, continue: next }),
        );
        if (page === undefined) return false;
        items.push(...page.items);
        resourceVersion = page.resourceVersion;
        next = page.continue;
      } while (next !== undefined);
    } catch (error) {
      this.logger.warn({ err: error, code: isGatehouseError(error) ? error.code : undefined, reason }, 'list failed; retrying with backoff');
      return false;
    }
    this.replaceStore(items);
    this.resourceVersion = resourceVersion;
    this.markSynced();
    return true;
  }

  private replaceStore(items: readonly T[]): void {
    const previous = this.store;
    const next = new Map<string, T>();
    for (const item of items) {
      if (validObject(item)) next.set(objectKey(item), this.transform(item));
      else this.logger.warn({ item: describe(item) }, 'list returned an object without metadata.name; ignored');
    }
    this.store = next;
    this.metrics?.informerObjects.set({ resource: this.resource }, next.size);
    for (const [key, obj] of next) {
      const old = previous.get(key);
      if (old === undefined) this.emit('add', obj);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.emit('update', obj, old);
    }
    for (const [key, old] of previous) if (!next.has(key)) this.emit('delete', old);
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    this.metrics?.informerSynced.set({ resource: this.resource }, 1);
    for (const waiter of this.syncWaiters) waiter.resolve();
    this.syncWaiters.clear();
  }

  private watchOnce(): Promise<WatchOutcome> {
    return new Promise((resolve) => {
      let delivered = false;
      let settled = false;
      let handle: { abort(): void } | undefined;
      let stallTimer: NodeJS.Timeout | undefined;
      const finish = (reason: WatchEnd, error?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(stallTimer);
        this.endWatch = undefined;
        handle?.abort();
        resolve({ reason, delivered, error });
      };
      const armStallTimer = (): void => {
        clearTimeout(stallTimer);
        stallTimer = setTimeout(() => finish('stalled'), this.stallTimeoutMs);
      };
      const onEvent = (event: WatchEvent): void => {
        if (settled) return;
        armStallTimer();
        const problem = this.applyEvent(event);
        if (problem !== undefined) finish(problem.reason, problem.error);
        else delivered = true;
      };
      const onDone = (error?: Error): void => {
        if (error === undefined) finish('closed');
        else if (isGatehouseError(error, 'GH_ERR_KUBE_WATCH_EVENT')) finish('bad_event', error);
        else finish(isGone(error) ? 'gone' : 'error', error);
      };
      this.endWatch = () => finish('stopped');
      armStallTimer();
      const options = {
        namespace: this.namespace,
        labelSelector: this.labelSelector,
        resourceVersion: this.resourceVersion,
        allowBookmarks: true,
        timeoutSeconds: this.watchTimeoutSeconds ?? Math.floor(MIN_WATCH_TIMEOUT_SECONDS * (1 + Math.random())),
      };
      this.client.watch(this.type, options, onEvent, onDone).then(
        (watchHandle) => {
          handle = watchHandle;
          if (settled) watchHandle.abort();
        },
        (error: unknown) => finish('error', error),
      );
    });
  }

  /** Applies one event to the cache; returns why the watch must end, if it must. */
  private applyEvent(event: WatchEvent): { reason: WatchEnd; error?: unknown } | undefined {
    if (event.type === 'ERROR') {
      const error = watchEventError(this.type, event);
      return { reason: isGone(error) ? 'gone' : 'error', error };
    }
    const resourceVersion = event.object.metadata?.resourceVersion;
    if (event.type === 'BOOKMARK') {
      if (typeof resourceVersion === 'string' && resourceVersion !== '') this.resourceVersion = resourceVersion;
      return undefined;
    }
    const obj = event.object as T;
    if (!validObject(obj) || typeof resourceVersion !== 'string' || resourceVersion === '') {
      return { reason: 'bad_event', error: new GatehouseError('GH_ERR_KUBE_WATCH_EVENT', { resource: this.resource, detail: `${event.type} ${describe(obj)} lacks metadata.name or metadata.resourceVersion` }) };
    }
    this.resourceVersion = resourceVersion;
    const key = objectKey(obj);
    const old = this.store.get(key);
    if (event.type === 'DELETED') {
      if (old === undefined) return undefined;
      this.store.delete(key);
      this.metrics?.informerObjects.set({ resource: this.resource }, this.store.size);
      this.emit('delete', this.transform(obj));
      return undefined;
    }
    if (old !== undefined && old.metadata.resourceVersion === resourceVersion) return undefined;
    const cached = this.transform(obj);
    this.store.set(key, cached);
    this.metrics?.informerObjects.set({ resource: this.resource }, this.store.size);
    if (old === undefined) this.emit('add', cached);
    else this.emit('update', cached, old);
    return undefined;
  }

  private emit(event: InformerEvent, obj: T, old?: T): void {
    for (const handler of this.handlers[event]) this.call(event, handler, obj, old);
  }

  /** A handler that throws (or rejects) is logged and counted; the informer and the process go on. */
  private call(event: InformerEvent, handler: InformerHandler<T>, obj: T, old?: T): void {
    const fail = (error: unknown): void => {
      this.metrics?.handlerErrors.inc({ resource: this.resource, event });
      this.logger.error({ err: error, event, key: objectKey(obj) }, 'informer event handler failed');
    };
    try {
      const result: unknown = handler(obj, old);
      if (result instanceof Promise) result.catch(fail);
    } catch (error) {
      fail(error);
    }
  }

  private async backoff(): Promise<void> {
    const { initialMs, maxMs } = this.backoffOptions;
    const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(this.failures, 30));
    this.failures += 1;
    // Half fixed, half random: retries of many informers spread out instead of arriving together.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    await sleep(delay, undefined, { signal: this.stopSignal.signal }).catch(() => undefined);
  }

  /** The promise's value, or undefined as soon as the informer stops (the request is left to finish). */
  private unlessStopped<V>(promise: Promise<V>): Promise<V | undefined> {
    if (this.stopped) {
      promise.catch(() => undefined);
      return Promise.resolve(undefined);
    }
    return new Promise((resolve, reject) => {
      const onStop = (): void => resolve(undefined);
      this.stopSignal.signal.addEventListener('abort', onStop, { once: true });
      promise.then(resolve, reject).finally(() => this.stopSignal.signal.removeEventListener('abort', onStop));
    });
  }
}

/** The default transform: the object without metadata.managedFields (often its largest part). */
export function stripManagedFields<T extends KubeObject>(obj: T): T {
  if (obj.metadata.managedFields === undefined) return obj;
  const { managedFields: _managedFields, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

function validObject(obj: unknown): obj is KubeObject {
  if (typeof obj !== 'object' || obj === null) return false;
  const metadata = (obj as { metadata?: unknown }).metadata;
  return typeof metadata === 'object' && metadata !== null && typeof (metadata as { name?: unknown }).name === 'string' && (metadata as { name: string }).name !== '';
}

function describe(obj: unknown): string {
  const metadata = (obj as { metadata?: { namespace?: unknown; name?: unknown } } | undefined)?.metadata;
  return `${String(metadata?.namespace ?? '')}/${String(metadata?.name ?? '?')}`;
}
