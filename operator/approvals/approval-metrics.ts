// Prometheus metrics of human approvals, in a registry the caller owns: how many statements wait
// for a decision now, how many were decided by outcome, and how long deciding took.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export const APPROVAL_METRIC_PREFIX = 'gatehouse_approvals_';

export interface ApprovalMetrics {
  readonly pending: Gauge;
  /** outcome: approved | denied | expired | withdrawn */
  readonly decided: Counter<'outcome'>;
  readonly timeToDecision: Histogram<'outcome'>;
  readonly notifications: Counter<'target' | 'outcome'>;
}

function existing<T>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}

/** Reuses metrics already in the registry, so two services in one process (tests) share them. */
export function createApprovalMetrics(registry: Registry): ApprovalMetrics {
  const registers = [registry];
  const name = (suffix: string) => `${APPROVAL_METRIC_PREFIX}${suffix}`;
  return {
    pending: existing(registry, name('pending')) ?? new Gauge({ name: name('pending'), help: 'Statements held for a human decision now.', registers }),
    decided: existing(registry, name('decided_total')) ?? new Counter({
      name: name('decided_total'), help: 'Approval requests ended, by outcome (approved, denied, expired, withdrawn).', labelNames: ['outcome'], registers,
    }),
    timeToDecision: existing(registry, name('decision_seconds')) ?? new Histogram({
      name: name('decision_seconds'),
      help: 'Time from a request to its decision, by outcome.',
      labelNames: ['outcome'],
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    }),
    notifications: existing(registry, name('notifications_total')) ?? new Counter({
      name: name('notifications_total'), help: 'Approval notifications sent, by target (webhook, slack) and outcome (sent, failed).', labelNames: ['target', 'outcome'], registers,
    }),
  };
}
