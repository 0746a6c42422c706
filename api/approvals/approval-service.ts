// The contract between what holds a statement for a human decision (the sidecar) and what gets
// that decision (the operator over gRPC, or `gatehouse dev` in process): the request, the answer,
// and the statement fingerprint both sides key grants on.
import { createHash } from 'node:crypto';
import { statementShape } from '../sql/statement-shape.js';

/** One statement held for approval: everything a human needs to decide, and what it is keyed by. */
export interface ApprovalRequest {
  readonly identity: string;
  readonly resource: string;
  /** The AccessPolicy whose require-approval rule matched, and that rule's name. */
  readonly policy: string;
  readonly rule: string;
  /** namespace/pod of the sidecar holding it (local mode: `local/<identity>`). */
  readonly pod: string;
  readonly statement: string;
  /** statementFingerprint(statement): grant windows match on it. */
  readonly fingerprint: string;
  /** Why approval is needed (the rule's message, or what the statement does). */
  readonly reason: string;
}

export type ApprovalOutcome = 'approved' | 'denied' | 'expired';

export interface ApprovalDecision {
  readonly outcome: ApprovalOutcome;
  /** Who decided: every approver for an approval, the one who refused for a denial; empty when it expired. */
  readonly decidedBy: readonly string[];
  /** The reason given with the decision, if any. */
  readonly reason?: string;
  /** The AccessRequest (or local request) that carried it, for messages and audit. */
  readonly request?: string;
}

/**
 * Asks for a decision and resolves when one is made or the request expires. Aborting `signal`
 * withdraws the request (the client cancelled the statement); the promise then rejects.
 */
export interface ApprovalService {
  requestApproval(request: ApprovalRequest, options: ApprovalRequestOptions): Promise<ApprovalDecision>;
}

export interface ApprovalRequestOptions {
  readonly signal: AbortSignal;
  /** The rule's approval.timeout: the request expires then. */
  readonly timeoutMs: number;
  /** The rule's minApprovals as the sidecar knows it (the operator reads its own copy of the rule). */
  readonly requiredApprovals?: number;
}

/**
 * The statement's shape (numbers replaced, see statement-shape.ts) hashed: `DELETE ... WHERE id = 1`
 * and `... id = 2` share one fingerprint, so an approved retry with another number still counts as
 * the same statement. Text the shape lexer is unsure of is hashed exactly.
 */
export function statementFingerprint(statement: string): string {
  const shape = statementShape(statement.trim()) ?? statement;
  return `sha256:${createHash('sha256').update(shape).digest('hex').slice(0, 32)}`;
}

/** How approvals are written in messages: "alice and bob", or "nobody" for an expiry. */
export function describeDeciders(users: readonly string[]): string {
  if (users.length === 0) return 'nobody';
  if (users.length === 1) return users[0]!;
  return `${users.slice(0, -1).join(', ')} and ${users[users.length - 1]!}`;
}
