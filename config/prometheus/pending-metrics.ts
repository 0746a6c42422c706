// Metrics the dashboard and alerts query that no registry has yet, each with why. The metric tests
// accept exactly these as missing (and list them on every run); any other unknown name fails. Remove
// an entry once the metric exists: a test fails while an entry names a metric that is now real.

export interface PendingMetric {
  readonly name: string;
  readonly why: string;
}

export const PENDING_METRICS: readonly PendingMetric[] = [];
