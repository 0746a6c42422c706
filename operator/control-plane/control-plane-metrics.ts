// Prometheus metrics of the policy discovery service, in a registry the caller owns (no global
// state). Node ids appear as labels on purpose: one series per sidecar pod is what an operator
// needs to find the pod that refuses its policy, and the count is bounded by the sidecars the
// operator serves (thousands, not millions). Series of a node that is gone are removed by forgetNode.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { ALL_TYPE_URLS, typeName } from '../../api/proto/snapshot-resources.js';
import type { NodeStatusSource } from './snapshot-cache.js';

export const CONTROL_PLANE_METRIC_PREFIX = 'gatehouse_control_plane_';

export interface ControlPlaneMetrics {
  readonly registry: Registry;
  /** Streams that passed authentication and are open now. */
  readonly connectedSidecars: Gauge;
  readonly responses: Counter<'type'>;
  readonly acks: Counter<'type'>;
  readonly nacks: Counter<'node' | 'type'>;
  readonly staleRequests: Counter<'type'>;
  readonly rejectedStreams: Counter<'reason'>;
  /** From the cache's setSnapshot to the sidecar's ACK of that version, debounce included. */
  readonly pushLatency: Histogram<'type'>;
  /** Removes a node's labelled series once the node is gone, so they do not pile up. */
  forgetNode(nodeId: string): void;
}

export interface ControlPlaneMetricsOptions {
  readonly registry: Registry;
  /** Where the per-node acked-version gauge reads from at scrape time. */
  readonly status: NodeStatusSource;
}

/** An info-style gauge (value 1) built at scrape time from the cache, so it never holds a departed node. */
function ackedVersionGauge(registers: Registry[], status: NodeStatusSource): Gauge<'node' | 'type' | 'version'> {
  return new Gauge({
    name: `${CONTROL_PLANE_METRIC_PREFIX}node_acked_version_info`,
    help: 'The version each sidecar last acknowledged, per type (value 1; the version is a content hash).',
    labelNames: ['node', 'type', 'version'],
    registers,
    collect() {
      this.reset();
      for (const nodeId of status.nodeIds()) {
        for (const [typeUrl, typeStatus] of Object.entries(status.nodeStatus(nodeId)?.types ?? {})) {
          if (typeStatus.ackedVersion !== undefined) this.set({ node: nodeId, type: typeName(typeUrl), version: typeStatus.ackedVersion }, 1);
        }
      }
    },
  });
}

export function createControlPlaneMetrics(options: ControlPlaneMetricsOptions): ControlPlaneMetrics {
  const registers = [options.registry];
  ackedVersionGauge(registers, options.status);
  const nacks = new Counter({
    name: `${CONTROL_PLANE_METRIC_PREFIX}nacks_total`,
    help: 'Responses a sidecar rejected (NACK), by node and type; the node keeps its previous version.',
    labelNames: ['node', 'type'],
    registers,
  });
  return {
    registry: options.registry,
    connectedSidecars: new Gauge({
      name: `${CONTROL_PLANE_METRIC_PREFIX}connected_sidecars`,
      help: 'Authenticated discovery streams open now.',
      registers,
    }),
    responses: new Counter({
      name: `${CONTROL_PLANE_METRIC_PREFIX}responses_total`,
      help: 'Discovery responses sent, by type.',
      labelNames: ['type'],
      registers,
    }),
    acks: new Counter({
      name: `${CONTROL_PLANE_METRIC_PREFIX}acks_total`,
      help: 'Responses a sidecar applied and acknowledged (ACK), by type.',
      labelNames: ['type'],
      registers,
    }),
    nacks,
    staleRequests: new Counter({
      name: `${CONTROL_PLANE_METRIC_PREFIX}stale_requests_total`,
      help: 'Requests ignored because they answered a response that a newer one had replaced.',
      labelNames: ['type'],
      registers,
    }),
    rejectedStreams: new Counter({
      name: `${CONTROL_PLANE_METRIC_PREFIX}rejected_streams_total`,
      help: 'Streams refused before subscribing, by reason (unauthenticated, node-mismatch, no-node, auth-unavailable).',
      labelNames: ['reason'],
      registers,
    }),
    pushLatency: new Histogram({
      name: `${CONTROL_PLANE_METRIC_PREFIX}push_latency_seconds`,
      help: 'Time from a snapshot change in the cache to the sidecar acknowledging it, by type.',
      labelNames: ['type'],
      buckets: [0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    forgetNode(nodeId: string): void {
      for (const typeUrl of ALL_TYPE_URLS) nacks.remove({ node: nodeId, type: typeName(typeUrl) });
    },
  };
}
