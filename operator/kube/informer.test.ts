// The informer against a scripted list + watch server on 127.0.0.1: faults the loopback API server
// cannot produce on demand (a watch that goes silent or never answers, malformed lines, an ERROR
// 410 event at a chosen moment) are scripted here. kube-integration.test.ts runs the informer
// against the loopback API server.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { isGatehouseError } from '../../api/errors.js';
import { silentLogger } from '../../api/logging/logger.js';
import { Informer, stripManagedFields, type CacheTransform } from './informer.js';
import { createKubeClient, RESOURCE_TYPES, type KubeClient, type KubeObject } from './kube-client.js';
import { createKubeMetrics, type KubeMetrics } from './kube-metrics.js';
import { until } from '../../testing/async-checks.js';
import { tokenKubeConfig } from './testing/token-kubeconfig.js';

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

type WatchMode = 'normal' | 'silent' | 'no-headers';

/** Secrets in one namespace, served as list + watch with a retained history, plus scripted faults. */
class ScriptedApiServer {
  readonly lists: string[] = [];
  readonly watches: string[] = [];
  mode: WatchMode = 'normal';
  private readonly objects = new Map<string, KubeObject>();
  private readonly history: Array<{ rv: number; line: string }> = [];
  private readonly watchers = new Set<http.ServerResponse>();
  private readonly hanging = new Set<http.ServerResponse>();
  private rv = 100;
  private compactedThrough = 0;
  private server!: http.Server;
  url = '';

  async start(): Promise<void> {
    this.server = http.createServer((request, response) => this.handle(request, response));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const response of [...this.watchers, ...this.hanging]) response.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  client(): KubeClient {
    return createKubeClient({ kubeConfig: tokenKubeConfig(this.url, 'test-token'), requestTimeoutMs: 2000 });
  }

  put(name: string, data: Record<string, string> = {}, metadata: Record<string, unknown> = {}): void {
    const existing = this.objects.has(name);
    const object: KubeObject = { apiVersion: 'v1', kind: 'Secret', metadata: { ...metadata, name, namespace: 'ns', resourceVersion: String(++this.rv) }, data };
    this.objects.set(name, object);
    this.publish(existing ? 'MODIFIED' : 'ADDED', object);
  }

  remove(name: string): void {
    const object = this.objects.get(name);
    if (object === undefined) return;
    this.objects.delete(name);
    this.publish('DELETED', { ...object, metadata: { ...object.metadata, resourceVersion: String(++this.rv) } });
  }

  /** Sends a raw line to every open watch, e.g. a duplicate event or garbage. */
  sendRaw(line: string): void {
    for (const watcher of this.watchers) watcher.write(`${line}\n`);
  }

  dropWatches(): void {
    for (const watcher of this.watchers) watcher.end();
    this.watchers.clear();
  }

  /** Forgets history: open watches get an ERROR 410 event, later watches from older versions too. */
  expireWatches(): void {
    this.compactedThrough = this.rv;
    this.history.length = 0;
    for (const watcher of this.watchers) watcher.end(`${gone(this.rv)}\n`);
    this.watchers.clear();
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  private publish(type: string, object: KubeObject): void {
    const line = JSON.stringify({ type, object });
    this.history.push({ rv: this.rv, line });
    for (const watcher of this.watchers) watcher.write(`${line}\n`);
  }

  private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const url = new URL(request.url ?? '/', this.url);
    if (request.headers.authorization !== 'Bearer test-token' || url.pathname !== '/api/v1/namespaces/ns/secrets') {
      response.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound', message: 'no' }));
      return;
    }
    if (url.searchParams.get('watch') !== 'true') {
      this.lists.push(url.search);
      const items = [...this.objects.values()].map(({ apiVersion: _a, kind: _k, ...rest }) => rest);
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'SecretList', metadata: { resourceVersion: String(this.rv) }, items }));
      return;
    }
    const from = Number(url.searchParams.get('resourceVersion'));
    this.watches.push(String(from));
    if (this.mode === 'no-headers') {
      this.hanging.add(response);
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.flushHeaders();
    if (this.mode === 'silent') {
      this.hanging.add(response);
      return;
    }
    if (from < this.compactedThrough) {
      response.end(`${gone(from)}\n`);
      return;
    }
    for (const event of this.history) if (event.rv > from) response.write(`${event.line}\n`);
    this.watchers.add(response);
    response.on('close', () => this.watchers.delete(response));
  }
}

function gone(rv: number): string {
  return JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410, message: `too old resource version: ${rv}` } });
}

interface Recorded {
  events: string[];
  informer: Informer<KubeObject>;
  metrics: KubeMetrics;
}

function record(client: KubeClient, options: Partial<{ stallTimeoutMs: number; transform: CacheTransform<KubeObject> }> = {}): Recorded {
  const metrics = createKubeMetrics(new Registry());
  const informer = new Informer<KubeObject>({
    client,
    type: RESOURCE_TYPES.secrets,
    namespace: 'ns',
    logger: silentLogger(),
    metrics,
    backoff: { initialMs: 20, maxMs: 100 },
    stallTimeoutMs: options.stallTimeoutMs ?? 10_000,
    ...(options.transform ? { transform: options.transform } : {}),
  });
  const events: string[] = [];
  const data = (obj: KubeObject): string => JSON.stringify(obj.data ?? {});
  informer.on('add', (obj) => events.push(`add ${obj.metadata.name}`));
  informer.on('update', (obj, old) => events.push(`update ${obj.metadata.name} ${data(old!)}->${data(obj)}`));
  informer.on('delete', (obj) => events.push(`delete ${obj.metadata.name}`));
  return { events, informer, metrics };
}

async function metricValue(metrics: KubeMetrics, name: 'watchRestarts' | 'relists', labels: { reason: string }): Promise<number> {
  const values = (await metrics[name].get()).values;
  return values.find((v) => v.labels.reason === labels.reason)?.value ?? 0;
}

describe('Informer (scripted API server)', () => {
  let server: ScriptedApiServer;
  let client: KubeClient;
  let recorded: Recorded | undefined;

  beforeEach(async () => {
    server = new ScriptedApiServer();
    await server.start();
    client = server.client();
  });

  afterEach(async () => {
    await recorded?.informer.stop();
    recorded = undefined;
    client.close?.();
    await server.close();
  });

  test('syncs from a list, then applies watch events from the list resourceVersion', async () => {
    server.put('a', { v: '1' });
    server.put('b');
    recorded = record(client);
    const { informer, events } = recorded;
    expect(informer.hasSynced()).toBe(false);
    informer.start();
    await informer.waitForSync();
    expect(events.sort()).toEqual(['add a', 'add b']);
    expect(informer.get('ns', 'a')?.kind).toBe('Secret');
    await until(() => server.openWatches === 1);
    expect(server.watches).toEqual(['102']);
    expect(server.lists[0]).toContain('limit=500');
    server.put('a', { v: '2' });
    server.remove('b');
    server.put('c');
    await until(() => events.length === 5);
    expect(events.slice(2)).toEqual(['update a {"v":"1"}->{"v":"2"}', 'delete b', 'add c']);
    expect(informer.list('ns').map((o) => o.metadata.name).sort()).toEqual(['a', 'c']);
    expect(informer.list('other')).toEqual([]);
    expect(informer.lastResourceVersion()).toBe('105');
  });

  test('an update whose resourceVersion did not change calls no handler; a bookmark moves the resourceVersion', async () => {
    server.put('a');
    recorded = record(client);
    recorded.informer.start();
    await recorded.informer.waitForSync();
    await until(() => server.openWatches === 1);
    server.sendRaw(JSON.stringify({ type: 'MODIFIED', object: { metadata: { name: 'a', namespace: 'ns', resourceVersion: '101' } } }));
    server.sendRaw(JSON.stringify({ type: 'BOOKMARK', object: { kind: 'Secret', metadata: { resourceVersion: '150' } } }));
    await until(() => recorded!.informer.lastResourceVersion() === '150');
    expect(recorded.events).toEqual(['add a']);
  });

  test('410 Gone on re-watch: relists and emits add, update and delete for what changed meanwhile', async () => {
    for (const name of ['keep', 'change', 'vanish']) server.put(name, { v: '1' });
    recorded = record(client, { stallTimeoutMs: 300 });
    const { informer, events, metrics } = recorded;
    informer.start();
    await informer.waitForSync();
    await until(() => server.openWatches === 1);
    // Cut the live watch and keep the next one silent, so the changes below are never streamed.
    server.mode = 'silent';
    server.dropWatches();
    await until(() => server.watches.length === 2);
    server.remove('vanish');
    server.put('change', { v: '2' });
    server.put('new');
    server.expireWatches();
    server.mode = 'normal';
    // The silent watch stalls (300 ms), the next watch from the old resourceVersion gets 410, then a relist.
    await until(() => server.lists.length === 2);
    await until(() => events.length === 6);
    expect(events.slice(3).sort()).toEqual(['add new', 'delete vanish', 'update change {"v":"1"}->{"v":"2"}']);
    expect(informer.get('ns', 'vanish')).toBeUndefined();
    expect(await metricValue(metrics, 'relists', { reason: 'gone' })).toBe(1);
    expect(await metricValue(metrics, 'watchRestarts', { reason: 'gone' })).toBe(1);
    expect(await metricValue(metrics, 'watchRestarts', { reason: 'stalled' })).toBe(1);
    // And it watches on from the relist.
    await until(() => server.openWatches === 1);
    server.put('after');
    await until(() => events.includes('add after'));
  });

  test('an ERROR 410 event on an open watch relists', async () => {
    server.put('a');
    recorded = record(client);
    recorded.informer.start();
    await recorded.informer.waitForSync();
    await until(() => server.openWatches === 1);
    server.expireWatches();
    await until(() => server.lists.length === 2);
    expect(await metricValue(recorded.metrics, 'relists', { reason: 'gone' })).toBe(1);
    expect(recorded.events).toEqual(['add a']);
  });

  test('a dropped watch is restarted from the last resourceVersion without a relist', async () => {
    server.put('a');
    recorded = record(client);
    recorded.informer.start();
    await recorded.informer.waitForSync();
    await until(() => server.openWatches === 1);
    server.put('b');
    await until(() => recorded!.events.length === 2);
    server.dropWatches();
    await until(() => server.openWatches === 1);
    expect(server.watches).toEqual(['101', '102']);
    server.put('c');
    await until(() => recorded!.events.includes('add c'));
    expect(server.lists).toHaveLength(1);
    expect(await metricValue(recorded.metrics, 'watchRestarts', { reason: 'closed' })).toBe(1);
  });

  test.each<WatchMode>(['silent', 'no-headers'])('a watch that delivers nothing (%s) is presumed stalled and restarted', async (mode) => {
    server.put('a');
    server.mode = mode;
    recorded = record(client, { stallTimeoutMs: 150 });
    recorded.informer.start();
    await recorded.informer.waitForSync();
    await until(() => server.watches.length >= 2);
    expect(await metricValue(recorded.metrics, 'watchRestarts', { reason: 'stalled' })).toBeGreaterThanOrEqual(1);
    server.mode = 'normal';
    await until(() => server.openWatches === 1, 3000);
    server.put('b');
    await until(() => recorded!.events.includes('add b'));
    expect(server.lists).toHaveLength(1);
  });

  test('malformed lines and events never crash it: the watch ends, it lists again and goes on', async () => {
    server.put('a');
    recorded = record(client);
    recorded.informer.start();
    await recorded.informer.waitForSync();
    for (const bad of ['{not json', JSON.stringify({ type: 'ADDED', object: { metadata: { namespace: 'ns' } } }), JSON.stringify({ type: 'EXPLODED', object: {} })]) {
      await until(() => server.openWatches === 1);
      const lists = server.lists.length;
      server.sendRaw(bad);
      await until(() => server.lists.length === lists + 1);
    }
    expect(await metricValue(recorded.metrics, 'watchRestarts', { reason: 'bad_event' })).toBe(3);
    expect(await metricValue(recorded.metrics, 'relists', { reason: 'error' })).toBe(3);
    await until(() => server.openWatches === 1);
    server.put('b');
    await until(() => recorded!.events.includes('add b'));
  });

  test('a handler that throws or rejects is counted, and the others still run', async () => {
    server.put('a');
    recorded = record(client);
    recorded.informer.on('add', () => {
      throw new Error('handler bug');
    });
    recorded.informer.on('add', async () => {
      throw new Error('async handler bug');
    });
    recorded.informer.start();
    await recorded.informer.waitForSync();
    await until(() => server.openWatches === 1);
    server.put('b');
    await until(() => recorded!.events.includes('add b'));
    await delay(10);
    const errors = (await recorded.metrics.handlerErrors.get()).values[0]?.value;
    expect(errors).toBe(4);
  });

  test('an add handler registered after sync hears about every cached object', async () => {
    server.put('a');
    server.put('b');
    recorded = record(client);
    recorded.informer.start();
    await recorded.informer.waitForSync();
    const late: string[] = [];
    recorded.informer.on('add', (obj) => late.push(obj.metadata.name));
    expect(late.sort()).toEqual(['a', 'b']);
  });

  test('a failing list is retried with backoff; waitForSync honours its signal and stop', async () => {
    const broken = createKubeClient({ kubeConfig: tokenKubeConfig(server.url, 'wrong') });
    recorded = record(broken);
    recorded.informer.start();
    const aborted = new AbortController();
    const waiting = recorded.informer.waitForSync(aborted.signal);
    aborted.abort(new Error('gave up'));
    await expect(waiting).rejects.toThrow('gave up');
    const pending = recorded.informer.waitForSync();
    await delay(150);
    expect(recorded.informer.hasSynced()).toBe(false);
    expect(await metricValue(recorded.metrics, 'relists', { reason: 'initial' })).toBeGreaterThanOrEqual(3);
    const stopped = recorded.informer.stop();
    const error: unknown = await pending.catch((e: unknown) => e);
    expect(isGatehouseError(error, 'GH_ERR_KUBE_INFORMER_STOPPED')).toBe(true);
    await stopped;
    broken.close?.();
  });

  test('caches objects without managedFields by default, from the list and from the watch', async () => {
    const managedFields = [{ manager: 'kubectl', operation: 'Apply', fieldsV1: { 'f:data': {} } }];
    server.put('listed', { v: '1' }, { managedFields, labels: { app: 'x' } });
    recorded = record(client);
    const handed: KubeObject[] = [];
    recorded.informer.on('add', (obj) => handed.push(obj));
    recorded.informer.on('update', (obj) => handed.push(obj));
    recorded.informer.start();
    await recorded.informer.waitForSync();
    await until(() => server.openWatches === 1);
    server.put('watched', { v: '1' }, { managedFields });
    server.put('listed', { v: '2' }, { managedFields, labels: { app: 'x' } });
    await until(() => handed.length === 3);
    for (const name of ['listed', 'watched']) {
      const cached = recorded.informer.get('ns', name)!;
      expect(cached.metadata.managedFields).toBeUndefined();
      expect(cached.metadata.resourceVersion).toMatch(/^\d+$/);
    }
    expect(recorded.informer.get('ns', 'listed')).toMatchObject({ data: { v: '2' }, metadata: { labels: { app: 'x' } } });
    expect(handed.every((obj) => !('managedFields' in obj.metadata))).toBe(true);
  });

  test('a transform decides what is cached and what every handler sees, old objects and deletions included', async () => {
    const seen: string[] = [];
    const keepNameAndVersion: CacheTransform<KubeObject> = (obj) => {
      seen.push(obj.metadata.name);
      return { kind: obj.kind, metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace, resourceVersion: obj.metadata.resourceVersion } };
    };
    server.put('a', { secret: 'x' });
    recorded = record(client, { transform: keepNameAndVersion });
    const handed: Array<{ obj: KubeObject; old?: KubeObject }> = [];
    for (const event of ['add', 'update', 'delete'] as const) recorded.informer.on(event, (obj, old) => handed.push({ obj, ...(old ? { old } : {}) }));
    recorded.informer.start();
    await recorded.informer.waitForSync();
    await until(() => server.openWatches === 1);
    server.put('a', { secret: 'y' });
    server.put('b', { secret: 'z' });
    server.remove('b');
    await until(() => recorded!.events.length === 4);
    expect(recorded.events).toEqual(['add a', 'update a {}->{}', 'add b', 'delete b']);
    expect(handed.flatMap(({ obj, old }) => [obj, ...(old ? [old] : [])]).every((obj) => obj.data === undefined)).toBe(true);
    expect(recorded.informer.get('ns', 'a')).toEqual({ kind: 'Secret', metadata: { name: 'a', namespace: 'ns', resourceVersion: '102' } });
    expect(recorded.informer.list()).toHaveLength(1);
    // Once per object the server sent: the list's a, the watch's a, b and the deleted b.
    expect(seen).toEqual(['a', 'a', 'b', 'b']);
  });

  test('an event that repeats the cached resourceVersion is neither transformed nor cached again', async () => {
    server.put('a', { v: '1' });
    let calls = 0;
    recorded = record(client, { transform: (obj) => { calls++; return obj; } });
    recorded.informer.start();
    await recorded.informer.waitForSync();
    await until(() => server.openWatches === 1);
    server.sendRaw(JSON.stringify({ type: 'MODIFIED', object: { metadata: { name: 'a', namespace: 'ns', resourceVersion: '101' }, data: { v: 'stale' } } }));
    server.put('b');
    await until(() => recorded!.events.includes('add b'));
    expect(calls).toBe(2);
    expect(recorded.informer.get('ns', 'a')?.data).toEqual({ v: '1' });
  });
});

describe('stripManagedFields', () => {
  test('drops only metadata.managedFields, without touching the object it was given', () => {
    const served: KubeObject = { kind: 'Pod', metadata: { name: 'p', resourceVersion: '7', managedFields: [{ manager: 'm' }], labels: { a: 'b' } }, spec: { x: 1 } };
    const stripped = stripManagedFields(served);
    expect(stripped).toEqual({ kind: 'Pod', metadata: { name: 'p', resourceVersion: '7', labels: { a: 'b' } }, spec: { x: 1 } });
    expect(served.metadata.managedFields).toEqual([{ manager: 'm' }]);
    const bare: KubeObject = { metadata: { name: 'q' } };
    expect(stripManagedFields(bare)).toBe(bare);
  });
});
