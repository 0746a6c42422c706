// Everything the operator process needs for approvals, built once from its parts: the broker
// (AccessRequests through the Kubernetes API), the notifier, the metrics, the RequestApproval
// handler for the discovery server (DiscoveryServerOptions.extraHandlers.RequestApproval), and the
// options of the accessrequests/status admission webhook. Nothing here starts a server.
import type { Registry } from 'prom-client';
import type { Logger } from '../../api/logging/logger.js';
import type { AccessRequestWebhookOptions } from '../admission/access-request-webhook.js';
import type { NodeAuthenticator } from '../control-plane/node-stream.js';
import type { KubeClient } from '../kube/kube-client.js';
import { AccessRequestBroker } from './access-request-broker.js';
import { kubeApprovalContext } from './approval-context.js';
import { createApprovalMetrics } from './approval-metrics.js';
import { ApprovalNotifier, type NotificationTargets } from './approval-notifier.js';
import { requestApprovalHandler, type RequestApprovalHandler } from './request-approval-handler.js';

export interface ClusterApprovalsOptions {
  readonly kube: KubeClient;
  readonly registry: Registry;
  readonly logger: Logger;
  /** The discovery stream's authenticator: RequestApproval proves the node the same way. */
  readonly authenticator: NodeAuthenticator;
  /** The operator's own Kubernetes user (system:serviceaccount:NS:SA): it initialises and expires requests. */
  readonly operatorUser: string;
  readonly notifications?: NotificationTargets;
  /** Longest hold the operator grants, whatever a rule says; default 1 h. */
  readonly maxTimeoutMs?: number;
}

export interface ClusterApprovals {
  /** Pass as DiscoveryServerOptions.extraHandlers.RequestApproval. */
  readonly handler: RequestApprovalHandler;
  /** Pass as WebhookServerOptions.accessRequests. */
  readonly webhook: AccessRequestWebhookOptions;
  /** Lets queued notifications finish (on shutdown). */
  flush(): Promise<void>;
}

export function createClusterApprovals(options: ClusterApprovalsOptions): ClusterApprovals {
  const metrics = createApprovalMetrics(options.registry);
  const logger = options.logger.child({ component: 'approvals' });
  const notifier = new ApprovalNotifier(options.notifications ?? {}, metrics, logger);
  const broker = new AccessRequestBroker({ kube: options.kube, metrics, notifier, logger });
  const handler = requestApprovalHandler({
    authenticator: options.authenticator,
    contexts: kubeApprovalContext(options.kube),
    broker,
    logger,
    ...(options.maxTimeoutMs !== undefined ? { maxTimeoutMs: options.maxTimeoutMs } : {}),
  });
  return {
    handler,
    webhook: { operatorUsers: [options.operatorUser] },
    flush: () => notifier.flush(),
  };
}
