// Turns one held statement into an AccessRequest and waits for people to decide it: creates the
// object (generateName, in the namespace of the identity and resource, labelled for lookups),
// initialises its status Pending with the expiry, watches it until the admission webhook has
// derived a decision from status.approvals, and expires it at the timeout or when the sidecar
// withdraws it. Notifications and metrics are sent on the side and never delay the answer.
import { GatehouseError } from '../../api/errors.js';
import type { ApprovalDecision, ApprovalRequest } from '../../api/approvals/approval-service.js';
import { API_GROUP, GROUP_VERSION, type AccessRequest } from '../../api/kinds/kinds.js';
import type { Logger } from '../../api/logging/logger.js';
import type { ApprovalSettingsT } from '../../api/policy/decision.js';
import { RESOURCE_TYPES, type KubeClient, type KubeObject, type WatchEvent } from '../kube/kube-client.js';
import type { ApprovalMetrics } from './approval-metrics.js';
import type { ApprovalNotification, ApprovalNotifier } from './approval-notifier.js';

export const LABELS = {
  identity: `${API_GROUP}/identity`,
  resource: `${API_GROUP}/resource`,
  policy: `${API_GROUP}/policy`,
} as const;

/** What the operator itself knows about a request, not what the sidecar claims (see approval-context.ts). */
export interface ApprovalContext {
  readonly namespace: string;
  /** The requesting identity's Kubernetes user (system:serviceaccount:NS:SA): it may never decide. */
  readonly requester: string;
  /** The rule's approval settings as the operator reads the AccessPolicy. */
  readonly approval: ApprovalSettingsT;
}

export interface BrokerOptions {
  readonly kube: KubeClient;
  readonly metrics: ApprovalMetrics;
  readonly notifier: ApprovalNotifier;
  readonly logger: Logger;
  readonly clock?: () => number;
}

type Phase = NonNullable<AccessRequest['status']>['phase'];
/** An AccessRequest as the Kubernetes client reads and writes it. */
export type AccessRequestObject = AccessRequest & KubeObject;
const ACCESS_REQUESTS = RESOURCE_TYPES.accessRequests;
const MAX_STATEMENT = 65536;
/** A watch that ends (server timeout, network) is resumed after this pause. */
const REWATCH_DELAY_MS = 200;

function outcomeOf(phase: Phase): ApprovalDecision['outcome'] | undefined {
  if (phase === 'Approved') return 'approved';
  if (phase === 'Denied') return 'denied';
  if (phase === 'Expired') return 'expired';
  return undefined;
}

export class AccessRequestBroker {
  private readonly clock: () => number;

  constructor(private readonly options: BrokerOptions) {
    this.clock = options.clock ?? Date.now;
  }

  /** Resolves with the decision; rejects when `signal` aborts (the request is then expired as withdrawn). */
  async requestApproval(request: ApprovalRequest, context: ApprovalContext, timeoutMs: number, signal: AbortSignal): Promise<ApprovalDecision> {
    const started = this.clock();
    const expiresAt = new Date(started + timeoutMs).toISOString();
    const created = await this.create(request, context);
    const name = created.metadata.name;
    const log = this.options.logger.child({ accessRequest: `${context.namespace}/${name}`, identity: request.identity, resource: request.resource });
    const pending = await this.options.kube.patchStatus<AccessRequestObject>(ACCESS_REQUESTS, context.namespace, name, { phase: 'Pending', expiresAt, approvals: [] });
    this.options.metrics.pending.inc();
    log.info({ rule: `${request.policy}/${request.rule}`, expiresAt }, 'approval requested');
    const notification = this.notification(request, context, pending, expiresAt);
    this.options.notifier.notify(notification);
    let outcome: ApprovalDecision['outcome'] | 'withdrawn' = 'expired';
    try {
      const decided = await this.awaitDecision(pending, timeoutMs, signal);
      outcome = outcomeOf(decided.status!.phase)!;
      const decision = this.decisionOf(decided);
      log.info({ phase: decided.status!.phase, decidedBy: decision.decidedBy }, 'approval decided');
      this.options.notifier.notify({ ...notification, type: 'gatehouse.approval.decided', phase: decided.status!.phase, decidedBy: decision.decidedBy });
      return decision;
    } catch (error) {
      if (signal.aborted) outcome = 'withdrawn';
      throw error;
    } finally {
      this.options.metrics.pending.dec();
      this.options.metrics.decided.inc({ outcome });
      this.options.metrics.timeToDecision.observe({ outcome }, (this.clock() - started) / 1000);
    }
  }

  private create(request: ApprovalRequest, context: ApprovalContext): Promise<AccessRequest> {
    const spec: AccessRequest['spec'] = {
      identity: request.identity,
      resource: request.resource,
      policy: request.policy,
      rule: request.rule,
      pod: request.pod,
      statement: request.statement.slice(0, MAX_STATEMENT),
      fingerprint: request.fingerprint,
      reason: request.reason,
      requester: context.requester,
      approvers: context.approval.approvers,
      requiredApprovals: context.approval.minApprovals ?? 1,
    };
    const labels = { [LABELS.identity]: request.identity, [LABELS.resource]: request.resource, [LABELS.policy]: request.policy };
    // generateName (an empty name means unset): one object per held statement, named after who asked.
    const metadata = { name: '', generateName: `${request.identity}-`, namespace: context.namespace, labels };
    return this.options.kube.create<AccessRequestObject>(ACCESS_REQUESTS, { apiVersion: GROUP_VERSION, kind: 'AccessRequest', metadata, spec });
  }

  /** Watches until the phase leaves Pending; expires it at the deadline or on withdrawal. */
  private awaitDecision(start: AccessRequest, timeoutMs: number, signal: AbortSignal): Promise<AccessRequest> {
    const { namespace, name } = start.metadata as { namespace: string; name: string };
    return new Promise<AccessRequest>((resolve, reject) => {
      let finished = false;
      let watch: { abort(): void } | undefined;
      let rewatch: NodeJS.Timeout | undefined;
      const finish = (result: AccessRequest | Error) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        clearTimeout(rewatch);
        signal.removeEventListener('abort', onAbort);
        watch?.abort();
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      const settle = (object: AccessRequest | undefined) => {
        if (object?.status && object.status.phase !== 'Pending') finish(object);
      };
      const expire = (reason: string) => this.expire(namespace, name, reason).then(settle, (error: unknown) => finish(error as Error));
      const timer = setTimeout(() => void expire(`no decision within ${Math.round(timeoutMs / 1000)}s`), timeoutMs);
      const onAbort = () => {
        void this.expire(namespace, name, 'withdrawn: the client cancelled the statement or disconnected').catch(() => undefined);
        finish(new GatehouseError('GH_ERR_APPROVAL_WITHDRAWN', { name: `${namespace}/${name}` }));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort();
      const startWatch = (resourceVersion: string) => {
        if (finished) return;
        void this.options.kube.watch(
          ACCESS_REQUESTS,
          { namespace, fieldSelector: `metadata.name=${name}`, resourceVersion, allowBookmarks: false },
          (event: WatchEvent) => {
            if (event.type === 'ADDED' || event.type === 'MODIFIED') settle(event.object as unknown as AccessRequest);
            if (event.type === 'DELETED') finish(new GatehouseError('GH_ERR_APPROVAL_WITHDRAWN', { name: `${namespace}/${name}` }));
          },
          () => {
            // The stream ended (server timeout, 410, network): read the object again and watch from there.
            if (finished) return;
            rewatch = setTimeout(() => {
              this.options.kube.get<AccessRequestObject>(ACCESS_REQUESTS, namespace, name).then((current) => {
                if (!current) return finish(new GatehouseError('GH_ERR_APPROVAL_WITHDRAWN', { name: `${namespace}/${name}` }));
                settle(current);
                startWatch(current.metadata.resourceVersion ?? '');
              }, () => startWatch(''));
            }, REWATCH_DELAY_MS);
          },
        ).then((handle) => {
          if (finished) handle.abort();
          else watch = handle;
        });
      };
      startWatch(start.metadata.resourceVersion ?? '');
    });
  }

  /** Sets Expired; when a decision landed first the webhook refuses, and the decided object is returned instead. */
  private async expire(namespace: string, name: string, reason: string): Promise<AccessRequest | undefined> {
    try {
      return await this.options.kube.patchStatus<AccessRequestObject>(ACCESS_REQUESTS, namespace, name, { phase: 'Expired', reason });
    } catch (error) {
      const current = await this.options.kube.get<AccessRequestObject>(ACCESS_REQUESTS, namespace, name);
      if (current?.status && current.status.phase !== 'Pending') return current;
      throw error;
    }
  }

  private decisionOf(decided: AccessRequest): ApprovalDecision {
    const status = decided.status!;
    const decidedBy = (status.approvals ?? [])
      .filter((entry) => (status.phase === 'Denied' ? entry.decision === 'deny' : entry.decision === 'approve'))
      .flatMap((entry) => (entry.user ? [entry.user] : []));
    return {
      outcome: outcomeOf(status.phase)!,
      decidedBy: status.phase === 'Expired' ? [] : decidedBy,
      ...(status.reason ? { reason: status.reason } : {}),
      request: `AccessRequest ${decided.metadata.namespace}/${decided.metadata.name}`,
    };
  }

  private notification(request: ApprovalRequest, context: ApprovalContext, created: AccessRequest, expiresAt: string): ApprovalNotification {
    const name = created.metadata.name;
    return {
      type: 'gatehouse.approval.requested',
      accessRequest: { namespace: context.namespace, name },
      identity: request.identity,
      resource: request.resource,
      policy: request.policy,
      rule: request.rule,
      pod: request.pod,
      statement: request.statement,
      fingerprint: request.fingerprint,
      reason: request.reason,
      phase: 'Pending',
      decidedBy: [],
      requiredApprovals: context.approval.minApprovals ?? 1,
      expiresAt,
      approveCommand: `kubectl gatehouse approve ${name} -n ${context.namespace} --reason "..."`,
    };
  }
}
