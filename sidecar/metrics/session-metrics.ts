// The metrics one client session updates on its hot path, bound once to the session's resource and
// identity: statement and masked-value counts go to cached tallies (see counter-tallies.ts), and
// added latency is measured on a sample of messages, so that neither the clock nor prom-client's
// label handling is paid on every message.
import type { Tally } from './counter-tallies.js';
import { LATENCY_SAMPLE_EVERY, type SidecarMetrics } from './sidecar-metrics.js';

export interface SessionLabels {
  readonly resource: string;
  readonly identity: string;
}

/** Times one message in `every`, starting with the first. */
export class SampledLatency {
  private countdown = 0;

  constructor(
    private readonly observe: (seconds: number) => void,
    private readonly every: number = LATENCY_SAMPLE_EVERY,
  ) {}

  /** A start time when this message is to be timed; undefined otherwise. */
  start(): number | undefined {
    if (this.countdown > 0) {
      this.countdown -= 1;
      return undefined;
    }
    this.countdown = this.every - 1;
    return performance.now();
  }

  /** Records the time since `started`, if the message was sampled. */
  end(started: number | undefined): void {
    if (started !== undefined) this.observe((performance.now() - started) / 1000);
  }
}

export class SessionMetrics {
  readonly requestLatency: SampledLatency;
  readonly responseLatency: SampledLatency;
  /**
   * By operation, then decision: a session runs few distinct kinds of statement. Two lookups of
   * strings the classifier hands out again and again (their hashes cached) cost less than building
   * and hashing a joined key for every statement.
   */
  private readonly statementTallies = new Map<string, Map<string, Tally>>();
  /** The last statement's operation, decision and tally: a session repeats one kind of statement, and two string comparisons cost less than two lookups. */
  private lastOperation: string | undefined;
  private lastDecision: string | undefined;
  private lastTally: Tally | undefined;
  private readonly masked: Tally;

  constructor(
    private readonly metrics: SidecarMetrics,
    private readonly labels: SessionLabels,
  ) {
    const request = { resource: labels.resource, direction: 'request' };
    const response = { resource: labels.resource, direction: 'response' };
    this.requestLatency = new SampledLatency((seconds) => metrics.addedLatency.observe(request, seconds));
    this.responseLatency = new SampledLatency((seconds) => metrics.addedLatency.observe(response, seconds));
    this.masked = metrics.tallies.maskedValues.tally({ ...labels, strategy: 'any' });
  }

  statement(operation: string, decision: string): void {
    if (operation === this.lastOperation && decision === this.lastDecision) {
      this.lastTally!.inc();
      return;
    }
    let byDecision = this.statementTallies.get(operation);
    if (byDecision === undefined) {
      byDecision = new Map();
      this.statementTallies.set(operation, byDecision);
    }
    let tally = byDecision.get(decision);
    if (tally === undefined) {
      tally = this.metrics.tallies.statements.tally({ ...this.labels, operation, decision });
      byDecision.set(decision, tally);
    }
    this.lastOperation = operation;
    this.lastDecision = decision;
    this.lastTally = tally;
    tally.inc();
  }

  /** Rare (a denial), so looked up each time rather than cached per rule. */
  blocked(rule: string): void {
    this.metrics.tallies.blocked.tally({ ...this.labels, rule }).inc();
  }

  maskedValues(count: number): void {
    if (count > 0) this.masked.inc(count);
  }
}
