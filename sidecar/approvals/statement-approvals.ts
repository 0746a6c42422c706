// The sidecar's side of approvals: asks the ApprovalService for a decision on a held statement,
// gives up at the rule's timeout (fail closed, even when the control plane never answers), and
// remembers approvals that open a grant window, so the same identity may run the same statement
// fingerprint again without asking until the window closes (once only, for single-use grants).
import { parseDuration } from '../../api/duration.js';
import type { ApprovalDecision, ApprovalRequest, ApprovalService } from '../../api/approvals/approval-service.js';
import type { ApprovalSettingsT } from '../../api/policy/decision.js';

/** The rule's approval.timeout when it sets none. */
export const DEFAULT_APPROVAL_TIMEOUT_MS = 5 * 60_000;
/**
 * The service expires a request at the timeout itself (the operator marks the AccessRequest
 * Expired); the sidecar's own deadline comes this much later, as the backstop for a service that
 * never answers, so that it does not withdraw a request the service is about to expire.
 */
export const DEFAULT_EXPIRY_GRACE_MS = 2_000;

interface Grant {
  readonly until: number;
  readonly singleUse: boolean;
  readonly decidedBy: readonly string[];
}

export interface StatementApprovalsOptions {
  readonly service: ApprovalService;
  /** namespace/pod of this sidecar (its node id), named in every request. */
  readonly pod: string;
  /** Epoch ms; Date.now by default. */
  readonly clock?: () => number;
  /** See DEFAULT_EXPIRY_GRACE_MS. */
  readonly expiryGraceMs?: number;
}

/** Thrown (as the rejection) when the request was withdrawn through the abort signal. */
export class ApprovalWithdrawn extends Error {
  constructor() {
    super('approval request withdrawn');
    this.name = 'ApprovalWithdrawn';
  }
}

type GrantScope = Pick<ApprovalRequest, 'identity' | 'resource' | 'policy' | 'rule' | 'fingerprint'>;

function grantKey(request: GrantScope): string {
  return [request.identity, request.resource, request.policy, request.rule, request.fingerprint].join('\u0000');
}

export class StatementApprovals {
  private readonly grants = new Map<string, Grant>();
  private readonly clock: () => number;

  constructor(private readonly options: StatementApprovalsOptions) {
    this.clock = options.clock ?? Date.now;
  }

  get pod(): string {
    return this.options.pod;
  }

  /**
   * Whether an earlier approval still covers this statement under the rule as it is now (a rule
   * that lost its grantWindow honours no grant); a single-use grant is spent by the call that finds
   * it. Who approved it is returned for the log.
   */
  takeGrant(request: GrantScope, settings: ApprovalSettingsT | undefined): readonly string[] | undefined {
    const key = grantKey(request);
    const grant = this.grants.get(key);
    if (!grant) return undefined;
    if (grant.until <= this.clock() || !settings?.grantWindow) {
      this.grants.delete(key);
      return undefined;
    }
    if (grant.singleUse) this.grants.delete(key);
    return grant.decidedBy;
  }

  /**
   * Asks for a decision. Resolves with `expired` shortly after the rule's timeout whatever the
   * service does; rejects with ApprovalWithdrawn when `signal` aborts first.
   */
  async decide(request: ApprovalRequest, settings: ApprovalSettingsT | undefined, signal: AbortSignal): Promise<ApprovalDecision> {
    const timeoutMs = settings?.timeout ? parseDuration(settings.timeout) : DEFAULT_APPROVAL_TIMEOUT_MS;
    const ask = new AbortController();
    const withdraw = () => ask.abort();
    signal.addEventListener('abort', withdraw, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<ApprovalDecision>((resolve) => {
      timer = setTimeout(() => {
        ask.abort();
        resolve({ outcome: 'expired', decidedBy: [], reason: `no decision within ${settings?.timeout ?? '5m'}` });
      }, timeoutMs + (this.options.expiryGraceMs ?? DEFAULT_EXPIRY_GRACE_MS));
    });
    const withdrawn = new Promise<never>((_, reject) => {
      if (signal.aborted) reject(new ApprovalWithdrawn());
      signal.addEventListener('abort', () => reject(new ApprovalWithdrawn()), { once: true });
    });
    withdrawn.catch(() => undefined);
    try {
      const asked = this.options.service.requestApproval(request, { signal: ask.signal, timeoutMs, requiredApprovals: settings?.minApprovals ?? 1 });
      // A service that cannot be asked (control plane unreachable) is a denial now, not a wait for nothing.
      const answered = asked.catch((error: unknown): ApprovalDecision => ({
        outcome: 'denied',
        decidedBy: [],
        reason: `the approval could not be requested (${error instanceof Error ? error.message : String(error)})`,
      }));
      const decision = await Promise.race([answered, expired, withdrawn]);
      if (decision.outcome === 'approved') this.remember(request, settings, decision);
      return decision;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', withdraw);
    }
  }

  private remember(request: ApprovalRequest, settings: ApprovalSettingsT | undefined, decision: ApprovalDecision): void {
    if (!settings?.grantWindow) return;
    this.grants.set(grantKey(request), {
      until: this.clock() + parseDuration(settings.grantWindow),
      singleUse: settings.singleUse === true,
      decidedBy: decision.decidedBy,
    });
  }
}
