// Approvals in local mode (`gatehouse dev`): the in-process ApprovalService. Held statements become
// requests kept in memory, listed and decided over the admin port by `gatehouse requests|approve|
// deny`, with the cluster's rules where they make sense on one machine: N distinct approvers
// approve, one deny denies, the requesting identity may not decide, and the timeout expires it.
// There are no Kubernetes users here: who decides is the name the CLI sends (--as, or $USER).
import { randomBytes } from 'node:crypto';
import { GatehouseError } from '../../api/errors.js';
import type { ApprovalDecision, ApprovalRequest, ApprovalService } from '../../api/approvals/approval-service.js';
import type { Logger } from '../../api/logging/logger.js';
import type { PendingRequestRow, Verdict } from './access-request-client.js';
import type { ApprovalMetrics } from './approval-metrics.js';

interface LocalEntry {
  readonly user: string;
  readonly decision: Verdict;
  readonly reason?: string;
}

interface LocalRequest {
  readonly name: string;
  readonly request: ApprovalRequest;
  readonly requiredApprovals: number;
  readonly startedAt: number;
  readonly expiresAt: number;
  readonly entries: LocalEntry[];
  readonly resolve: (decision: ApprovalDecision) => void;
}

export interface LocalApprovalDeskOptions {
  readonly logger: Logger;
  readonly metrics?: ApprovalMetrics;
  readonly clock?: () => number;
}

/** What a decision did: the request is still pending (N-of-M) or has been decided. */
export interface LocalDecisionResult {
  readonly name: string;
  readonly phase: 'Pending' | 'Approved' | 'Denied';
  readonly approvals: string;
}

export class LocalApprovalDesk implements ApprovalService {
  private readonly requests = new Map<string, LocalRequest>();
  private readonly clock: () => number;

  constructor(private readonly options: LocalApprovalDeskOptions) {
    this.clock = options.clock ?? Date.now;
  }

  requestApproval(request: ApprovalRequest, options: { readonly signal: AbortSignal; readonly timeoutMs: number; readonly requiredApprovals?: number }): Promise<ApprovalDecision> {
    return new Promise((resolve, reject) => {
      const name = `${request.identity}-${randomBytes(3).toString('hex')}`;
      const startedAt = this.clock();
      const settle = (outcome: ApprovalDecision['outcome'] | 'withdrawn', decision?: ApprovalDecision) => {
        if (!this.requests.delete(name)) return;
        clearTimeout(timer);
        this.options.metrics?.pending.dec();
        this.options.metrics?.decided.inc({ outcome });
        this.options.metrics?.timeToDecision.observe({ outcome }, (this.clock() - startedAt) / 1000);
        this.options.logger.info({ request: name, outcome }, 'local approval request ended');
        if (decision) resolve(decision);
        else reject(new GatehouseError('GH_ERR_APPROVAL_WITHDRAWN', { name }));
      };
      const entry: LocalRequest = {
        name, request, requiredApprovals: options.requiredApprovals ?? 1, startedAt, expiresAt: startedAt + options.timeoutMs, entries: [],
        resolve: (decision) => settle(decision.outcome, decision),
      };
      const timer = setTimeout(() => entry.resolve({ outcome: 'expired', decidedBy: [], reason: `no decision within ${Math.round(options.timeoutMs / 1000)}s`, request: name }), options.timeoutMs);
      timer.unref();
      options.signal.addEventListener('abort', () => settle('withdrawn'), { once: true });
      this.requests.set(name, entry);
      this.options.metrics?.pending.inc();
      this.options.logger.info({ request: name, identity: request.identity, rule: `${request.policy}/${request.rule}` }, `statement held for approval: run \`gatehouse approve ${name}\` or \`gatehouse deny ${name}\``);
      if (options.signal.aborted) settle('withdrawn');
    });
  }

  pending(): PendingRequestRow[] {
    return [...this.requests.values()].map((entry) => ({
      namespace: '',
      name: entry.name,
      identity: entry.request.identity,
      resource: entry.request.resource,
      rule: `${entry.request.policy}/${entry.request.rule}`,
      statement: entry.request.statement,
      approvals: `${entry.entries.filter((one) => one.decision === 'approve').length}/${entry.requiredApprovals}`,
      expiresAt: new Date(entry.expiresAt).toISOString(),
    }));
  }

  /** Records one person's decision; throws GH_ERR_APPROVAL_NOT_FOUND or GH_ERR_APPROVAL_REFUSED. */
  decide(name: string, user: string, decision: Verdict, reason: string | undefined): LocalDecisionResult {
    const entry = this.requests.get(name);
    if (!entry) throw new GatehouseError('GH_ERR_APPROVAL_NOT_FOUND', { name, where: '' });
    const refuse = (detail: string) => new GatehouseError('GH_ERR_APPROVAL_REFUSED', { name, detail });
    if (user.trim() === '') throw refuse('say who decides (--as NAME)');
    if (user === entry.request.identity) throw refuse(`${user} made this request and may not decide it`);
    if (entry.entries.some((one) => one.user === user)) throw refuse(`${user} has already decided it; N-of-M needs distinct approvers`);
    entry.entries.push({ user, decision, ...(reason ? { reason } : {}) });
    const approvers = entry.entries.filter((one) => one.decision === 'approve').map((one) => one.user);
    const approvals = `${approvers.length}/${entry.requiredApprovals}`;
    const reasons = entry.entries.flatMap((one) => (one.reason ? [one.reason] : []));
    if (decision === 'deny') {
      entry.resolve({ outcome: 'denied', decidedBy: [user], ...(reason ? { reason } : {}), request: name });
      return { name, phase: 'Denied', approvals };
    }
    if (approvers.length < entry.requiredApprovals) return { name, phase: 'Pending', approvals };
    entry.resolve({ outcome: 'approved', decidedBy: approvers, ...(reasons.length ? { reason: reasons.join('; ') } : {}), request: name });
    return { name, phase: 'Approved', approvals };
  }
}
