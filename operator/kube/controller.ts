// Runs a reconcile function over the keys of a work queue with a fixed number of workers, the way
// controller-runtime does: success forgets the key's backoff (and requeues it later if asked), an
// error is logged, counted and retried with rate limiting. Reconcile reads the world by key; it
// never sees the event that woke it.
import type { Logger } from '../../api/logging/logger.js';
import { isGatehouseError } from '../../api/errors.js';
import type { KubeObject } from './kube-client.js';
import type { KubeMetrics } from './kube-metrics.js';
import { WorkQueue } from './work-queue.js';

export type ReconcileResult = { requeueAfterMs?: number } | void;

export interface ControllerOptions {
  name: string;
  queue?: WorkQueue;
  reconcile: (key: string) => Promise<ReconcileResult>;
  /** Keys reconciled at once (never the same key twice at once). Default 1. */
  workers?: number;
  logger: Logger;
  metrics?: KubeMetrics;
}

/** 'namespace/name' for namespaced objects, 'name' for cluster-scoped ones. */
export function objectKey(obj: KubeObject): string {
  const { namespace, name } = obj.metadata;
  return namespace ? `${namespace}/${name}` : name;
}

/** The inverse of objectKey. */
export function parseObjectKey(key: string): { namespace?: string; name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly reconcile: (key: string) => Promise<ReconcileResult>;
  private readonly workers: number;
  private readonly logger: Logger;
  private readonly metrics: KubeMetrics | undefined;
  private running: Promise<void>[] = [];

  constructor(options: ControllerOptions) {
    this.name = options.name;
    this.queue = options.queue ?? new WorkQueue({ name: options.name, metrics: options.metrics });
    this.reconcile = options.reconcile;
    this.workers = Math.max(1, options.workers ?? 1);
    this.logger = options.logger.child({ controller: options.name });
    this.metrics = options.metrics;
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  start(): void {
    if (this.running.length > 0) return;
    for (let worker = 0; worker < this.workers; worker += 1) this.running.push(this.work());
  }

  /** Stops handing out keys and waits for the reconciles in progress to finish. */
  async stop(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.running);
    this.running = [];
  }

  private async work(): Promise<void> {
    for (let key = await this.queue.get(); key !== undefined; key = await this.queue.get()) {
      await this.process(key);
    }
  }

  private async process(key: string): Promise<void> {
    const started = performance.now();
    let result = 'success';
    this.metrics?.activeWorkers.inc({ controller: this.name });
    try {
      // Promise.resolve().then: a reconcile that throws synchronously is an error like any other.
      const outcome = await Promise.resolve().then(() => this.reconcile(key));
      this.queue.forget(key);
      const requeueAfterMs = outcome?.requeueAfterMs;
      if (requeueAfterMs !== undefined && requeueAfterMs >= 0) {
        result = 'requeue_after';
        this.queue.addAfter(key, requeueAfterMs);
      }
    } catch (error) {
      result = 'error';
      this.queue.addRateLimited(key);
      this.metrics?.reconcileErrors.inc({ controller: this.name });
      this.logger.error(
        { key, err: error, code: isGatehouseError(error) ? error.code : undefined, retries: this.queue.numRequeues(key) },
        'reconcile failed; retrying with backoff',
      );
    } finally {
      this.queue.done(key);
      this.metrics?.activeWorkers.dec({ controller: this.name });
      this.metrics?.reconcileDuration.observe({ controller: this.name, result }, (performance.now() - started) / 1000);
    }
  }
}
