// Metrics the dashboard and alerts query that no registry has yet, each with why. The metric tests
// accept exactly these as missing (and list them on every run); any other unknown name fails. Remove
// an entry once the metric exists: a test fails while an entry names a metric that is now real.

export interface PendingMetric {
  readonly name: string;
  readonly why: string;
}

export const PENDING_METRICS: readonly PendingMetric[] = [
  // Issue 7 asks the dashboard for credentials' remaining lifetime; no process exports it yet. The
  // sidecar knows each snapshot credential's expiresAt, so it is the natural exporter.
  { name: 'gatehouse_sidecar_credential_expiry_timestamp_seconds', why: 'issue 7: unix time each held credential expires (gauge; labels resource, identity) — not built by anyone yet' },
];
