import { Registry } from 'prom-client';
import { silentLogger } from '../../api/logging/logger.js';
import { Controller, objectKey, parseObjectKey, type ReconcileResult } from './controller.js';
import { createKubeMetrics } from './kube-metrics.js';
import { RateLimiter, WorkQueue } from './work-queue.js';
import { until } from '../../testing/async-checks.js';

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('objectKey', () => {
  test('namespace/name for namespaced objects, name for cluster-scoped ones, and back', () => {
    expect(objectKey({ metadata: { name: 'p', namespace: 'ns' } })).toBe('ns/p');
    expect(objectKey({ metadata: { name: 'cluster-thing' } })).toBe('cluster-thing');
    expect(parseObjectKey('ns/p')).toEqual({ namespace: 'ns', name: 'p' });
    expect(parseObjectKey('cluster-thing')).toEqual({ name: 'cluster-thing' });
  });
});

describe('Controller', () => {
  test('reconciles enqueued keys; a key enqueued many times while waiting is reconciled once', async () => {
    const seen: string[] = [];
    const controller = new Controller({ name: 't', logger: silentLogger(), reconcile: async (key) => void seen.push(key) });
    controller.enqueue('a/1');
    controller.enqueue('a/2');
    controller.enqueue('a/1');
    controller.start();
    await until(() => seen.length >= 2);
    await delay(20);
    expect(seen).toEqual(['a/1', 'a/2']);
    await controller.stop();
  });

  test('never runs one key on two workers at once; a key re-enqueued during its reconcile runs again after', async () => {
    let running = 0;
    let maxRunning = 0;
    let calls = 0;
    let controller: Controller | undefined;
    controller = new Controller({
      name: 't',
      workers: 4,
      logger: silentLogger(),
      reconcile: async () => {
        calls += 1;
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        if (calls === 1) controller!.enqueue('k');
        await delay(30);
        running -= 1;
      },
    });
    controller.start();
    controller.enqueue('k');
    await until(() => calls === 2 && running === 0);
    expect(maxRunning).toBe(1);
    await controller.stop();
  });

  test('different keys run in parallel up to the number of workers', async () => {
    let running = 0;
    let maxRunning = 0;
    const controller = new Controller({
      name: 't',
      workers: 3,
      logger: silentLogger(),
      reconcile: async () => {
        running += 1;
        maxRunning = Math.max(maxRunning, running);
        await delay(40);
        running -= 1;
      },
    });
    controller.start();
    for (const key of ['a', 'b', 'c', 'd', 'e']) controller.enqueue(key);
    await until(() => maxRunning === 3);
    await controller.stop();
    expect(maxRunning).toBe(3);
  });

  test('errors are retried with backoff and counted; success forgets the backoff', async () => {
    const metrics = createKubeMetrics(new Registry());
    const queue = new WorkQueue({ name: 'retry', metrics, rateLimiter: new RateLimiter({ baseDelayMs: 10 }) });
    const attempts: number[] = [];
    const controller = new Controller({
      name: 'retry',
      queue,
      metrics,
      logger: silentLogger(),
      reconcile: async () => {
        attempts.push(performance.now());
        if (attempts.length <= 2) throw new Error('boom');
        // Sync the third attempt: it succeeds.
      },
    });
    controller.start();
    controller.enqueue('k');
    await until(() => attempts.length === 3);
    await until(() => queue.numRequeues('k') === 0);
    expect(attempts[1]! - attempts[0]!).toBeGreaterThanOrEqual(9);
    expect(attempts[2]! - attempts[1]!).toBeGreaterThanOrEqual(19);
    expect((await metrics.reconcileErrors.get()).values[0]?.value).toBe(2);
    const durations = await metrics.reconcileDuration.get();
    const count = (result: string): number | undefined =>
      durations.values.find((v) => v.metricName?.endsWith('_count') && v.labels.result === result)?.value;
    expect(count('error')).toBe(2);
    expect(count('success')).toBe(1);
    await controller.stop();
  });

  test('a reconcile that throws synchronously is retried, not a crash', async () => {
    let calls = 0;
    const controller = new Controller({
      name: 'sync-throw',
      queue: new WorkQueue({ rateLimiter: new RateLimiter({ baseDelayMs: 5 }) }),
      logger: silentLogger(),
      reconcile: ((): Promise<ReconcileResult> => {
        calls += 1;
        if (calls === 1) throw new Error('sync');
        return Promise.resolve();
      }) as (key: string) => Promise<ReconcileResult>,
    });
    controller.start();
    controller.enqueue('k');
    await until(() => calls === 2);
    await controller.stop();
  });

  test('requeueAfterMs brings the key back after that long', async () => {
    const times: number[] = [];
    const controller = new Controller({
      name: 'requeue',
      logger: silentLogger(),
      reconcile: async () => {
        times.push(performance.now());
        return times.length === 1 ? { requeueAfterMs: 60 } : undefined;
      },
    });
    controller.start();
    controller.enqueue('k');
    await until(() => times.length === 2);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(55);
    await delay(100);
    expect(times).toHaveLength(2);
    await controller.stop();
  });

  test('stop waits for the reconcile in progress and starts no other', async () => {
    let finished = false;
    const started: string[] = [];
    const controller = new Controller({
      name: 'drain',
      logger: silentLogger(),
      reconcile: async (key) => {
        started.push(key);
        await delay(80);
        finished = true;
      },
    });
    controller.enqueue('a');
    controller.enqueue('b');
    controller.start();
    await until(() => started.length === 1);
    await controller.stop();
    expect(finished).toBe(true);
    expect(started).toEqual(['a']);
  });
});
