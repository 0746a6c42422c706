// The work queue between informers and reconcilers, after client-go's workqueue: a key waits at
// most once however often it is added, is never handed to two workers at once, and a key added
// while it is being processed is processed again after done(). Failed keys come back with a delay
// that is the larger of a per-key exponential backoff and an overall token bucket, so one broken
// object backs off on its own while a burst of failures cannot hammer the API server.
import type { KubeMetrics } from './kube-metrics.js';

export interface RateLimiterOptions {
  /** First retry delay of a key; doubles per failure. Default 5 ms. */
  baseDelayMs?: number;
  /** Cap of the per-key delay. Default 1000 s. */
  maxDelayMs?: number;
  /** Sustained retries per second across all keys. Default 10. */
  qps?: number;
  /** Retries allowed at once before the bucket slows them. Default 100. */
  burst?: number;
  now?: () => number;
}

/** Per-key exponential backoff combined with an overall token bucket; the larger delay wins. */
export class RateLimiter {
  private readonly failures = new Map<string, number>();
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly qps: number;
  private readonly burst: number;
  private readonly now: () => number;
  private tokens: number;
  private refilledAt: number;

  constructor(options: RateLimiterOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? 5;
    this.maxDelayMs = options.maxDelayMs ?? 1_000_000;
    this.qps = options.qps ?? 10;
    this.burst = options.burst ?? 100;
    this.now = options.now ?? (() => performance.now());
    this.tokens = this.burst;
    this.refilledAt = this.now();
  }

  /** How long `key` waits before its next try; counts a failure. */
  when(key: string): number {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    const backoff = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(failures, 62));
    return Math.max(backoff, this.reserveToken());
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Takes a token, going into debt when none is left; the debt is the wait until it is repaid. */
  private reserveToken(): number {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.qps);
    this.refilledAt = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }
}

export interface WorkQueueOptions {
  /** Names the queue in metrics and logs. */
  name?: string;
  rateLimiter?: RateLimiter;
  metrics?: KubeMetrics;
}

export class WorkQueue {
  readonly name: string;
  private readonly order: string[] = [];
  /** Keys that need processing: queued, or re-added while in process. */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private readonly rateLimiter: RateLimiter;
  private readonly metrics: KubeMetrics | undefined;
  private shuttingDown = false;

  constructor(options: WorkQueueOptions = {}) {
    this.name = options.name ?? 'default';
    this.rateLimiter = options.rateLimiter ?? new RateLimiter();
    this.metrics = options.metrics;
  }

  /** Keys waiting to be handed out (neither delayed nor in process). */
  get length(): number {
    return this.order.length;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.metrics?.queueAdds.inc({ queue: this.name });
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.enqueue(key);
  }

  /** Adds `key` after `ms`; if it is already waiting for an earlier time, the earlier one stands. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = performance.now() + ms;
    const existing = this.delayed.get(key);
    if (existing !== undefined) {
      if (existing.at <= at) return;
      clearTimeout(existing.timer);
    }
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    // Delayed retries must not keep a process alive that is otherwise done.
    timer.unref();
    this.delayed.set(key, { at, timer });
  }

  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.metrics?.queueRetries.inc({ queue: this.name });
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /** Ends the backoff of `key` (after a success); a delayed add already scheduled still happens. */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.numRequeues(key);
  }

  /** The next key, marked in process until done(key); undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.order.shift();
    if (key !== undefined) {
      this.updateDepth();
      return Promise.resolve(this.take(key));
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (!this.dirty.has(key) || this.shuttingDown) return;
    this.enqueue(key);
  }

  /** A dirty key not in process: straight to a waiting get(), else to the back of the line. */
  private enqueue(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      this.handOut(key, waiter);
      return;
    }
    this.order.push(key);
    this.updateDepth();
  }

  /** Hands out nothing more: waiting and later get() calls yield undefined; keys in process finish. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.delayed.values()) clearTimeout(timer);
    this.delayed.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
    this.order.length = 0;
    this.updateDepth();
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  private take(key: string): string {
    this.dirty.delete(key);
    this.processing.add(key);
    return key;
  }

  private handOut(key: string, waiter: (key: string | undefined) => void): void {
    waiter(this.take(key));
  }

  private updateDepth(): void {
    this.metrics?.queueDepth.set({ queue: this.name }, this.order.length);
  }
}
