// Leader election on a coordination.k8s.io/v1 Lease with client-go's semantics, so only one operator
// replica reconciles at a time. A candidate takes the lease when it is free, released, or unchanged
// for leaseDurationSeconds as measured on the candidate's own clock (clock skew between replicas
// does not matter); the leader renews every retryPeriod and steps down if it cannot renew within
// renewDeadline, which is shorter than the lease so it stops before anyone else may start. Every
// write carries the resourceVersion read, so two candidates never both win.
import { setTimeout as sleep } from 'node:timers/promises';
import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import { RESOURCE_TYPES, type KubeClient, type KubeObject } from './kube-client.js';
import type { KubeMetrics } from './kube-metrics.js';

/** Lease.spec as client-go writes it; times are metav1.MicroTime (RFC 3339 with microseconds). */
export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

export interface LeaderElectorOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  /** Unique per replica, usually the pod name. */
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  logger: Logger;
  /** Called on becoming leader; the signal aborts when leadership ends. */
  onStartedLeading: (signal: AbortSignal) => void;
  /** Called when leadership ends: lost, or given up by stop(). */
  onStoppedLeading: () => void;
  metrics?: KubeMetrics;
}

/** client-go's JitterFactor: candidates retry after retryPeriod plus up to 1.2 times it at random. */
const JITTER_FACTOR = 1.2;

type Attempt = 'acquired' | 'held-by-other' | 'failed';

export function microTime(date: Date): string {
  return `${date.toISOString().slice(0, 23)}000Z`;
}

export class LeaderElector {
  private readonly options: LeaderElectorOptions;
  private readonly logger: Logger;
  private readonly leaseDurationSeconds: number;
  private readonly stopSignal = new AbortController();
  private observed: { record: string; atMs: number } | undefined;
  private leading = false;
  private term: AbortController | undefined;
  private loop: Promise<void> | undefined;

  constructor(options: LeaderElectorOptions) {
    if (!options.identity) throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: 'leader election needs a non-empty identity' });
    if (!(options.leaseDurationMs > options.renewDeadlineMs)) {
      throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: 'leaseDurationMs must be greater than renewDeadlineMs' });
    }
    if (!(options.renewDeadlineMs > JITTER_FACTOR * options.retryPeriodMs) || options.retryPeriodMs <= 0) {
      throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `renewDeadlineMs must be greater than ${JITTER_FACTOR} x retryPeriodMs, which must be positive` });
    }
    this.options = options;
    this.leaseDurationSeconds = Math.ceil(options.leaseDurationMs / 1000);
    this.logger = options.logger.child({ lease: `${options.namespace}/${options.name}`, identity: options.identity });
  }

  start(): void {
    if (this.loop !== undefined || this.stopSignal.signal.aborted) return;
    this.loop = this.run();
  }

  /** Stops contending; a leader steps down and releases the lease so another replica takes over at once. */
  async stop(): Promise<void> {
    this.stopSignal.abort();
    await this.loop;
    if (this.leading) this.stopLeading('stopped');
    // Also when not leading: an attempt in flight at stop() may just have taken the lease.
    await this.release();
  }

  isLeader(): boolean {
    return this.leading;
  }

  private get stopped(): boolean {
    return this.stopSignal.signal.aborted;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (!(await this.acquire())) return;
      this.startLeading();
      await this.renewUntilLost();
      if (this.stopped) return;
      this.stopLeading('lost');
    }
  }

  /** Tries until the lease is ours (true) or the elector stops (false). */
  private async acquire(): Promise<boolean> {
    while (!this.stopped) {
      if ((await this.tryAcquireOrRenew()) === 'acquired') return !this.stopped;
      await this.pause(this.options.retryPeriodMs * (1 + Math.random() * JITTER_FACTOR));
    }
    return false;
  }

  /** Renews every retryPeriod; returns when stopped, or when no renewal succeeded within renewDeadline. */
  private async renewUntilLost(): Promise<void> {
    const { renewDeadlineMs, retryPeriodMs } = this.options;
    let renewedAt = performance.now();
    await this.pause(retryPeriodMs);
    while (!this.stopped) {
      const remaining = renewedAt + renewDeadlineMs - performance.now();
      const attempt = remaining > 0 ? await this.withDeadline(this.tryAcquireOrRenew(), remaining) : 'failed';
      if (this.stopped) return;
      if (attempt === 'acquired') {
        renewedAt = performance.now();
        await this.pause(retryPeriodMs);
        continue;
      }
      if (attempt === 'held-by-other' || performance.now() - renewedAt >= renewDeadlineMs) {
        this.logger.warn({ attempt }, 'could not renew the leader lease in time; stepping down');
        return;
      }
      await this.pause(Math.min(retryPeriodMs, renewedAt + renewDeadlineMs - performance.now()));
    }
  }

  private async tryAcquireOrRenew(): Promise<Attempt> {
    const { client, namespace, name, identity } = this.options;
    const now = new Date();
    try {
      const lease = await client.get<Lease>(RESOURCE_TYPES.leases, namespace, name);
      if (lease === undefined) {
        const created = await client.create<Lease>(RESOURCE_TYPES.leases, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace },
          spec: this.record(now, undefined),
        });
        this.observe(created.spec);
        return 'acquired';
      }
      const spec = lease.spec ?? {};
      this.observe(spec);
      const holder = spec.holderIdentity ?? '';
      if (holder !== '' && holder !== identity && !this.expired(spec)) return 'held-by-other';
      const replaced = await client.replace<Lease>(RESOURCE_TYPES.leases, { ...lease, spec: this.record(now, spec) });
      this.observe(replaced.spec);
      return 'acquired';
    } catch (error) {
      // A conflict means another candidate wrote first; anything else is an API problem. Both: not ours this round.
      this.logger.debug({ err: error, code: isGatehouseError(error) ? error.code : undefined }, 'lease acquire/renew attempt failed');
      return 'failed';
    }
  }

  /** Our record: acquireTime and transitions are kept when we already hold the lease, renewed otherwise. */
  private record(now: Date, previous: LeaseSpec | undefined): LeaseSpec {
    const ours = previous?.holderIdentity === this.options.identity;
    return {
      holderIdentity: this.options.identity,
      leaseDurationSeconds: this.leaseDurationSeconds,
      acquireTime: ours && previous?.acquireTime ? previous.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: previous === undefined ? 0 : (previous.leaseTransitions ?? 0) + (ours ? 0 : 1),
    };
  }

  /** Remembers when the record last changed, on our own clock: expiry is measured from then. */
  private observe(spec: LeaseSpec | undefined): void {
    const record = JSON.stringify(spec ?? {});
    if (this.observed?.record !== record) this.observed = { record, atMs: performance.now() };
  }

  private expired(spec: LeaseSpec): boolean {
    const durationMs = (spec.leaseDurationSeconds ?? this.leaseDurationSeconds) * 1000;
    return this.observed === undefined || this.observed.atMs + durationMs <= performance.now();
  }

  private startLeading(): void {
    this.leading = true;
    this.term = new AbortController();
    this.options.metrics?.leader.set({ lease: this.options.name }, 1);
    this.options.metrics?.leaderTransitions.inc({ lease: this.options.name });
    this.logger.info('became leader');
    this.callback(() => this.options.onStartedLeading(this.term!.signal));
  }

  private stopLeading(why: 'lost' | 'stopped'): void {
    this.leading = false;
    this.term?.abort();
    this.term = undefined;
    this.options.metrics?.leader.set({ lease: this.options.name }, 0);
    this.options.metrics?.leaderTransitions.inc({ lease: this.options.name });
    this.logger.info({ why }, 'stopped leading');
    this.callback(() => this.options.onStoppedLeading());
  }

  /** Gives the lease up (holder '' and a 1 s duration) so the next candidate need not wait for it to expire. */
  private async release(): Promise<void> {
    const { client, namespace, name, identity } = this.options;
    try {
      const lease = await client.get<Lease>(RESOURCE_TYPES.leases, namespace, name);
      if (lease?.spec?.holderIdentity !== identity) return;
      const now = microTime(new Date());
      const spec: LeaseSpec = { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: lease.spec.leaseTransitions ?? 0 };
      await client.replace<Lease>(RESOURCE_TYPES.leases, { ...lease, spec });
      this.logger.info('released the leader lease');
    } catch (error) {
      this.logger.warn({ err: error }, 'could not release the leader lease; it expires on its own');
    }
  }

  private callback(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.logger.error({ err: error }, 'leader election callback threw');
    }
  }

  private pause(ms: number): Promise<void> {
    return sleep(Math.max(0, ms), undefined, { signal: this.stopSignal.signal }).catch(() => undefined);
  }

  private withDeadline(attempt: Promise<Attempt>, ms: number): Promise<Attempt> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve('failed'), ms);
      void attempt.then((result) => {
        clearTimeout(timer);
        resolve(result);
      });
    });
  }
}
