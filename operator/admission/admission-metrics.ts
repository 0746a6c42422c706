// Prometheus metrics of the admission webhooks, in a registry the caller owns. Labels are bounded:
// two webhooks, four operations, a handful of outcomes.
import { Counter, Histogram, type Registry } from 'prom-client';

export const ADMISSION_METRIC_PREFIX = 'gatehouse_admission_';

export type AdmissionWebhook = 'mutate-pods' | 'validate-gatehouse' | 'accessrequest-status';

/**
 * allowed: admitted unchanged; patched: admitted with a patch; denied: refused on its merits;
 * error_denied / error_allowed: could not decide, failed closed / open; bad_request: not a valid review.
 */
export type AdmissionOutcome = 'allowed' | 'patched' | 'denied' | 'error_denied' | 'error_allowed' | 'bad_request';

export interface AdmissionMetrics {
  readonly requests: Counter<'webhook' | 'operation' | 'outcome'>;
  readonly duration: Histogram<'webhook'>;
  readonly certificateReloads: Counter;
}

function existing<T>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}

/** Reuses metrics already in the registry, so a restarted server in one process does not collide. */
export function createAdmissionMetrics(registry: Registry): AdmissionMetrics {
  const registers = [registry];
  const requestsName = `${ADMISSION_METRIC_PREFIX}requests_total`;
  const durationName = `${ADMISSION_METRIC_PREFIX}request_duration_seconds`;
  const reloadsName = `${ADMISSION_METRIC_PREFIX}certificate_reloads_total`;
  return {
    requests: existing(registry, requestsName) ?? new Counter({
      name: requestsName,
      help: 'Admission requests answered, by webhook, operation and outcome.',
      labelNames: ['webhook', 'operation', 'outcome'],
      registers,
    }),
    duration: existing(registry, durationName) ?? new Histogram({
      name: durationName,
      help: 'Time from the request body being read to the answer, by webhook.',
      labelNames: ['webhook'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    certificateReloads: existing(registry, reloadsName) ?? new Counter({
      name: reloadsName,
      help: 'Times the webhook server swapped in a new serving certificate without restarting.',
      registers,
    }),
  };
}
