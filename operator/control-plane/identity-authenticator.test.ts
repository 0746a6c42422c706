import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import type { NonHumanIdentity } from '../../api/kinds/kinds.js';
import type { Authenticator, ResolvedIdentity } from '../identity/identity-resolver.js';
import type { WorkloadIdentity } from '../identity/workload-identity.js';
import { nodeAuthenticatorFrom, nodeIdOf } from './identity-authenticator.js';

const identity = { apiVersion: 'gatehouse.dev/v1alpha1', kind: 'NonHumanIdentity', metadata: { name: 'ci-runner', namespace: 'payments' }, spec: {} } as unknown as NonHumanIdentity;
const expiresAt = new Date('2030-01-01T00:00:00Z');
const podWorkload: WorkloadIdentity = {
  kind: 'serviceaccount',
  namespace: 'payments',
  serviceAccount: 'ci-runner',
  serviceAccountUid: 'uid-1',
  pod: { name: 'ci-runner-7d9f', uid: 'pod-uid' },
  expiresAt,
};

function resolvingTo(workload: WorkloadIdentity): Authenticator {
  return async (): Promise<ResolvedIdentity> => ({ identity, workload, expiresAt });
}

function throwing(error: unknown): Authenticator {
  return async () => Promise.reject(error);
}

describe('nodeAuthenticatorFrom', () => {
  test('a pod-bound ServiceAccount token proves namespace/pod until the token expires', async () => {
    expect(nodeIdOf(podWorkload)).toBe('payments/ci-runner-7d9f');
    await expect(nodeAuthenticatorFrom(resolvingTo(podWorkload)).authenticate('t', 'payments/ci-runner-7d9f')).resolves.toEqual({
      nodeId: 'payments/ci-runner-7d9f',
      expiresAtMs: expiresAt.getTime(),
    });
  });

  test('a token that names no pod proves no node', async () => {
    const { pod: _pod, ...unbound } = podWorkload as Extract<WorkloadIdentity, { kind: 'serviceaccount' }>;
    const oidc: WorkloadIdentity = { kind: 'oidc', issuer: 'https://ci.example', subject: 'repo:x', audiences: ['gatehouse'], expiresAt };
    for (const workload of [unbound, oidc]) {
      const result = await nodeAuthenticatorFrom(resolvingTo(workload)).authenticate('t', 'n');
      expect(isGatehouseError(result, 'GH_ERR_TOKEN_CLAIMS')).toBe(true);
    }
  });

  test('a bad token is a refusal; a verifier that cannot answer now is a retryable throw', async () => {
    const expired = new GatehouseError('GH_ERR_TOKEN_EXPIRED', { detail: 'exp passed' });
    await expect(nodeAuthenticatorFrom(throwing(expired)).authenticate('t', 'n')).resolves.toBe(expired);
    const unavailable = new GatehouseError('GH_ERR_JWKS_UNAVAILABLE', { issuer: 'i', url: 'u', detail: 'timeout' });
    await expect(nodeAuthenticatorFrom(throwing(unavailable)).authenticate('t', 'n')).rejects.toBe(unavailable);
    await expect(nodeAuthenticatorFrom(throwing(new Error('bug'))).authenticate('t', 'n')).rejects.toThrow('bug');
  });
});
