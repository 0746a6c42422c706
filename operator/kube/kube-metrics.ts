// Prometheus metrics of the operator's Kubernetes layer — API requests, informers (watch restarts,
// relists, cached objects), work queues, reconciles and leader election — in a registry the caller
// owns. Label values are resource, queue and controller names: a handful, fixed at startup.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export const KUBE_METRIC_PREFIX = 'gatehouse_operator_';

export interface KubeMetrics {
  readonly registry: Registry;
  readonly apiRequests: Counter<'verb' | 'resource'>;
  readonly apiErrors: Counter<'verb' | 'resource' | 'code'>;
  readonly apiLatency: Histogram<'verb' | 'resource'>;
  /** reason: closed (server ended it), gone (410), error, stalled (nothing for stallTimeoutMs), bad_event. */
  readonly watchRestarts: Counter<'resource' | 'reason'>;
  /** reason: initial, gone, error. */
  readonly relists: Counter<'resource' | 'reason'>;
  readonly informerObjects: Gauge<'resource'>;
  readonly informerSynced: Gauge<'resource'>;
  readonly handlerErrors: Counter<'resource' | 'event'>;
  readonly queueDepth: Gauge<'queue'>;
  readonly queueAdds: Counter<'queue'>;
  readonly queueRetries: Counter<'queue'>;
  readonly reconcileDuration: Histogram<'controller' | 'result'>;
  readonly reconcileErrors: Counter<'controller'>;
  readonly activeWorkers: Gauge<'controller'>;
  readonly leader: Gauge<'lease'>;
  readonly leaderTransitions: Counter<'lease'>;
}

export function createKubeMetrics(registry: Registry): KubeMetrics {
  const registers = [registry];
  const p = KUBE_METRIC_PREFIX;
  return {
    registry,
    apiRequests: new Counter({ name: `${p}kube_api_requests_total`, help: 'Requests to the Kubernetes API, by verb and resource.', labelNames: ['verb', 'resource'], registers }),
    apiErrors: new Counter({
      name: `${p}kube_api_errors_total`,
      help: 'Failed Kubernetes API requests, by verb, resource and GH_ERR code.',
      labelNames: ['verb', 'resource', 'code'],
      registers,
    }),
    apiLatency: new Histogram({
      name: `${p}kube_api_request_duration_seconds`,
      help: 'Kubernetes API request latency (watches excluded).',
      labelNames: ['verb', 'resource'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    watchRestarts: new Counter({
      name: `${p}kube_watch_restarts_total`,
      help: 'Watches an informer restarted, by resource and reason (closed, gone, error, stalled, bad_event).',
      labelNames: ['resource', 'reason'],
      registers,
    }),
    relists: new Counter({
      name: `${p}kube_relists_total`,
      help: 'Full lists an informer made, by resource and reason (initial, gone, error).',
      labelNames: ['resource', 'reason'],
      registers,
    }),
    informerObjects: new Gauge({ name: `${p}kube_informer_objects`, help: 'Objects in an informer cache.', labelNames: ['resource'], registers }),
    informerSynced: new Gauge({ name: `${p}kube_informer_synced`, help: '1 once an informer listed its resource, else 0.', labelNames: ['resource'], registers }),
    handlerErrors: new Counter({
      name: `${p}kube_informer_handler_errors_total`,
      help: 'Informer event handlers that threw, by resource and event.',
      labelNames: ['resource', 'event'],
      registers,
    }),
    queueDepth: new Gauge({ name: `${p}workqueue_depth`, help: 'Keys waiting in a work queue (not delayed, not in process).', labelNames: ['queue'], registers }),
    queueAdds: new Counter({ name: `${p}workqueue_adds_total`, help: 'Keys added to a work queue.', labelNames: ['queue'], registers }),
    queueRetries: new Counter({ name: `${p}workqueue_retries_total`, help: 'Keys re-added with rate limiting after a failure.', labelNames: ['queue'], registers }),
    reconcileDuration: new Histogram({
      name: `${p}reconcile_duration_seconds`,
      help: 'Reconcile duration by controller and result (success, requeue_after, error).',
      labelNames: ['controller', 'result'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    reconcileErrors: new Counter({ name: `${p}reconcile_errors_total`, help: 'Reconciles that failed, by controller.', labelNames: ['controller'], registers }),
    activeWorkers: new Gauge({ name: `${p}controller_active_workers`, help: 'Reconciles running now, by controller.', labelNames: ['controller'], registers }),
    leader: new Gauge({ name: `${p}leader`, help: '1 while this process holds the leader-election lease, else 0.', labelNames: ['lease'], registers }),
    leaderTransitions: new Counter({
      name: `${p}leader_transitions_total`,
      help: 'Times this process became or stopped being the leader, by lease.',
      labelNames: ['lease'],
      registers,
    }),
  };
}
