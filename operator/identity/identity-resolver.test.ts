import type { ErrorCode } from '../../api/errors.js';
import { expectRefusal } from './testing/refusals.js';
import { GROUP_VERSION, type NonHumanIdentity } from '../../api/kinds/kinds.js';
import { GatehouseError } from '../../api/errors.js';
import { createAuthenticator, isVerificationUnavailable, resolveServiceAccount, type AuthenticatorOptions } from './identity-resolver.js';
import { createOidcVerifier } from './oidc-verifier.js';
import { createServiceAccountTokenVerifier } from './token-verifier.js';
import { loopbackCertificate, startLoopbackServer, type LoopbackServer, type TlsMaterial } from './testing/loopback-servers.js';
import {
  CLUSTER_ISSUER,
  NOW_SECONDS,
  createTestKey,
  fixedClock,
  serviceAccountClaims,
  signToken,
  type TestKey,
} from './testing/token-fixtures.js';

const CI_SUBJECT = 'repo:acme/orders:ref:refs/heads/main';

let tls: TlsMaterial;
let clusterKey: TestKey;
let ciKey: TestKey;
let ciIssuer: LoopbackServer;

function identity(name: string, spec: NonHumanIdentity['spec'], namespace = 'payments'): NonHumanIdentity {
  return { apiVersion: GROUP_VERSION, kind: 'NonHumanIdentity', metadata: { name, namespace }, spec };
}

function authenticator(identities: NonHumanIdentity[], overrides: Partial<AuthenticatorOptions> = {}) {
  return createAuthenticator({
    serviceAccounts: {
      issuer: CLUSTER_ISSUER,
      verifier: createServiceAccountTokenVerifier({ issuer: CLUSTER_ISSUER, jwks: { keys: [clusterKey.jwk] }, now: fixedClock }),
    },
    oidc: createOidcVerifier({ http: { ca: tls.cert }, now: fixedClock }),
    identities: () => identities,
    ...overrides,
  });
}

const rejection = (promise: Promise<unknown>, code: ErrorCode) => expectRefusal(promise, code);

function ciToken(overrides: Record<string, unknown> = {}): Promise<string> {
  return signToken(ciKey, { iss: ciIssuer.url, aud: 'gatehouse', sub: CI_SUBJECT, exp: NOW_SECONDS + 300, ...overrides });
}

beforeAll(async () => {
  [tls, clusterKey, ciKey] = await Promise.all([loopbackCertificate(), createTestKey('RS256', 'cluster-1'), createTestKey('ES256', 'ci-1')]);
  ciIssuer = await startLoopbackServer((request) => request.path === '/keys'
    ? { status: 200, body: { keys: [ciKey.jwk] } }
    : { status: 200, body: { issuer: ciIssuer.url, jwks_uri: `${ciIssuer.url}/keys` } }, tls);
});
afterAll(async () => {
  await ciIssuer.close();
});

describe('createAuthenticator: ServiceAccount tokens', () => {
  test('a pod token resolves to the identity naming its ServiceAccount in its namespace', async () => {
    const runner = identity('ci-runner', { serviceAccountName: 'ci-runner', groups: ['ci'] });
    const identities = [identity('ci-runner', { serviceAccountName: 'ci-runner' }, 'staging'), runner, identity('reporter', { serviceAccountName: 'reporter' })];
    const resolved = await authenticator(identities)(await signToken(clusterKey, serviceAccountClaims()));
    expect(resolved.identity).toBe(runner);
    expect(resolved.workload).toMatchObject({ kind: 'serviceaccount', namespace: 'payments', serviceAccount: 'ci-runner' });
    expect(resolved.expiresAt).toEqual(new Date((NOW_SECONDS + 3600) * 1000));
  });

  test('a ServiceAccount no NonHumanIdentity claims is refused', async () => {
    const identities = [identity('ci-runner', { serviceAccountName: 'ci-runner' }, 'staging')];
    const error = await rejection(authenticator(identities)(await signToken(clusterKey, serviceAccountClaims())), 'GH_ERR_IDENTITY_UNKNOWN');
    expect(error.message).toContain('ServiceAccount payments/ci-runner');
    expect(error.message).toContain('spec.serviceAccountName: ci-runner in namespace payments');
  });

  test('two identities claiming one ServiceAccount are refused as ambiguous, not picked from', async () => {
    const identities = [identity('runner-b', { serviceAccountName: 'ci-runner' }), identity('runner-a', { serviceAccountName: 'ci-runner' })];
    const error = await rejection(authenticator(identities)(await signToken(clusterKey, serviceAccountClaims())), 'GH_ERR_IDENTITY_AMBIGUOUS');
    expect(error.message).toContain('payments/runner-a, payments/runner-b');
  });

  test('identities are read per token, so a new NonHumanIdentity applies at once', async () => {
    const identities: NonHumanIdentity[] = [];
    const authenticate = authenticator(identities);
    const token = await signToken(clusterKey, serviceAccountClaims());
    await rejection(authenticate(token), 'GH_ERR_IDENTITY_UNKNOWN');
    identities.push(identity('ci-runner', { serviceAccountName: 'ci-runner' }));
    await expect(authenticate(token)).resolves.toMatchObject({ identity: { metadata: { name: 'ci-runner' } } });
  });

  test('a token claiming the cluster issuer but signed elsewhere is judged by the cluster verifier and refused', async () => {
    const forger = await createTestKey('RS256', 'cluster-1');
    const identities = [identity('ci-runner', { serviceAccountName: 'ci-runner' })];
    await rejection(authenticator(identities)(await signToken(forger, serviceAccountClaims())), 'GH_ERR_TOKEN_SIGNATURE');
  });

  test('identities in the default namespace match workloads of namespace default', () => {
    const unnamespaced: NonHumanIdentity = { apiVersion: GROUP_VERSION, kind: 'NonHumanIdentity', metadata: { name: 'bot' }, spec: { serviceAccountName: 'bot' } };
    const workload = { kind: 'serviceaccount', namespace: 'default', serviceAccount: 'bot', serviceAccountUid: 'u', expiresAt: new Date() } as const;
    expect(resolveServiceAccount(workload, [unnamespaced])).toBe(unnamespaced);
  });
});

describe('createAuthenticator: OIDC tokens', () => {
  const ciIdentity = () => identity('orders-deployer', { oidc: { issuer: ciIssuer.url, subject: CI_SUBJECT } });

  test('a CI token resolves to the identity whose spec.oidc matches issuer, subject and audience', async () => {
    const deployer = ciIdentity();
    const resolved = await authenticator([identity('ci-runner', { serviceAccountName: 'ci-runner' }), deployer])(await ciToken());
    expect(resolved.identity).toBe(deployer);
    expect(resolved.workload).toEqual({ kind: 'oidc', issuer: ciIssuer.url, subject: CI_SUBJECT, audiences: ['gatehouse'], expiresAt: new Date((NOW_SECONDS + 300) * 1000) });
  });

  test('a custom spec.oidc.audience is what the token must carry', async () => {
    const custom = identity('custom', { oidc: { issuer: ciIssuer.url, subject: CI_SUBJECT, audience: 'https://gatehouse.acme.example' } });
    await rejection(authenticator([custom])(await ciToken()), 'GH_ERR_TOKEN_AUDIENCE');
    await expect(authenticator([custom])(await ciToken({ aud: ['https://gatehouse.acme.example'] }))).resolves.toMatchObject({ identity: custom });
  });

  test('a CI token for a subject no identity names is refused', async () => {
    const error = await rejection(authenticator([ciIdentity()])(await ciToken({ sub: 'repo:acme/orders:pull_request' })), 'GH_ERR_IDENTITY_UNKNOWN');
    expect(error.message).toContain('OIDC subject repo:acme/orders:pull_request');
  });

  test('an expired CI token is refused', async () => {
    await rejection(authenticator([ciIdentity()])(await ciToken({ exp: NOW_SECONDS - 120 })), 'GH_ERR_TOKEN_EXPIRED');
  });

  test('one OIDC subject claimed in two namespaces is ambiguous (the token names no namespace)', async () => {
    const identities = [ciIdentity(), identity('deployer', { oidc: { issuer: ciIssuer.url, subject: CI_SUBJECT } }, 'staging')];
    await rejection(authenticator(identities)(await ciToken()), 'GH_ERR_IDENTITY_AMBIGUOUS');
  });
});

describe('createAuthenticator: choosing a verifier', () => {
  test('a token from an issuer nobody configured is refused without any fetch', async () => {
    const before = ciIssuer.requests.length;
    const token = await ciToken({ iss: 'https://attacker.example' });
    const error = await rejection(authenticator([identity('x', { oidc: { issuer: ciIssuer.url, subject: CI_SUBJECT } })])(token), 'GH_ERR_TOKEN_UNTRUSTED_ISSUER');
    expect(error.message).toContain(CLUSTER_ISSUER);
    expect(error.message).not.toContain('attacker');
    expect(ciIssuer.requests.length).toBe(before);
  });

  test('without an OIDC verifier, OIDC tokens are refused; without a cluster verifier, ServiceAccount tokens are', async () => {
    await rejection(authenticator([identity('x', { oidc: { issuer: ciIssuer.url, subject: CI_SUBJECT } })], { oidc: undefined })(await ciToken()), 'GH_ERR_TOKEN_UNTRUSTED_ISSUER');
    await rejection(authenticator([identity('ci-runner', { serviceAccountName: 'ci-runner' })], { serviceAccounts: undefined })(await signToken(clusterKey, serviceAccountClaims())), 'GH_ERR_TOKEN_UNTRUSTED_ISSUER');
  });

  test('garbage is refused as malformed before any verifier runs', async () => {
    await rejection(authenticator([])('not-a-token'), 'GH_ERR_TOKEN_MALFORMED');
  });
});

describe('isVerificationUnavailable', () => {
  test('tells "could not verify now" from "this token is bad"', () => {
    expect(isVerificationUnavailable(new GatehouseError('GH_ERR_JWKS_UNAVAILABLE'))).toBe(true);
    expect(isVerificationUnavailable(new GatehouseError('GH_ERR_TOKEN_REVIEW_FAILED'))).toBe(true);
    expect(isVerificationUnavailable(new Error('socket hang up'))).toBe(true);
    expect(isVerificationUnavailable(new GatehouseError('GH_ERR_TOKEN_SIGNATURE'))).toBe(false);
    expect(isVerificationUnavailable(new GatehouseError('GH_ERR_IDENTITY_UNKNOWN'))).toBe(false);
  });
});
