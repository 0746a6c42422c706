// The Kubernetes layer against the loopback API server (e2e/apiserver): real HTTPS, kubeconfig with
// a CA and bearer token, the Gatehouse CRDs with schema validation, resourceVersions, 410 and faults.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { isGatehouseError } from '../../api/errors.js';
import { silentLogger } from '../../api/logging/logger.js';
import { startLoopbackApiServer, type LoopbackApiServer } from '../../e2e/apiserver/loopback-api-server.js';
import { Informer } from './informer.js';
import { createKubeClient, RESOURCE_TYPES, type KubeClient, type KubeObject } from './kube-client.js';
import { kubeErrorStatus } from './kube-errors.js';
import { createKubeMetrics } from './kube-metrics.js';
import { LeaderElector } from './leader-election.js';
import { until, failure } from '../../testing/async-checks.js';

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const NS = 'payments';

function identity(name: string, groups: string[] = ['ci']): KubeObject {
  return { apiVersion: 'gatehouse.dev/v1alpha1', kind: 'NonHumanIdentity', metadata: { name, namespace: NS }, spec: { serviceAccountName: name, groups } };
}

describe('Kubernetes layer against the loopback API server', () => {
  let server: LoopbackApiServer;
  let dir: string;
  let kubeconfig: string;
  let client: KubeClient;

  beforeAll(async () => {
    server = await startLoopbackApiServer({ crdDir: 'crds', bookmarkIntervalMs: 200 });
    dir = await mkdtemp(join(tmpdir(), 'gatehouse-kube-'));
    kubeconfig = join(dir, 'kubeconfig');
    await server.writeKubeconfig(kubeconfig);
    client = createKubeClient({ kubeconfigPath: kubeconfig });
    await client.create(RESOURCE_TYPES.namespaces, { metadata: { name: NS } });
  });

  afterAll(async () => {
    client.close?.();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  describe('KubeClient', () => {
    test('create, get, list, replace with optimistic concurrency, delete', async () => {
      const created = await client.create(RESOURCE_TYPES.nonHumanIdentities, identity('crud'));
      expect(created.metadata.uid).toBeTruthy();
      const read = await client.get<KubeObject>(RESOURCE_TYPES.nonHumanIdentities, NS, 'crud');
      expect(read?.spec).toMatchObject({ serviceAccountName: 'crud', groups: ['ci'] });
      const listed = await client.list(RESOURCE_TYPES.nonHumanIdentities, { namespace: NS });
      expect(listed.items.map((o) => o.metadata.name)).toContain('crud');
      expect(listed.items[0]?.kind).toBe('NonHumanIdentity');
      expect(Number(listed.resourceVersion)).toBeGreaterThan(0);

      const replaced = await client.replace(RESOURCE_TYPES.nonHumanIdentities, { ...read!, spec: { serviceAccountName: 'crud', groups: ['ci', 'dba'] } });
      expect(replaced.metadata.resourceVersion).not.toBe(read!.metadata.resourceVersion);
      // The stale copy loses: 409 with the status kept.
      const stale = await failure(client.replace(RESOURCE_TYPES.nonHumanIdentities, { ...read!, spec: { serviceAccountName: 'x' } }));
      expect(isGatehouseError(stale, 'GH_ERR_KUBE_CONFLICT')).toBe(true);
      expect(kubeErrorStatus(stale)).toBe(409);

      await client.delete(RESOURCE_TYPES.nonHumanIdentities, NS, 'crud');
      expect(await client.get(RESOURCE_TYPES.nonHumanIdentities, NS, 'crud')).toBeUndefined();
      // Deleting what is gone is not an error.
      await client.delete(RESOURCE_TYPES.nonHumanIdentities, NS, 'crud');
    });

    test('errors keep their HTTP status: 409 AlreadyExists, 422 Invalid, 404 for an unknown type', async () => {
      await client.create(RESOURCE_TYPES.nonHumanIdentities, identity('twice'));
      const exists = await failure(client.create(RESOURCE_TYPES.nonHumanIdentities, identity('twice')));
      expect(kubeErrorStatus(exists)).toBe(409);
      expect((exists as { details: { reason: string } }).details.reason).toBe('AlreadyExists');

      const invalid = await failure(client.create(RESOURCE_TYPES.nonHumanIdentities, { ...identity('bad'), spec: { oidc: { issuer: 'https://x' } } }));
      expect(isGatehouseError(invalid, 'GH_ERR_KUBE_INVALID')).toBe(true);
      expect(kubeErrorStatus(invalid)).toBe(422);

      const unknown = await failure(client.list({ group: 'nothing.example', version: 'v1', plural: 'things', kind: 'Thing', namespaced: true }, {}));
      expect(isGatehouseError(unknown, 'GH_ERR_KUBE_NOT_FOUND')).toBe(true);
    });

    test('scope mistakes are refused before any request', async () => {
      expect(isGatehouseError(await failure(client.get(RESOURCE_TYPES.secrets, undefined, 'x')), 'GH_ERR_INVALID_ARGUMENT')).toBe(true);
      expect(isGatehouseError(await failure(client.get(RESOURCE_TYPES.namespaces, 'ns', 'x')), 'GH_ERR_INVALID_ARGUMENT')).toBe(true);
      expect(isGatehouseError(await failure(client.patch(RESOURCE_TYPES.secrets, NS, 'x', {}, 'apply')), 'GH_ERR_INVALID_ARGUMENT')).toBe(true);
    });

    test('json, merge and server-side apply patches, and the status subresource', async () => {
      await client.create(RESOURCE_TYPES.nonHumanIdentities, identity('patched'));
      const merged = await client.patch<KubeObject>(RESOURCE_TYPES.nonHumanIdentities, NS, 'patched', { metadata: { labels: { team: 'a' } } }, 'merge');
      expect(merged.metadata.labels).toEqual({ team: 'a' });
      const jsonPatched = await client.patch<KubeObject>(RESOURCE_TYPES.nonHumanIdentities, NS, 'patched', [{ op: 'add', path: '/spec/groups/-', value: 'dba' }], 'json');
      expect((jsonPatched.spec as { groups: string[] }).groups).toEqual(['ci', 'dba']);
      const applied = await client.patch<KubeObject>(
        RESOURCE_TYPES.nonHumanIdentities,
        NS,
        'patched',
        { metadata: { name: 'patched', namespace: NS, annotations: { owner: 'operator' } } },
        'apply',
        { fieldManager: 'gatehouse-operator' },
      );
      expect(applied.metadata.annotations).toEqual({ owner: 'operator' });

      const conditions = [{ type: 'Ready', status: 'True', reason: 'Accepted', message: 'ok', lastTransitionTime: '2026-01-01T00:00:00Z' }];
      const withStatus = await client.patchStatus<KubeObject>(RESOURCE_TYPES.nonHumanIdentities, NS, 'patched', { conditions });
      expect(withStatus.status).toEqual({ conditions });
      // The status subresource does not touch the spec, and a spec write does not touch the status.
      const afterSpecWrite = await client.patch<KubeObject>(RESOURCE_TYPES.nonHumanIdentities, NS, 'patched', { status: { conditions: [] }, spec: { groups: ['x'] } }, 'merge');
      expect(afterSpecWrite.status).toEqual({ conditions });
    });

    test('a bad token is a 401 GH_ERR_KUBE_UNAUTHORIZED', async () => {
      const path = join(dir, 'bad-kubeconfig');
      await server.writeKubeconfig(path, { token: 'not-a-token' });
      const unauthenticated = createKubeClient({ kubeconfigPath: path });
      const error = await failure(unauthenticated.list(RESOURCE_TYPES.secrets, { namespace: NS }));
      unauthenticated.close?.();
      expect(isGatehouseError(error, 'GH_ERR_KUBE_UNAUTHORIZED')).toBe(true);
      expect(kubeErrorStatus(error)).toBe(401);
    });

    test('a missing kubeconfig file is GH_ERR_KUBE_CONFIG', () => {
      let caught: unknown;
      try {
        createKubeClient({ kubeconfigPath: join(dir, 'absent') });
      } catch (error) {
        caught = error;
      }
      expect(isGatehouseError(caught, 'GH_ERR_KUBE_CONFIG')).toBe(true);
    });

    test('watch streams events from a resourceVersion and ends cleanly on abort', async () => {
      const start = await client.list(RESOURCE_TYPES.secrets, { namespace: NS });
      const events: string[] = [];
      let ended: Error | undefined | 'not yet' = 'not yet';
      const handle = await client.watch(
        RESOURCE_TYPES.secrets,
        { namespace: NS, resourceVersion: start.resourceVersion, allowBookmarks: false },
        (event) => events.push(`${event.type} ${event.object.metadata.name}`),
        (error) => (ended = error),
      );
      await client.create(RESOURCE_TYPES.secrets, { metadata: { name: 'watched', namespace: NS }, stringData: { k: 'v' } });
      await client.delete(RESOURCE_TYPES.secrets, NS, 'watched');
      await until(() => events.length === 2);
      expect(events).toEqual(['ADDED watched', 'DELETED watched']);
      handle.abort();
      await until(() => ended !== 'not yet');
      expect(ended).toBeUndefined();
    });
  });

  describe('Informer', () => {
    const metrics = createKubeMetrics(new Registry());
    let informer: Informer<KubeObject>;
    const events: string[] = [];

    const restarts = async (reason: string): Promise<number> =>
      (await metrics.watchRestarts.get()).values.find((v) => v.labels.reason === reason && v.labels.resource === 'secrets')?.value ?? 0;

    beforeAll(async () => {
      for (const name of ['s1', 's2', 's3']) await client.create(RESOURCE_TYPES.secrets, { metadata: { name, namespace: NS, labels: { informer: 'yes' } }, stringData: { v: '1' } });
      informer = new Informer<KubeObject>({
        client,
        type: RESOURCE_TYPES.secrets,
        namespace: NS,
        labelSelector: 'informer=yes',
        logger: silentLogger(),
        metrics,
        backoff: { initialMs: 600, maxMs: 1200 },
        stallTimeoutMs: 3000,
      });
      informer.on('add', (obj) => events.push(`add ${obj.metadata.name}`));
      informer.on('update', (obj) => events.push(`update ${obj.metadata.name}`));
      informer.on('delete', (obj) => events.push(`delete ${obj.metadata.name}`));
      informer.start();
      await informer.waitForSync();
    });

    afterAll(async () => {
      await informer.stop();
    });

    test('initial sync lists what matches the selector', () => {
      expect(informer.hasSynced()).toBe(true);
      expect(events.sort()).toEqual(['add s1', 'add s2', 'add s3']);
      expect(informer.get(NS, 's1')?.metadata.labels).toEqual({ informer: 'yes' });
    });

    test('add, update and delete arrive as events', async () => {
      events.length = 0;
      await client.create(RESOURCE_TYPES.secrets, { metadata: { name: 's4', namespace: NS, labels: { informer: 'yes' } } });
      await client.patch(RESOURCE_TYPES.secrets, NS, 's4', { stringData: { v: '2' } }, 'merge');
      await client.delete(RESOURCE_TYPES.secrets, NS, 's4');
      await client.create(RESOURCE_TYPES.secrets, { metadata: { name: 'unlabelled', namespace: NS } });
      await until(() => events.length === 3);
      expect(events).toEqual(['add s4', 'update s4', 'delete s4']);
      expect(informer.get(NS, 's4')).toBeUndefined();
    });

    test('a dropped watch is restarted and misses nothing', async () => {
      events.length = 0;
      const closedBefore = await restarts('closed');
      server.faults.dropWatches();
      await client.create(RESOURCE_TYPES.secrets, { metadata: { name: 's5', namespace: NS, labels: { informer: 'yes' } } });
      await until(() => events.includes('add s5'));
      expect(await restarts('closed')).toBe(closedBefore + 1);
    });

    test('410 after a compaction: relists and reports the deletion it never saw as an event', async () => {
      events.length = 0;
      const isWatch = (request: { query: URLSearchParams }): boolean => request.query.get('watch') === 'true';
      // The next watch fails, so the informer backs off (>= 300 ms) while things change unseen.
      server.faults.failNext(1, 500, isWatch);
      server.faults.dropWatches();
      await client.delete(RESOURCE_TYPES.secrets, NS, 's2');
      await client.patch(RESOURCE_TYPES.secrets, NS, 's3', { stringData: { v: '3' } }, 'merge');
      await client.create(RESOURCE_TYPES.secrets, { metadata: { name: 's6', namespace: NS, labels: { informer: 'yes' } } });
      server.faults.compactWatchWindow();
      await until(() => events.length === 3);
      expect(events.sort()).toEqual(['add s6', 'delete s2', 'update s3']);
      const relists = (await metrics.relists.get()).values.find((v) => v.labels.reason === 'gone')?.value;
      expect(relists).toBe(1);
      expect(await restarts('gone')).toBe(1);
      expect(informer.list(NS).map((o) => o.metadata.name).sort()).toEqual(['s1', 's3', 's5', 's6']);
    });
  });

  test('leader election on a real Lease: one of two leads, the other takes over when it stops', async () => {
    const started: string[] = [];
    const elector = (id: string): LeaderElector =>
      new LeaderElector({
        client,
        namespace: NS,
        name: 'gatehouse-operator',
        identity: id,
        leaseDurationMs: 2000,
        renewDeadlineMs: 1000,
        retryPeriodMs: 100,
        logger: silentLogger(),
        onStartedLeading: () => started.push(id),
        onStoppedLeading: () => undefined,
      });
    const a = elector('replica-a');
    const b = elector('replica-b');
    a.start();
    b.start();
    await until(() => started.length === 1);
    await delay(300);
    expect([a.isLeader(), b.isLeader()].filter(Boolean)).toHaveLength(1);
    const [leader, follower] = a.isLeader() ? [a, b] : [b, a];
    const lease = await client.get<KubeObject>(RESOURCE_TYPES.leases, NS, 'gatehouse-operator');
    expect((lease?.spec as { holderIdentity: string }).holderIdentity).toBe(started[0]);
    await leader.stop();
    await until(() => follower.isLeader(), 1500);
    expect(started).toHaveLength(2);
    await follower.stop();
  });
});
