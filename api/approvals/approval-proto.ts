// The RequestApproval call of the discovery service (gatehouse/v1/discovery.proto), typed: the
// messages as they cross the wire and the method definition both the operator's handler and the
// sidecar's client use, taken from the service definition loaded once by loadDiscoveryProto.
import type { MethodDefinition } from '@grpc/proto-loader';
import { GatehouseError } from '../errors.js';
import { SERVICE_NAME, type DiscoveryProto, type NodeMessage } from '../proto/discovery-proto.js';

export const REQUEST_APPROVAL_PATH = `/${SERVICE_NAME}/RequestApproval`;

/** An ApprovalRequest as received: every scalar present (proto3 defaults), an absent node null. */
export interface ApprovalRequestMessage {
  readonly node: NodeMessage | null;
  readonly identity: string;
  readonly resource: string;
  readonly policy: string;
  readonly rule: string;
  readonly statement: string;
  readonly fingerprint: string;
  readonly reason: string;
  readonly timeout_ms: number;
}

export type ApprovalPhase = 'Approved' | 'Denied' | 'Expired';

export interface ApprovalDecisionMessage {
  readonly phase: string;
  readonly decided_by: readonly string[];
  readonly decided_at_unix_ms: number;
  readonly reason: string;
  readonly access_request: string;
}

export type ApprovalRequestInit = Partial<Omit<ApprovalRequestMessage, 'node'>> & { readonly node?: Partial<NodeMessage> | null };
export type ApprovalDecisionInit = Partial<ApprovalDecisionMessage>;

export type RequestApprovalMethod = MethodDefinition<ApprovalRequestInit, ApprovalDecisionInit, ApprovalRequestMessage, ApprovalDecisionMessage>;

/** The method definition from the loaded service (the one unchecked step, as for StreamSnapshots). */
export function requestApprovalMethod(proto: DiscoveryProto): RequestApprovalMethod {
  const method = (proto.service as Record<string, unknown>).RequestApproval;
  if (typeof method !== 'object' || method === null) {
    throw new GatehouseError('GH_ERR_CP_PROTO_NOT_FOUND', { paths: `${SERVICE_NAME}.RequestApproval in the loaded discovery.proto` });
  }
  return method as RequestApprovalMethod;
}
