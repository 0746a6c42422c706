// The RequestApproval call of the policy discovery service, server side: authenticates the node
// exactly as the discovery stream does (its projected token must prove node.id), checks what it
// asks against the cluster (approval-context.ts), then holds the call open until the
// AccessRequestBroker has a decision. A cancelled call (the sidecar's client cancelled the
// statement) withdraws the request. Served as the discovery server's extraHandlers.RequestApproval.
import { Metadata, status as GrpcStatus, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import type { ApprovalDecisionInit, ApprovalRequestMessage } from '../../api/approvals/approval-proto.js';
import { ERROR_CODE_METADATA_KEY, type NodeAuthenticator } from '../control-plane/node-stream.js';
import type { ApprovalContextSource } from './approval-context.js';
import type { AccessRequestBroker } from './access-request-broker.js';

export interface RequestApprovalOptions {
  readonly authenticator: NodeAuthenticator;
  readonly contexts: ApprovalContextSource;
  readonly broker: AccessRequestBroker;
  readonly logger: Logger;
  /** Upper bound on how long one statement is held, whatever the sidecar asks. Default 1 h. */
  readonly maxTimeoutMs?: number;
}

export type RequestApprovalHandler = (call: ServerUnaryCall<ApprovalRequestMessage, ApprovalDecisionInit>, callback: sendUnaryData<ApprovalDecisionInit>) => void;

const PHASES = { approved: 'Approved', denied: 'Denied', expired: 'Expired' } as const;

function failure(code: GrpcStatus, error: GatehouseError): { code: GrpcStatus; details: string; metadata: Metadata } {
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_METADATA_KEY, error.code);
  return { code, details: `${error.code}: ${error.message}`, metadata };
}

export function requestApprovalHandler(options: RequestApprovalOptions): RequestApprovalHandler {
  const maxTimeoutMs = options.maxTimeoutMs ?? 60 * 60_000;
  return (call, callback) => {
    const withdrawn = new AbortController();
    call.on('cancelled', () => withdrawn.abort());
    void answer(call.request, withdrawn.signal).then(
      (decision) => callback(null, decision),
      (error: unknown) => callback(error as never),
    );
  };

  async function answer(request: ApprovalRequestMessage, signal: AbortSignal): Promise<ApprovalDecisionInit> {
    const claimed = request.node?.id ?? '';
    const token = request.node?.token ?? '';
    if (claimed === '' || token === '') throw failure(GrpcStatus.UNAUTHENTICATED, new GatehouseError('GH_ERR_CP_NO_NODE'));
    let proven;
    try {
      proven = await options.authenticator.authenticate(token, claimed);
    } catch (error) {
      throw failure(GrpcStatus.UNAVAILABLE, new GatehouseError('GH_ERR_CP_AUTH_UNAVAILABLE', { node: claimed, detail: (error as Error).message }));
    }
    if (!('nodeId' in proven)) throw failure(GrpcStatus.UNAUTHENTICATED, new GatehouseError('GH_ERR_CP_UNAUTHENTICATED', { node: claimed, detail: proven.message }));
    if (proven.nodeId !== claimed) throw failure(GrpcStatus.PERMISSION_DENIED, new GatehouseError('GH_ERR_CP_NODE_MISMATCH', { proven: proven.nodeId, claimed }));
    let context;
    try {
      context = await options.contexts.contextFor(proven.nodeId, request);
    } catch (error) {
      if (isGatehouseError(error, 'GH_ERR_APPROVAL_NOT_ALLOWED')) {
        options.logger.warn({ node: proven.nodeId, detail: error.message }, 'approval request refused');
        throw failure(GrpcStatus.PERMISSION_DENIED, error);
      }
      throw failure(GrpcStatus.UNAVAILABLE, new GatehouseError('GH_ERR_CP_STREAM_FAILED', { node: proven.nodeId, detail: (error as Error).message }));
    }
    const timeoutMs = Math.min(request.timeout_ms > 0 ? request.timeout_ms : 5 * 60_000, maxTimeoutMs);
    const decision = await options.broker.requestApproval(
      {
        identity: request.identity,
        resource: request.resource,
        policy: request.policy,
        rule: request.rule,
        // The proven node, not anything the sidecar wrote.
        pod: proven.nodeId,
        statement: request.statement,
        fingerprint: request.fingerprint,
        reason: request.reason,
      },
      context,
      timeoutMs,
      signal,
    ).catch((error: unknown) => {
      const gatehouse = isGatehouseError(error) ? error : new GatehouseError('GH_ERR_CP_STREAM_FAILED', { node: proven.nodeId, detail: (error as Error).message });
      throw failure(isGatehouseError(error, 'GH_ERR_APPROVAL_WITHDRAWN') ? GrpcStatus.CANCELLED : GrpcStatus.UNAVAILABLE, gatehouse);
    });
    return {
      phase: PHASES[decision.outcome],
      decided_by: [...decision.decidedBy],
      decided_at_unix_ms: Date.now(),
      reason: decision.reason ?? '',
      access_request: (decision.request ?? '').replace(/^AccessRequest /, ''),
    };
  }
}
