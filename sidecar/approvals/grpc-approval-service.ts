// The ApprovalService a sidecar in a pod uses: the RequestApproval call to the operator, on the
// same address and TLS as the discovery stream, proving its pod with the projected token read at
// each call. The call stays open until the operator answers; aborting it withdraws the request.
import { Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import type { DiscoveryProto } from '../../api/proto/discovery-proto.js';
import type { ApprovalDecision, ApprovalRequest, ApprovalService } from '../../api/approvals/approval-service.js';
import { REQUEST_APPROVAL_PATH, requestApprovalMethod, type ApprovalDecisionMessage, type ApprovalRequestInit } from '../../api/approvals/approval-proto.js';
import { controlPlaneClient, type ControlPlaneConnection } from '../control-plane/control-plane-channel.js';

/** The RequestApproval call goes where the discovery stream does, proving the pod the same way. */
export interface GrpcApprovalServiceOptions extends ControlPlaneConnection {
  readonly proto: DiscoveryProto;
}

/** Past the statement's own timeout the operator has expired it; the margin covers the answer's trip. */
const DEADLINE_MARGIN_MS = 10_000;

const OUTCOMES: Readonly<Record<string, ApprovalDecision['outcome']>> = { Approved: 'approved', Denied: 'denied', Expired: 'expired' };

export class GrpcApprovalService implements ApprovalService {
  private readonly client: Client;

  constructor(private readonly options: GrpcApprovalServiceOptions) {
    this.client = controlPlaneClient(options.address, options.transport);
  }

  async requestApproval(request: ApprovalRequest, options: { readonly signal: AbortSignal; readonly timeoutMs: number }): Promise<ApprovalDecision> {
    const method = requestApprovalMethod(this.options.proto);
    const message: ApprovalRequestInit = {
      node: { id: this.options.nodeId, token: await this.options.token(), sidecar_version: this.options.sidecarVersion },
      identity: request.identity,
      resource: request.resource,
      policy: request.policy,
      rule: request.rule,
      statement: request.statement,
      fingerprint: request.fingerprint,
      reason: request.reason,
      timeout_ms: options.timeoutMs,
    };
    const answer = await new Promise<ApprovalDecisionMessage>((resolve, reject) => {
      const call = this.client.makeUnaryRequest(
        REQUEST_APPROVAL_PATH,
        method.requestSerialize,
        method.responseDeserialize,
        message,
        new Metadata(),
        { deadline: Date.now() + options.timeoutMs + DEADLINE_MARGIN_MS },
        (error: ServiceError | null, value?: ApprovalDecisionMessage) => (error || !value ? reject(error ?? new Error('empty answer')) : resolve(value)),
      );
      options.signal.addEventListener('abort', () => call.cancel(), { once: true });
    });
    const outcome = OUTCOMES[answer.phase];
    // Anything but a known phase is no approval.
    if (!outcome) return { outcome: 'denied', decidedBy: [], reason: `the operator answered with unknown phase ${JSON.stringify(answer.phase)}` };
    return {
      outcome,
      decidedBy: answer.decided_by,
      ...(answer.reason ? { reason: answer.reason } : {}),
      ...(answer.access_request ? { request: `AccessRequest ${answer.access_request.replace(/^AccessRequest /, '')}` } : {}),
    };
  }

  close(): void {
    this.client.close();
  }
}
