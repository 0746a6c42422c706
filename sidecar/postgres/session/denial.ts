// How a denied statement is answered. Nothing of it reaches the server: in its place the sidecar
// sends a statement that fails to parse, carrying a per-session token, so the server itself ends
// the request with an error at exactly that point of the pipeline (a transaction block becomes
// failed, as after any PostgreSQL error, and queued results stay in order). The server's error is
// then replaced by ours: SQLSTATE 42501 naming the rule and the policy's message.
import { randomBytes } from 'node:crypto';
import type { Decision } from '../../../api/policy/decision.js';
import { encodeErrorResponse } from '../protocol/backend-encoders.js';
import { encodeParse } from '../protocol/frontend-encoders.js';
import { encodeQuery } from '../protocol/frontend-encoders.js';

export const INSUFFICIENT_PRIVILEGE = '42501';

export interface Denial {
  readonly decision: Decision;
  /** Why, when the decision alone does not say (e.g. approvals not available). */
  readonly note?: string;
  /**
   * What blocked it when no deny rule did (the decision itself allowed it): named in the error's
   * detail and in the blocked-statements metric instead of the allow rule.
   */
  readonly blockedBy?: string;
  /** SQLSTATE when not 42501 (a held statement the client cancelled ends as 57014, like a cancelled query). */
  readonly code?: string;
}

/** Per-session marker text; it only has to be unique and unparsable. */
export function newDenialToken(): string {
  return `gatehouse_denied_${randomBytes(6).toString('hex')}`;
}

export function injectedQuery(token: string): Buffer {
  return encodeQuery(token);
}

export function injectedParse(token: string): Buffer {
  return encodeParse({ statement: '', query: token, paramTypes: [] });
}

function ruleLabel(denial: Denial): string {
  const { decision } = denial;
  if (denial.blockedBy) return denial.blockedBy;
  if (decision.rule) return `rule ${decision.rule.id} (${decision.rule.effect})`;
  return decision.reason === 'no-match' ? 'no rule matched' : decision.reason;
}

/** The label of the blocked-statements metric: the deny rule, or what else blocked it. */
export function blockedLabel(denial: Denial): string {
  return denial.blockedBy ?? denial.decision.rule?.id ?? denial.decision.reason;
}

export function denialErrorResponse(denial: Denial): Buffer {
  const { decision } = denial;
  const message = `gatehouse: ${denial.note ?? decision.message}`;
  return encodeErrorResponse({
    severity: 'ERROR',
    code: denial.code ?? INSUFFICIENT_PRIVILEGE,
    message,
    detail: `Denied by Gatehouse policy: ${ruleLabel(denial)}.`,
    hint:
      decision.effect === 'require-approval'
        ? 'This statement needs a human approval.'
        : 'Change the AccessPolicy for this identity, or run the statement through an approved path.',
  });
}

/** Errors the sidecar answers itself (FATAL at startup, protocol violations). */
export function sidecarError(severity: 'ERROR' | 'FATAL', code: string, message: string, detail?: string): Buffer {
  return encodeErrorResponse({ severity, code, message: `gatehouse: ${message}`, ...(detail ? { detail } : {}) });
}
