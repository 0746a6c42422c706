// Fault injection for tests of clients' resilience: drop every open watch, answer the next N matching
// requests with 429/409/500, forget the watch window (so old resourceVersions get 410), delay answers.
import type { WatchHub } from './watch-hub.js';

export interface FaultRequest {
  readonly method: string;
  /** Path without the query string, e.g. /apis/gatehouse.dev/v1alpha1/namespaces/a/accesspolicies. */
  readonly path: string;
  readonly query: URLSearchParams;
}

export type FaultStatus = 429 | 409 | 500;

export interface FaultInjector {
  /** Ends every open watch stream now, as an API server restart does. */
  dropWatches(): void;
  /** The next `count` requests for which `matches` is true answer `status` (429 carries Retry-After). */
  failNext(count: number, status: FaultStatus, matches?: (request: FaultRequest) => boolean, retryAfterSeconds?: number): void;
  /** Forgets the retained watch events: a watch from any older resourceVersion now gets 410 Gone. */
  compactWatchWindow(): void;
  /** Delays every response (matching `matches`, or all) by `ms` until called again with 0. */
  delayResponses(ms: number, matches?: (request: FaultRequest) => boolean): void;
  /** Removes pending failures and delays. */
  reset(): void;
}

interface PendingFailure {
  remaining: number;
  readonly status: FaultStatus;
  readonly matches: (request: FaultRequest) => boolean;
  readonly retryAfterSeconds: number;
}

export interface InjectedFailure {
  readonly status: FaultStatus;
  readonly retryAfterSeconds: number;
}

const always = (): boolean => true;

export class Faults implements FaultInjector {
  private failures: PendingFailure[] = [];
  private delay: { ms: number; matches: (request: FaultRequest) => boolean } = { ms: 0, matches: always };

  constructor(private readonly hub: WatchHub, private readonly currentResourceVersion: () => number) {}

  dropWatches(): void {
    this.hub.dropAll();
  }

  failNext(count: number, status: FaultStatus, matches: (request: FaultRequest) => boolean = always, retryAfterSeconds = 1): void {
    this.failures.push({ remaining: count, status, matches, retryAfterSeconds });
  }

  compactWatchWindow(): void {
    this.hub.compact(this.currentResourceVersion());
  }

  delayResponses(ms: number, matches: (request: FaultRequest) => boolean = always): void {
    this.delay = { ms, matches };
  }

  reset(): void {
    this.failures = [];
    this.delay = { ms: 0, matches: always };
  }

  /** The router asks this for every request; a matching failure is consumed. */
  takeFailure(request: FaultRequest): InjectedFailure | undefined {
    const failure = this.failures.find((candidate) => candidate.remaining > 0 && candidate.matches(request));
    if (failure === undefined) return undefined;
    failure.remaining -= 1;
    this.failures = this.failures.filter((candidate) => candidate.remaining > 0);
    return { status: failure.status, retryAfterSeconds: failure.retryAfterSeconds };
  }

  delayFor(request: FaultRequest): number {
    return this.delay.ms > 0 && this.delay.matches(request) ? this.delay.ms : 0;
  }
}
