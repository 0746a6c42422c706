// @kubernetes/client-node against the loopback API server: list paging, watches (replay from a
// resourceVersion, bookmarks, 410 after compaction, informer relist), status subresource and
// generation, finalizers, optimistic concurrency.
import { CoreV1Api, CustomObjectsApi, KubeConfig, makeInformer, Watch, type V1ConfigMap } from '@kubernetes/client-node';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../api/logging/logger.js';
import { until as waitFor } from '../../testing/async-checks.js';
import { startLoopbackApiServer, type LoopbackApiServer } from './loopback-api-server.js';
import { REPO_ROOT } from './kubectl-runner.js';

let server: LoopbackApiServer;
let kc: KubeConfig;
let core: CoreV1Api;
let custom: CustomObjectsApi;
let dir: string;

const GROUP = 'gatehouse.dev';
const VERSION = 'v1alpha1';

beforeAll(async () => {
  server = await startLoopbackApiServer({ crdDir: join(REPO_ROOT, 'crds'), logger: silentLogger(), watchWindow: 50, bookmarkIntervalMs: 100 });
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-client-node-'));
  await server.writeKubeconfig(join(dir, 'kubeconfig'));
  kc = new KubeConfig();
  kc.loadFromFile(join(dir, 'kubeconfig'));
  core = kc.makeApiClient(CoreV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
  await core.createNamespace({ body: { metadata: { name: 'team' } } });
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

function configMap(name: string, labels: Record<string, string> = {}): V1ConfigMap {
  return { metadata: { name, labels }, data: { name } };
}

function identity(name: string): Record<string, unknown> {
  return { apiVersion: `${GROUP}/${VERSION}`, kind: 'NonHumanIdentity', metadata: { name }, spec: { serviceAccountName: name } };
}

describe('lists', () => {
  it('pages with limit and continue and reports the list resourceVersion', async () => {
    for (let index = 0; index < 5; index += 1) await core.createNamespacedConfigMap({ namespace: 'team', body: configMap(`page-${index}`, { paged: 'yes' }) });
    const first = await core.listNamespacedConfigMap({ namespace: 'team', labelSelector: 'paged', limit: 2 });
    expect(first.items.map((item) => item.metadata!.name)).toEqual(['page-0', 'page-1']);
    expect(first.metadata!._continue).toBeTruthy();
    expect(first.metadata!.remainingItemCount).toBe(3);
    const second = await core.listNamespacedConfigMap({ namespace: 'team', labelSelector: 'paged', limit: 2, _continue: first.metadata!._continue });
    expect(second.items.map((item) => item.metadata!.name)).toEqual(['page-2', 'page-3']);
    const third = await core.listNamespacedConfigMap({ namespace: 'team', labelSelector: 'paged', limit: 2, _continue: second.metadata!._continue });
    expect(third.items.map((item) => item.metadata!.name)).toEqual(['page-4']);
    expect(third.metadata!._continue).toBeUndefined();
    expect(Number(first.metadata!.resourceVersion)).toBeGreaterThanOrEqual(Number(first.items[1].metadata!.resourceVersion));
  });

  it('answers NotFound, AlreadyExists and Conflict as Status errors', async () => {
    await expect(core.readNamespacedConfigMap({ namespace: 'team', name: 'nope' })).rejects.toMatchObject({ code: 404 });
    await core.createNamespacedConfigMap({ namespace: 'team', body: configMap('dup') });
    await expect(core.createNamespacedConfigMap({ namespace: 'team', body: configMap('dup') })).rejects.toMatchObject({ code: 409 });
    const stored = await core.readNamespacedConfigMap({ namespace: 'team', name: 'dup' });
    await core.replaceNamespacedConfigMap({ namespace: 'team', name: 'dup', body: { ...stored, data: { v: '1' } } });
    // The second writer still holds the old resourceVersion.
    await expect(core.replaceNamespacedConfigMap({ namespace: 'team', name: 'dup', body: { ...stored, data: { v: '2' } } })).rejects.toMatchObject({ code: 409 });
  });

  it('keeps the resourceVersion on a write that changes nothing', async () => {
    const created = await core.createNamespacedConfigMap({ namespace: 'team', body: configMap('noop') });
    // managedFields times have one-second resolution: let a second pass so the write's own time differs.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const replaced = await core.replaceNamespacedConfigMap({ namespace: 'team', name: 'noop', body: created });
    expect(replaced.metadata!.resourceVersion).toBe(created.metadata!.resourceVersion);
    const changed = await core.replaceNamespacedConfigMap({ namespace: 'team', name: 'noop', body: { ...created, data: { v: '2' } } });
    expect(Number(changed.metadata!.resourceVersion)).toBeGreaterThan(Number(created.metadata!.resourceVersion));
  });

  it('fills in generateName', async () => {
    const created = await core.createNamespacedConfigMap({ namespace: 'team', body: { metadata: { generateName: 'gen-' } } });
    expect(created.metadata!.name).toMatch(/^gen-[a-z0-9]{5}$/);
  });
});

interface Seen { type: string; name?: string; resourceVersion?: string; code?: number }

async function collectWatch(path: string, query: Record<string, string | number | boolean>, until: (seen: Seen[]) => boolean): Promise<Seen[]> {
  const seen: Seen[] = [];
  let controller: AbortController | undefined;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`watch saw only ${JSON.stringify(seen)}`)), 5000);
    void new Watch(kc).watch(path, query, (type, object: { metadata?: { name?: string; resourceVersion?: string }; code?: number }) => {
      seen.push({ type, name: object.metadata?.name, resourceVersion: object.metadata?.resourceVersion, code: object.code });
      if (until(seen)) {
        clearTimeout(timer);
        resolve();
      }
    }, () => {
      clearTimeout(timer);
      resolve();
    }).then((abort) => { controller = abort; }, reject);
  });
  controller?.abort();
  return seen;
}

describe('watches', () => {
  it('replays changes after a resourceVersion, then streams live ones, with bookmarks', async () => {
    const start = await core.createNamespacedConfigMap({ namespace: 'team', body: configMap('w-1') });
    await core.patchNamespacedConfigMap({ namespace: 'team', name: 'w-1', body: [{ op: 'add', path: '/data/x', value: 'y' }] });
    await core.deleteNamespacedConfigMap({ namespace: 'team', name: 'w-1' });
    const seen = await collectWatch('/api/v1/namespaces/team/configmaps', { resourceVersion: start.metadata!.resourceVersion!, allowWatchBookmarks: true }, (events) => events.some((event) => event.type === 'BOOKMARK'));
    const changes = seen.filter((event) => event.type !== 'BOOKMARK');
    expect(changes.map((event) => `${event.type} ${event.name}`)).toEqual(['MODIFIED w-1', 'DELETED w-1']);
    const bookmark = seen.find((event) => event.type === 'BOOKMARK')!;
    expect(Number(bookmark.resourceVersion)).toBeGreaterThanOrEqual(Number(changes[1].resourceVersion));
  });

  it('sends current objects as ADDED when no resourceVersion is given, and honours selectors', async () => {
    await core.createNamespacedConfigMap({ namespace: 'team', body: configMap('w-sel', { watched: 'yes' }) });
    const seen = await collectWatch('/api/v1/namespaces/team/configmaps', { labelSelector: 'watched=yes' }, (events) => events.length >= 1);
    expect(seen).toEqual([expect.objectContaining({ type: 'ADDED', name: 'w-sel' })]);
  });

  it('reports objects entering and leaving a label selection as ADDED and DELETED', async () => {
    const start = await core.createNamespacedConfigMap({ namespace: 'team', body: configMap('w-move') });
    const label = (value: string | null) => core.patchNamespacedConfigMap({ namespace: 'team', name: 'w-move',
      body: value === null ? [{ op: 'remove', path: '/metadata/labels/phase' }] : [{ op: 'add', path: '/metadata/labels/phase', value }] });
    await label('in');
    await label('in');
    await core.patchNamespacedConfigMap({ namespace: 'team', name: 'w-move', body: [{ op: 'add', path: '/data/touched', value: 'yes' }] });
    await label('out');
    const seen = await collectWatch('/api/v1/namespaces/team/configmaps', { resourceVersion: start.metadata!.resourceVersion!, labelSelector: 'phase=in' }, (events) => events.length >= 3);
    expect(seen.map((event) => event.type)).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
  });

  it('answers 410 Gone for a resourceVersion older than the window, and after compaction', async () => {
    const old = await core.createNamespacedConfigMap({ namespace: 'team', body: configMap('w-old') });
    await core.createNamespacedConfigMap({ namespace: 'team', body: configMap('w-newer') });
    const replayed = await collectWatch('/api/v1/namespaces/team/configmaps', { resourceVersion: old.metadata!.resourceVersion! }, (events) => events.length > 0);
    expect(replayed[0]).toMatchObject({ type: 'ADDED', name: 'w-newer' });
    server.faults.compactWatchWindow();
    const seen = await collectWatch('/api/v1/namespaces/team/configmaps', { resourceVersion: old.metadata!.resourceVersion! }, (events) => events.length > 0);
    expect(seen[0]).toMatchObject({ type: 'ERROR', code: 410 });
    // The window is 50 events: 60 writes push the first out on their own.
    const before = await core.createNamespacedConfigMap({ namespace: 'team', body: configMap('w-window') });
    for (let index = 0; index < 60; index += 1) await core.patchNamespacedConfigMap({ namespace: 'team', name: 'w-window', body: [{ op: 'add', path: '/data/n', value: String(index) }] });
    const expired = await collectWatch('/api/v1/namespaces/team/configmaps', { resourceVersion: before.metadata!.resourceVersion! }, (events) => events.length > 0);
    expect(expired[0]).toMatchObject({ type: 'ERROR', code: 410 });
  });

  it('keeps an informer in sync through dropped watches and a 410 relist', async () => {
    const path = '/api/v1/namespaces/team/configmaps';
    const informer = makeInformer(kc, path, () => core.listNamespacedConfigMap({ namespace: 'team', labelSelector: 'informed' }), 'informed');
    const added: string[] = [];
    informer.on('add', (object) => added.push(object.metadata!.name!));
    // As operators do: restart after an error, except once stopped (stop() itself reports an abort error).
    let stopped = false;
    informer.on('error', () => setTimeout(() => { if (!stopped) void informer.start(); }, 50));
    await informer.start();
    await core.createNamespacedConfigMap({ namespace: 'team', body: configMap('inf-1', { informed: 'yes' }) });
    await waitFor(() => added.includes('inf-1'));
    server.faults.compactWatchWindow();
    server.faults.dropWatches();
    await core.createNamespacedConfigMap({ namespace: 'team', body: configMap('inf-2', { informed: 'yes' }) });
    await waitFor(() => added.includes('inf-2'));
    expect(informer.list().map((object) => object.metadata!.name).sort()).toEqual(['inf-1', 'inf-2']);
    stopped = true;
    await informer.stop();
  });
});

describe('custom resources', () => {
  it('splits status: the main resource ignores status, /status changes only status, generation counts spec changes', async () => {
    const created = await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'team', plural: 'nonhumanidentities', body: { ...identity('ci'), status: { observedGeneration: 9 } } }) as Record<string, any>;
    expect(created.status).toBeUndefined();
    expect(created.metadata.generation).toBe(1);
    const withStatus = await custom.replaceNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace: 'team', plural: 'nonhumanidentities', name: 'ci',
      body: { ...created, spec: { serviceAccountName: 'ignored' }, status: { observedGeneration: 1 } } }) as Record<string, any>;
    expect(withStatus.status.observedGeneration).toBe(1);
    expect(withStatus.spec.serviceAccountName).toBe('ci');
    expect(withStatus.metadata.generation).toBe(1);
    const specChanged = await custom.replaceNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'team', plural: 'nonhumanidentities', name: 'ci',
      body: { ...withStatus, spec: { serviceAccountName: 'ci-2' }, status: { observedGeneration: 5 } } }) as Record<string, any>;
    expect(specChanged.metadata.generation).toBe(2);
    expect(specChanged.status.observedGeneration).toBe(1);
    expect(Number(specChanged.metadata.resourceVersion)).toBeGreaterThan(Number(withStatus.metadata.resourceVersion));
  });

  it('rejects schema violations with 422 and field causes, and prunes unknown fields', async () => {
    const error = await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'team', plural: 'nonhumanidentities',
      body: { ...identity('bad'), spec: { serviceAccountName: 'x', maxCredentialTTL: 7 } } }).catch((caught: unknown) => caught) as { code: number; body: string };
    expect(error.code).toBe(422);
    const status = JSON.parse(error.body) as { reason: string; details: { causes: Array<{ field: string }> } };
    expect(status.reason).toBe('Invalid');
    expect(status.details.causes.map((cause) => cause.field)).toContain('spec.maxCredentialTTL');
    const pruned = await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'team', plural: 'nonhumanidentities',
      body: { ...identity('pruned'), spec: { serviceAccountName: 'x', shoeSize: 44 } } }) as Record<string, any>;
    // Unknown fields go; schema defaults (maxCredentialTTL) are filled in, as the real server does.
    expect(pruned.spec).toEqual({ serviceAccountName: 'x', maxCredentialTTL: '1h' });
  });

  it('holds deletion while finalizers remain and deletes when the last one goes', async () => {
    const body = { ...identity('final'), metadata: { name: 'final', finalizers: ['gatehouse.dev/cleanup'] } };
    await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'team', plural: 'nonhumanidentities', body });
    await custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'team', plural: 'nonhumanidentities', name: 'final' });
    const marked = await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'team', plural: 'nonhumanidentities', name: 'final' }) as Record<string, any>;
    expect(marked.metadata.deletionTimestamp).toBeDefined();
    await custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'team', plural: 'nonhumanidentities', name: 'final',
      body: [{ op: 'remove', path: '/metadata/finalizers' }] });
    await expect(custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'team', plural: 'nonhumanidentities', name: 'final' })).rejects.toMatchObject({ code: 404 });
  });

  it('terminates a namespace: contents go, finalizers hold it, new content is refused', async () => {
    await core.createNamespace({ body: { metadata: { name: 'doomed' } } });
    await core.createNamespacedConfigMap({ namespace: 'doomed', body: configMap('plain') });
    await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'doomed', plural: 'nonhumanidentities',
      body: { ...identity('held'), metadata: { name: 'held', finalizers: ['gatehouse.dev/cleanup'] } } });
    await core.deleteNamespace({ name: 'doomed' });
    const terminating = await core.readNamespace({ name: 'doomed' });
    expect(terminating.status!.phase).toBe('Terminating');
    expect(terminating.metadata!.deletionTimestamp).toBeDefined();
    await expect(core.readNamespacedConfigMap({ namespace: 'doomed', name: 'plain' })).rejects.toMatchObject({ code: 404 });
    await expect(core.createNamespacedConfigMap({ namespace: 'doomed', body: configMap('late') })).rejects.toMatchObject({ code: 403 });
    await custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'doomed', plural: 'nonhumanidentities', name: 'held',
      body: [{ op: 'remove', path: '/metadata/finalizers' }] });
    await expect(core.readNamespace({ name: 'doomed' })).rejects.toMatchObject({ code: 404 });
  });
});
