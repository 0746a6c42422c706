// Adapts the identity module's Authenticator (token → the NonHumanIdentity and workload it proves)
// to the stream server's NodeAuthenticator. A sidecar's node id is its pod, `namespace/pod-name`,
// so only a pod-bound ServiceAccount token proves one; "cannot verify now" stays retryable.
import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import { isVerificationUnavailable, type Authenticator } from '../identity/identity-resolver.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import type { AuthenticationResult, NodeAuthenticator } from './node-stream.js';

/** The node id a workload proves: `namespace/pod` for a pod-bound ServiceAccount token, else none. */
export function nodeIdOf(workload: WorkloadIdentity): string | undefined {
  return workload.kind === 'serviceaccount' && workload.pod ? `${workload.namespace}/${workload.pod.name}` : undefined;
}

export function nodeAuthenticatorFrom(authenticate: Authenticator): NodeAuthenticator {
  return {
    async authenticate(token: string): Promise<AuthenticationResult> {
      let resolved;
      try {
        resolved = await authenticate(token);
      } catch (error) {
        // Thrown means "retry later" to the stream server (UNAVAILABLE); returned means "refused".
        if (isVerificationUnavailable(error) || !isGatehouseError(error)) throw error;
        return error;
      }
      const nodeId = nodeIdOf(resolved.workload);
      if (nodeId === undefined) {
        return new GatehouseError('GH_ERR_TOKEN_CLAIMS', {
          claim: 'kubernetes.io/pod',
          reason: 'absent',
          hint: 'a sidecar must present its pod\'s projected ServiceAccount token, which names the pod',
        });
      }
      return { nodeId, expiresAtMs: resolved.expiresAt.getTime() };
    },
  };
}
