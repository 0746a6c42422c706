// The sidecar's Prometheus metrics, in a registry of its own (no global state). Labels carry names
// of identities, resources, operations and rules only — never statement text or values.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CounterTallies } from './counter-tallies.js';

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
  /** When each upstream credential the sidecar holds stops working (unix seconds); absent for static ones. */
  readonly credentialExpiry: Gauge<'resource' | 'identity'>;
  /**
   * Cheap handles for the counters sessions bump per statement or per row (see counter-tallies.ts):
   * counted there, they show in `statements`, `blocked` and `maskedValues` when those are collected.
   */
  readonly tallies: {
    readonly statements: CounterTallies<'resource' | 'identity' | 'operation' | 'decision'>;
    readonly blocked: CounterTallies<'resource' | 'identity' | 'rule'>;
    readonly maskedValues: CounterTallies<'resource' | 'identity' | 'strategy'>;
  };
}

/** One message in this many has its added latency measured (the first of each session included). */
export const LATENCY_SAMPLE_EVERY = 16;

export const METRIC_PREFIX = 'gatehouse_sidecar_';

export function createSidecarMetrics(options: { defaultMetrics?: boolean } = {}): SidecarMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const registers = [registry];
  const tallies = {
    statements: new CounterTallies(['resource', 'identity', 'operation', 'decision'] as const),
    blocked: new CounterTallies(['resource', 'identity', 'rule'] as const),
    maskedValues: new CounterTallies(['resource', 'identity', 'strategy'] as const),
  };
  return {
    registry,
    tallies,
    statements: new Counter({
      name: `${METRIC_PREFIX}statements_total`,
      help: 'Statements seen, by resource, identity, operation and decision (allow, deny, require-approval).',
      labelNames: ['resource', 'identity', 'operation', 'decision'],
      registers,
      collect() {
        tallies.statements.flushInto(this);
      },
    }),
    blocked: new Counter({
      name: `${METRIC_PREFIX}blocked_statements_total`,
      help: 'Statements blocked, by the rule that blocked them (policy/rule, or no-match, unparsable, no-policy).',
      labelNames: ['resource', 'identity', 'rule'],
      registers,
      collect() {
        tallies.blocked.flushInto(this);
      },
    }),
    maskedValues: new Counter({
      name: `${METRIC_PREFIX}masked_values_total`,
      help: 'Values masked in results, by strategy.',
      labelNames: ['resource', 'identity', 'strategy'],
      registers,
      collect() {
        tallies.maskedValues.flushInto(this);
      },
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
      help: `Time the sidecar spends on a message before passing it on (inspection, decision, masking); sampled: one message in ${LATENCY_SAMPLE_EVERY}.`,
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
    credentialExpiry: new Gauge({
      name: `${METRIC_PREFIX}credential_expiry_timestamp_seconds`,
      help: 'Unix time at which each short-lived upstream credential the sidecar holds expires, by resource and identity (static credentials have none).',
      labelNames: ['resource', 'identity'],
      registers,
    }),
  };
}
