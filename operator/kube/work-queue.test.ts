import { Registry } from 'prom-client';
import { createKubeMetrics } from './kube-metrics.js';
import { RateLimiter, WorkQueue } from './work-queue.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('WorkQueue', () => {
  test('hands keys out in order and holds each key once however often it is added', async () => {
    const queue = new WorkQueue();
    queue.add('a');
    queue.add('b');
    queue.add('a');
    expect(queue.length).toBe(2);
    expect(await queue.get()).toBe('a');
    expect(await queue.get()).toBe('b');
    expect(queue.length).toBe(0);
  });

  test('a key added while in process is not handed to a second worker, and comes back after done', async () => {
    const queue = new WorkQueue();
    queue.add('a');
    const first = await queue.get();
    queue.add('a');
    expect(queue.length).toBe(0);
    let second: string | undefined;
    void queue.get().then((key) => (second = key));
    await tick();
    expect(second).toBeUndefined();
    queue.done(first!);
    await tick();
    expect(second).toBe('a');
  });

  test('a key done without being re-added is not handed out again', async () => {
    const queue = new WorkQueue();
    queue.add('a');
    queue.done((await queue.get())!);
    expect(queue.length).toBe(0);
  });

  test('a waiting get receives the next added key', async () => {
    const queue = new WorkQueue();
    const waiting = queue.get();
    queue.add('x');
    expect(await waiting).toBe('x');
  });

  test('addAfter delays the key; the earlier of two delays wins', async () => {
    const queue = new WorkQueue();
    queue.addAfter('a', 400);
    queue.addAfter('a', 30);
    queue.addAfter('a', 300);
    expect(queue.length).toBe(0);
    const started = performance.now();
    expect(await queue.get()).toBe('a');
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(25);
    expect(waited).toBeLessThan(250);
  });

  test('shutDown releases waiting workers with undefined and refuses new keys', async () => {
    const queue = new WorkQueue();
    const waiting = queue.get();
    queue.shutDown();
    expect(await waiting).toBeUndefined();
    queue.add('a');
    expect(queue.length).toBe(0);
    expect(await queue.get()).toBeUndefined();
  });

  test('addRateLimited backs a key off exponentially until forget', async () => {
    const queue = new WorkQueue({ rateLimiter: new RateLimiter({ baseDelayMs: 20, maxDelayMs: 1000 }) });
    const delays: number[] = [];
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const started = performance.now();
      queue.addRateLimited('k');
      const key = await queue.get();
      delays.push(performance.now() - started);
      queue.done(key!);
    }
    expect(queue.numRequeues('k')).toBe(3);
    // 20, 40, 80 ms (timers may fire a little late, never early).
    expect(delays[0]).toBeGreaterThanOrEqual(18);
    expect(delays[1]).toBeGreaterThanOrEqual(38);
    expect(delays[2]).toBeGreaterThanOrEqual(78);
    queue.forget('k');
    expect(queue.numRequeues('k')).toBe(0);
  });

  test('metrics count adds and retries and show the depth', async () => {
    const metrics = createKubeMetrics(new Registry());
    const queue = new WorkQueue({ name: 'q', metrics, rateLimiter: new RateLimiter({ baseDelayMs: 1 }) });
    queue.add('a');
    queue.add('b');
    queue.add('a');
    expect((await metrics.queueDepth.get()).values[0]?.value).toBe(2);
    expect((await metrics.queueAdds.get()).values[0]?.value).toBe(2);
    queue.addRateLimited('c');
    expect((await metrics.queueRetries.get()).values[0]?.value).toBe(1);
    await queue.get();
    expect((await metrics.queueDepth.get()).values[0]?.value).toBe(1);
    queue.shutDown();
  });
});

describe('RateLimiter', () => {
  test('per-key delay doubles from the base up to the cap, and keys are independent', () => {
    const limiter = new RateLimiter({ baseDelayMs: 5, maxDelayMs: 100, burst: 1000 });
    expect([1, 2, 3, 4, 5, 6].map(() => limiter.when('a'))).toEqual([5, 10, 20, 40, 80, 100]);
    expect(limiter.when('b')).toBe(5);
    limiter.forget('a');
    expect(limiter.when('a')).toBe(5);
  });

  test('the overall token bucket spaces retries once the burst is spent, and refills with time', () => {
    let now = 0;
    const limiter = new RateLimiter({ baseDelayMs: 0, qps: 10, burst: 2, now: () => now });
    expect(limiter.when('a')).toBe(0);
    expect(limiter.when('b')).toBe(0);
    expect(limiter.when('c')).toBeCloseTo(100);
    expect(limiter.when('d')).toBeCloseTo(200);
    now = 1000;
    // 10 tokens refilled minus the 2 owed, capped at the burst of 2.
    expect(limiter.when('e')).toBe(0);
  });
});
