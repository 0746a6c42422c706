// The admission rules of an AccessRequest's status, where humans decide: a decision is one entry
// appended to status.approvals, and this module — not the client — writes who made it (from the
// admission request's userInfo), refuses self-approval by the requesting identity and deciders
// outside the rule's approver users and groups, counts distinct approvers for N-of-M, and derives
// the phase. Everything else in the status is the operator's: initialising it Pending, and Expired.
import type { AccessRequest } from '../../api/kinds/kinds.js';

type Status = NonNullable<AccessRequest['status']>;
type ApprovalEntry = NonNullable<Status['approvals']>[number];

export interface DeciderInfo {
  readonly username: string;
  readonly groups: readonly string[];
}

export interface StatusChange {
  readonly user: DeciderInfo;
  readonly oldObject: AccessRequest | undefined;
  readonly object: AccessRequest;
  /** Users allowed to initialise the status and expire a request (the operator's ServiceAccount). */
  readonly operatorUsers: readonly string[];
  readonly now: Date;
}

/** Admitted with the status to store (the caller patches it in), or refused with a reason. */
export type StatusVerdict = { readonly allowed: true; readonly status: Status } | { readonly allowed: false; readonly message: string };

const refuse = (message: string): StatusVerdict => ({ allowed: false, message });

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** The rule's approvers admit this user by name or by one of the groups the API server authenticated. */
function isApprover(request: AccessRequest, user: DeciderInfo): boolean {
  const approvers = request.spec.approvers;
  if ((approvers?.users ?? []).includes(user.username)) return true;
  return (approvers?.groups ?? []).some((group) => user.groups.includes(group));
}

function describeApprovers(request: AccessRequest): string {
  const users = request.spec.approvers?.users ?? [];
  const groups = request.spec.approvers?.groups ?? [];
  const parts = [...(users.length ? [`users ${users.join(', ')}`] : []), ...(groups.length ? [`groups ${groups.join(', ')}`] : [])];
  return parts.length ? parts.join(' or ') : 'nobody (the rule lists no approvers)';
}

/** Decides a write to accessrequests/status. */
export function decideStatusChange(change: StatusChange): StatusVerdict {
  const { object, user } = change;
  const old = change.oldObject?.status;
  const next = object.status;
  const isOperator = change.operatorUsers.includes(user.username);
  if (sameJson(old, next)) return { allowed: true, status: next as Status };
  if (!old?.phase) return initialise(change, isOperator);
  if (old.phase !== 'Pending') return refuse(`AccessRequest ${object.metadata.name} was already decided (${old.phase}); a decision cannot be changed`);
  const oldEntries = old.approvals ?? [];
  const entries = next?.approvals ?? [];
  if (entries.length === oldEntries.length) return expire(change, old, isOperator);
  if (entries.length !== oldEntries.length + 1 || !oldEntries.every((entry, index) => sameJson(entry, entries[index]))) {
    return refuse('append exactly one decision to status.approvals and leave earlier ones as they are (another decision may have landed first: read the request again and retry)');
  }
  return decide(change, old, entries[entries.length - 1]!);
}

function initialise(change: StatusChange, isOperator: boolean): StatusVerdict {
  const next = change.object.status;
  if (!isOperator) return refuse(`only the Gatehouse operator initialises an AccessRequest's status; ${change.user.username} is not it`);
  if (next?.phase !== 'Pending' || (next.approvals ?? []).length > 0) return refuse('an AccessRequest starts Pending, with no decisions');
  return { allowed: true, status: next };
}

/** Pending to Expired, by the operator (its timeout, or the client withdrew the statement). */
function expire(change: StatusChange, old: Status, isOperator: boolean): StatusVerdict {
  const next = change.object.status;
  if (next?.phase !== 'Expired') return refuse('the phase follows from status.approvals; append a decision (kubectl gatehouse approve|deny) instead of setting it');
  if (!isOperator) return refuse(`only the Gatehouse operator expires an AccessRequest; ${change.user.username} is not it`);
  return { allowed: true, status: { ...old, phase: 'Expired', decidedAt: change.now.toISOString(), ...(next.reason ? { reason: next.reason } : {}) } };
}

function decide(change: StatusChange, old: Status, entry: ApprovalEntry): StatusVerdict {
  const { object, user, now } = change;
  const name = object.metadata.name;
  if (old.expiresAt && Date.parse(old.expiresAt) <= now.getTime()) return refuse(`AccessRequest ${name} expired at ${old.expiresAt}; it can no longer be decided`);
  if (object.spec.requester && user.username === object.spec.requester) {
    return refuse(`${user.username} made this request and may not decide it: approval must come from someone else`);
  }
  if (!isApprover(object, user)) return refuse(`${user.username} may not decide AccessRequest ${name}: its approvers are ${describeApprovers(object)}`);
  const entries = old.approvals ?? [];
  if (entries.some((earlier) => earlier.user === user.username)) return refuse(`${user.username} has already decided AccessRequest ${name}; N-of-M needs distinct approvers`);
  // Who decided is the authenticated user, whatever the client wrote into the entry.
  const recorded: ApprovalEntry = {
    decision: entry.decision,
    user: user.username,
    groups: [...user.groups],
    at: now.toISOString(),
    ...(entry.reason ? { reason: entry.reason } : {}),
  };
  const approvals = [...entries, recorded];
  return { allowed: true, status: { ...old, approvals, ...phaseOf(object, approvals, now) } };
}

/** One deny denies; N distinct approvals approve; otherwise it stays Pending. */
function phaseOf(request: AccessRequest, approvals: readonly ApprovalEntry[], now: Date): Partial<Status> {
  const denial = approvals.find((entry) => entry.decision === 'deny');
  if (denial) return { phase: 'Denied', decidedBy: denial.user!, decidedAt: now.toISOString(), ...(denial.reason ? { reason: denial.reason } : {}) };
  const approvers = approvals.filter((entry) => entry.decision === 'approve').map((entry) => entry.user!);
  if (approvers.length < (request.spec.requiredApprovals ?? 1)) return { phase: 'Pending' };
  const reasons = approvals.flatMap((entry) => (entry.reason ? [entry.reason] : []));
  return { phase: 'Approved', decidedBy: approvers.join(','), decidedAt: now.toISOString(), ...(reasons.length ? { reason: reasons.join('; ') } : {}) };
}
