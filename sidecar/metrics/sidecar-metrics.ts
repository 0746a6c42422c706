// The sidecar's Prometheus metrics, in a registry of its own (no global state). Labels carry names
// of identities, resources, operations and rules only — never statement text or values.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface SidecarMetrics {
  readonly registry: Registry;
  readonly statements: Counter<'resource' | 'identity' | 'operation' | 'decision'>;
  readonly blocked: Counter<'resource' | 'identity' | 'rule'>;
  readonly maskedValues: Counter<'resource' | 'identity' | 'strategy'>;
  readonly activeSessions: Gauge<'resource' | 'identity'>;
  readonly sessions: Counter<'resource' | 'identity' | 'outcome'>;
  readonly addedLatency: Histogram<'resource' | 'direction'>;
  readonly upstreamErrors: Counter<'resource' | 'kind'>;
  readonly protocolErrors: Counter<'resource' | 'kind'>;
  readonly policyReloads: Counter<'outcome'>;
}

export const METRIC_PREFIX = 'gatehouse_sidecar_';

export function createSidecarMetrics(options: { defaultMetrics?: boolean } = {}): SidecarMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const registers = [registry];
  return {
    registry,
    statements: new Counter({
      name: `${METRIC_PREFIX}statements_total`,
      help: 'Statements seen, by resource, identity, operation and decision (allow, deny, require-approval).',
      labelNames: ['resource', 'identity', 'operation', 'decision'],
      registers,
    }),
    blocked: new Counter({
      name: `${METRIC_PREFIX}blocked_statements_total`,
      help: 'Statements blocked, by the rule that blocked them (policy/rule, or no-match, unparsable, no-policy).',
      labelNames: ['resource', 'identity', 'rule'],
      registers,
    }),
    maskedValues: new Counter({
      name: `${METRIC_PREFIX}masked_values_total`,
      help: 'Values masked in results, by strategy.',
      labelNames: ['resource', 'identity', 'strategy'],
      registers,
    }),
    activeSessions: new Gauge({
      name: `${METRIC_PREFIX}active_sessions`,
      help: 'Client sessions open now.',
      labelNames: ['resource', 'identity'],
      registers,
    }),
    sessions: new Counter({
      name: `${METRIC_PREFIX}sessions_total`,
      help: 'Client sessions ended, by outcome (closed, upstream-error, protocol-error, rejected).',
      labelNames: ['resource', 'identity', 'outcome'],
      registers,
    }),
    addedLatency: new Histogram({
      name: `${METRIC_PREFIX}added_latency_seconds`,
      help: 'Time the sidecar spends on a message before passing it on (inspection, decision, masking).',
      labelNames: ['resource', 'direction'],
      buckets: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
      registers,
    }),
    upstreamErrors: new Counter({
      name: `${METRIC_PREFIX}upstream_errors_total`,
      help: 'Failures talking to the protected resource (connect, tls, auth, io).',
      labelNames: ['resource', 'kind'],
      registers,
    }),
    protocolErrors: new Counter({
      name: `${METRIC_PREFIX}protocol_errors_total`,
      help: 'Malformed or oversized client messages rejected.',
      labelNames: ['resource', 'kind'],
      registers,
    }),
    policyReloads: new Counter({
      name: `${METRIC_PREFIX}policy_reloads_total`,
      help: 'Policy snapshots applied (ok) or rejected (error).',
      labelNames: ['outcome'],
      registers,
    }),
  };
}
