// What `kubectl gatehouse requests|approve|deny` do against a cluster: list pending AccessRequests,
// and append one decision to a request's status.approvals through the status subresource. The
// client writes only the decision and its reason; the admission webhook records who made it.
import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import { RESOURCE_TYPES, type KubeClient } from '../kube/kube-client.js';
import type { AccessRequestObject } from './access-request-broker.js';

const ACCESS_REQUESTS = RESOURCE_TYPES.accessRequests;

/** One row of `gatehouse requests`, the same for a cluster and for `gatehouse dev`. */
export interface PendingRequestRow {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly resource: string;
  readonly rule: string;
  readonly statement: string;
  readonly approvals: string;
  readonly expiresAt: string;
}

export function rowOf(request: AccessRequestObject): PendingRequestRow {
  const approved = (request.status?.approvals ?? []).filter((entry) => entry.decision === 'approve').length;
  return {
    namespace: request.metadata.namespace ?? '',
    name: request.metadata.name,
    identity: request.spec.identity,
    resource: request.spec.resource,
    rule: `${request.spec.policy}/${request.spec.rule ?? ''}`,
    statement: request.spec.statement,
    approvals: `${approved}/${request.spec.requiredApprovals ?? 1}`,
    expiresAt: request.status?.expiresAt ?? '',
  };
}

/** Pending requests in one namespace, or in all when `namespace` is undefined. */
export async function listPendingRequests(kube: KubeClient, namespace: string | undefined): Promise<PendingRequestRow[]> {
  const rows: PendingRequestRow[] = [];
  let next: string | undefined;
  do {
    const page = await kube.list<AccessRequestObject>(ACCESS_REQUESTS, {
      ...(namespace !== undefined ? { namespace } : {}),
      ...(next ? { continue: next } : {}),
      limit: 500,
    });
    for (const item of page.items) if (item.status?.phase === 'Pending') rows.push(rowOf(item));
    next = page.continue;
  } while (next);
  return rows.sort((a, b) => a.expiresAt.localeCompare(b.expiresAt));
}

export type Verdict = 'approve' | 'deny';

/**
 * Appends a decision. The whole list is sent (a merge patch replaces lists); if another decision
 * landed in between, the webhook refuses the stale list and the user runs the command again.
 */
export async function decideRequest(kube: KubeClient, namespace: string, name: string, decision: Verdict, reason: string | undefined): Promise<AccessRequestObject> {
  const current = await kube.get<AccessRequestObject>(ACCESS_REQUESTS, namespace, name);
  if (!current) throw new GatehouseError('GH_ERR_APPROVAL_NOT_FOUND', { name, where: ` in namespace ${namespace}` });
  const entry = { decision, ...(reason ? { reason } : {}) };
  try {
    return await kube.patchStatus<AccessRequestObject>(ACCESS_REQUESTS, namespace, name, { approvals: [...(current.status?.approvals ?? []), entry] });
  } catch (error) {
    throw new GatehouseError('GH_ERR_APPROVAL_REFUSED', { name: `${namespace}/${name}`, detail: refusalText(error) }, { cause: error });
  }
}

/** The API server's message, which carries the webhook's reason. */
function refusalText(error: unknown): string {
  if (isGatehouseError(error)) return String(error.details.detail ?? error.details.message ?? error.message);
  return error instanceof Error ? error.message : String(error);
}
