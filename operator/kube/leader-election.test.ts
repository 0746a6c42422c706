// Leader election logic against an in-memory Lease store with the API server's optimistic
// concurrency (409 on a stale resourceVersion or an existing name). The same scenarios run against
// the loopback API server in kube-integration.test.ts.
import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import { silentLogger } from '../../api/logging/logger.js';
import { RESOURCE_TYPES, type KubeClient, type KubeObject, type ResourceType } from './kube-client.js';
import { LeaderElector, microTime, type Lease } from './leader-election.js';
import { until } from '../../testing/async-checks.js';

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Leases only; a client can be cut off to simulate a partitioned replica. */
class LeaseStore {
  private readonly objects = new Map<string, KubeObject>();
  private version = 0;
  readonly cutOff = new Set<string>();

  lease(name: string): Lease | undefined {
    return this.objects.get(name) as Lease | undefined;
  }

  clientFor(replica: string): KubeClient {
    const check = async (): Promise<void> => {
      await delay(1);
      if (this.cutOff.has(replica)) throw new GatehouseError('GH_ERR_KUBE_UNREACHABLE', { server: 'memory', verb: 'x', resource: 'leases', detail: 'cut off' });
    };
    const conflict = (): GatehouseError => new GatehouseError('GH_ERR_KUBE_CONFLICT', { status: 409 });
    const unused = (): never => {
      throw new Error('not used by leader election');
    };
    return {
      get: async <T extends KubeObject>(_type: ResourceType, _ns: string | undefined, name: string) => {
        await check();
        const found = this.objects.get(name);
        return found === undefined ? undefined : (structuredClone(found) as T);
      },
      create: async <T extends KubeObject>(_type: ResourceType, obj: T) => {
        await check();
        if (this.objects.has(obj.metadata.name)) throw conflict();
        const stored = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++this.version) } };
        this.objects.set(obj.metadata.name, stored);
        return structuredClone(stored) as T;
      },
      replace: async <T extends KubeObject>(_type: ResourceType, obj: T) => {
        await check();
        const current = this.objects.get(obj.metadata.name);
        if (current === undefined) throw new GatehouseError('GH_ERR_KUBE_NOT_FOUND', { status: 404 });
        if (current.metadata.resourceVersion !== obj.metadata.resourceVersion) throw conflict();
        const stored = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++this.version) } };
        this.objects.set(obj.metadata.name, stored);
        return structuredClone(stored) as T;
      },
      list: unused,
      delete: unused,
      patch: unused,
      patchStatus: unused,
      watch: unused,
    };
  }
}

interface Replica {
  elector: LeaderElector;
  starts: number;
  stops: number;
  signal?: AbortSignal;
}

const TIMING = { leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 100 };

function replica(store: LeaseStore, identity: string): Replica {
  const state: Replica = { starts: 0, stops: 0 } as Replica;
  state.elector = new LeaderElector({
    client: store.clientFor(identity),
    namespace: 'gatehouse-system',
    name: 'gatehouse-operator',
    identity,
    ...TIMING,
    logger: silentLogger(),
    onStartedLeading: (signal) => {
      state.starts += 1;
      state.signal = signal;
    },
    onStoppedLeading: () => {
      state.stops += 1;
    },
  });
  return state;
}

/** Replica `a` elected alone, then `b` started as a candidate against a's lease. */
async function leaderThenCandidate(store: LeaseStore): Promise<{ a: Replica; b: Replica }> {
  const a = replica(store, 'a');
  a.elector.start();
  await until(() => a.elector.isLeader());
  const b = replica(store, 'b');
  b.elector.start();
  return { a, b };
}

describe('LeaderElector', () => {
  test('of two contenders exactly one leads, and the lease names it with client-go fields', async () => {
    const store = new LeaseStore();
    const a = replica(store, 'a');
    const b = replica(store, 'b');
    a.elector.start();
    b.elector.start();
    await until(() => a.elector.isLeader() || b.elector.isLeader());
    await delay(400);
    expect([a, b].filter((r) => r.elector.isLeader())).toHaveLength(1);
    const leader = a.elector.isLeader() ? 'a' : 'b';
    const spec = store.lease('gatehouse-operator')?.spec;
    expect(spec).toMatchObject({ holderIdentity: leader, leaseDurationSeconds: 1, leaseTransitions: 0 });
    expect(spec?.renewTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    // Renewals move renewTime but keep acquireTime.
    const acquired = spec?.acquireTime;
    const renewed = spec?.renewTime;
    await delay(250);
    expect(store.lease('gatehouse-operator')?.spec?.acquireTime).toBe(acquired);
    expect(store.lease('gatehouse-operator')?.spec?.renewTime).not.toBe(renewed);
    await Promise.all([a.elector.stop(), b.elector.stop()]);
  });

  test('when the leader stops it releases the lease and the other takes over without waiting for expiry', async () => {
    const store = new LeaseStore();
    const { a, b } = await leaderThenCandidate(store);
    await delay(300);
    expect(b.elector.isLeader()).toBe(false);
    const stoppedAt = performance.now();
    await a.elector.stop();
    expect(a.stops).toBe(1);
    expect(a.signal?.aborted).toBe(true);
    await until(() => b.elector.isLeader());
    // Well under the 1 s lease: the release, not the expiry, let b in.
    expect(performance.now() - stoppedAt).toBeLessThan(700);
    expect(store.lease('gatehouse-operator')?.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    await b.elector.stop();
    expect(store.lease('gatehouse-operator')?.spec?.holderIdentity).toBe('');
  });

  test('a leader cut off from the API steps down within renewDeadline; the other takes over once the lease expires', async () => {
    const store = new LeaseStore();
    const { a, b } = await leaderThenCandidate(store);
    await delay(200);
    store.cutOff.add('a');
    const cutAt = performance.now();
    await until(() => !a.elector.isLeader());
    const steppedDownAfter = performance.now() - cutAt;
    expect(a.stops).toBe(1);
    expect(a.signal?.aborted).toBe(true);
    expect(steppedDownAfter).toBeLessThan(TIMING.renewDeadlineMs + 200);
    await until(() => b.elector.isLeader());
    const tookOverAfter = performance.now() - cutAt;
    // b must not take over before the lease, unchanged since a's last renewal, has expired.
    expect(tookOverAfter).toBeGreaterThanOrEqual(TIMING.leaseDurationMs - TIMING.retryPeriodMs);
    expect(steppedDownAfter).toBeLessThan(tookOverAfter);
    expect(store.lease('gatehouse-operator')?.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    // Reconnected, a becomes a candidate again and stays a follower.
    store.cutOff.delete('a');
    await delay(400);
    expect(a.elector.isLeader()).toBe(false);
    expect(b.elector.isLeader()).toBe(true);
    await Promise.all([a.elector.stop(), b.elector.stop()]);
  });

  test('a candidate takes over a lease whose holder vanished, after leaseDuration', async () => {
    const store = new LeaseStore();
    const now = microTime(new Date());
    await store.clientFor('setup').create(RESOURCE_TYPES.leases, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'gatehouse-operator', namespace: 'gatehouse-system' },
      spec: { holderIdentity: 'ghost', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: 4 },
    } as Lease);
    const b = replica(store, 'b');
    const started = performance.now();
    b.elector.start();
    await until(() => b.elector.isLeader());
    expect(performance.now() - started).toBeGreaterThanOrEqual(900);
    expect(store.lease('gatehouse-operator')?.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 5 });
    await b.elector.stop();
  });

  test('refuses timings where a leader could outlive its lease', () => {
    const base = { client: new LeaseStore().clientFor('x'), namespace: 'n', name: 'l', identity: 'x', logger: silentLogger(), onStartedLeading: () => {}, onStoppedLeading: () => {} };
    const build = (timing: typeof TIMING) => () => new LeaderElector({ ...base, ...timing });
    for (const bad of [
      { leaseDurationMs: 1000, renewDeadlineMs: 1000, retryPeriodMs: 100 },
      { leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 500 },
    ]) {
      let caught: unknown;
      try {
        build(bad)();
      } catch (error) {
        caught = error;
      }
      expect(isGatehouseError(caught, 'GH_ERR_INVALID_ARGUMENT')).toBe(true);
    }
    expect(build(TIMING)).not.toThrow();
  });
});
