// The admission webhook of AccessRequest decisions (path /mutate-accessrequest-status): a mutating
// webhook, because it must write the decider's identity into the status it admits, and it refuses
// what access-request-status.ts refuses. Registered for UPDATE of accessrequests/status and of
// accessrequests, whose spec (approvers, N, requester) must not change once the operator made it.
import type { AccessRequest } from '../../api/kinds/kinds.js';
import { allow, deny, type AdmissionRequest, type AdmissionResponse } from './admission-review.js';
import { decideStatusChange } from './access-request-status.js';
import type { JsonValue } from './json-patch.js';

export const ACCESS_REQUEST_STATUS_PATH = '/mutate-accessrequest-status';

export interface AccessRequestWebhookOptions {
  /** Users that initialise and expire requests: the operator's ServiceAccount user. */
  readonly operatorUsers: readonly string[];
  readonly clock?: () => Date;
}

export interface AccessRequestReview {
  readonly response: AdmissionResponse;
  readonly outcome: 'allowed' | 'patched' | 'denied';
}

/** Any request that is not an UPDATE of AccessRequest status is let through unchanged: it is not this webhook's. */
export function reviewAccessRequestStatus(admission: AdmissionRequest, options: AccessRequestWebhookOptions): AccessRequestReview {
  const ours = admission.kind.kind === 'AccessRequest' && admission.operation === 'UPDATE';
  if (!ours || admission.object === undefined) return { response: allow(admission.uid), outcome: 'allowed' };
  const object = admission.object as AccessRequest;
  if (admission.subResource === undefined) {
    const old = admission.oldObject as AccessRequest | undefined;
    if (old === undefined || JSON.stringify(old.spec) === JSON.stringify(object.spec)) return { response: allow(admission.uid), outcome: 'allowed' };
    return { response: deny(admission.uid, 'gatehouse: the spec of an AccessRequest cannot change (its approvers and statement are what was asked); decide through the status', 403), outcome: 'denied' };
  }
  if (admission.subResource !== 'status') return { response: allow(admission.uid), outcome: 'allowed' };
  const verdict = decideStatusChange({
    user: { username: admission.userInfo?.username ?? '', groups: admission.userInfo?.groups ?? [] },
    oldObject: admission.oldObject as AccessRequest | undefined,
    object,
    operatorUsers: options.operatorUsers,
    now: options.clock?.() ?? new Date(),
  });
  if (!verdict.allowed) return { response: deny(admission.uid, `gatehouse: ${verdict.message}`, 403), outcome: 'denied' };
  if (JSON.stringify(verdict.status) === JSON.stringify(object.status)) return { response: allow(admission.uid), outcome: 'allowed' };
  return { response: allow(admission.uid, { patch: [{ op: 'replace', path: '/status', value: verdict.status as unknown as JsonValue }] }), outcome: 'patched' };
}
