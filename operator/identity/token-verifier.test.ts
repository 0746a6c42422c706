import { jest } from '@jest/globals';
import type { ErrorCode } from '../../api/errors.js';
import { expectRefusal } from './testing/refusals.js';
import { createServiceAccountTokenVerifier, type ServiceAccountTokenVerifierOptions } from './token-verifier.js';
import {
  CLUSTER_ISSUER,
  NOW_SECONDS,
  createTestKey,
  fixedClock,
  publicKeyHmacToken,
  serviceAccountClaims,
  signToken,
  unsignedToken,
  withPayload,
  type TestKey,
} from './testing/token-fixtures.js';
import { startJwksServer, type LoopbackServer } from './testing/loopback-servers.js';

let rsaKey: TestKey;
let ecKey: TestKey;
let otherKey: TestKey;

beforeAll(async () => {
  [rsaKey, ecKey, otherKey] = await Promise.all([
    createTestKey('RS256', 'rsa-1'),
    createTestKey('ES256', 'ec-1'),
    createTestKey('RS256', 'rsa-1'), // same kid, different key: a forger who copied the kid
  ]);
});

function staticVerifier(overrides: Partial<ServiceAccountTokenVerifierOptions> = {}) {
  return createServiceAccountTokenVerifier({
    issuer: CLUSTER_ISSUER,
    jwks: { keys: [rsaKey.jwk, ecKey.jwk] },
    now: fixedClock,
    ...overrides,
  });
}

const rejection = (promise: Promise<unknown>, code: ErrorCode, token?: string) => expectRefusal(promise, code, token ? [token] : []);

describe('ServiceAccount token verification (static key set)', () => {
  test.each(['RS256', 'ES256'] as const)('a valid %s projected token yields namespace, ServiceAccount and pod', async (alg) => {
    const key = alg === 'RS256' ? rsaKey : ecKey;
    const workload = await staticVerifier().verify(await signToken(key, serviceAccountClaims()));
    expect(workload).toEqual({
      kind: 'serviceaccount',
      namespace: 'payments',
      serviceAccount: 'ci-runner',
      serviceAccountUid: '9a8b7c6d-3333-4c1e-9d1a-000000000003',
      pod: { name: 'orders-7d9f8c-abcde', uid: '3c1f2a9b-2222-4c1e-9d1a-000000000002' },
      expiresAt: new Date((NOW_SECONDS + 3600) * 1000),
    });
  });

  test('an expired token is refused, but one within the clock skew passes', async () => {
    const expired = await signToken(rsaKey, { ...serviceAccountClaims(), exp: NOW_SECONDS - 31 });
    const error = await rejection(staticVerifier().verify(expired), 'GH_ERR_TOKEN_EXPIRED', expired);
    expect(error.message).toContain(new Date((NOW_SECONDS - 31) * 1000).toISOString());
    const justExpired = await signToken(rsaKey, { ...serviceAccountClaims(), exp: NOW_SECONDS - 20 });
    await expect(staticVerifier().verify(justExpired)).resolves.toMatchObject({ serviceAccount: 'ci-runner' });
    await rejection(staticVerifier({ clockSkewSeconds: 0 }).verify(justExpired), 'GH_ERR_TOKEN_EXPIRED');
  });

  test('a token that is not yet valid is refused', async () => {
    const token = await signToken(rsaKey, { ...serviceAccountClaims(), nbf: NOW_SECONDS + 120 });
    await rejection(staticVerifier().verify(token), 'GH_ERR_TOKEN_NOT_YET_VALID', token);
  });

  test('a token without exp is refused', async () => {
    const { exp: _exp, ...claims } = serviceAccountClaims();
    const token = await signToken(rsaKey, claims);
    const error = await rejection(staticVerifier().verify(token), 'GH_ERR_TOKEN_CLAIMS', token);
    expect(error.message).toContain('exp is missing');
  });

  test('maxTokenAgeSeconds refuses old tokens whatever their exp', async () => {
    const token = await signToken(rsaKey, { ...serviceAccountClaims(), iat: NOW_SECONDS - 7200, exp: NOW_SECONDS + 86400 });
    await rejection(staticVerifier({ maxTokenAgeSeconds: 3600 }).verify(token), 'GH_ERR_TOKEN_EXPIRED');
  });

  test('a token for another audience (the API server) is refused', async () => {
    const token = await signToken(rsaKey, { ...serviceAccountClaims(), aud: ['https://kubernetes.default.svc'] });
    const error = await rejection(staticVerifier().verify(token), 'GH_ERR_TOKEN_AUDIENCE', token);
    expect(error.message).toContain('gatehouse');
  });

  test('a token from another issuer is refused', async () => {
    const token = await signToken(rsaKey, { ...serviceAccountClaims(), iss: 'https://other-cluster.example' });
    await rejection(staticVerifier().verify(token), 'GH_ERR_TOKEN_ISSUER', token);
  });

  test('a token signed by another key with the same kid is refused as forged', async () => {
    const token = await signToken(otherKey, serviceAccountClaims());
    await rejection(staticVerifier().verify(token), 'GH_ERR_TOKEN_SIGNATURE', token);
  });

  test('a token naming a kid the issuer does not publish is refused', async () => {
    const token = await signToken(rsaKey, serviceAccountClaims(), { kid: 'retired-key' });
    const error = await rejection(staticVerifier().verify(token), 'GH_ERR_TOKEN_UNKNOWN_KEY', token);
    expect(error.message).toContain('retired-key');
  });

  test('alg none is refused before any key is looked up', async () => {
    const token = unsignedToken(serviceAccountClaims(), rsaKey.kid);
    const error = await rejection(staticVerifier().verify(token), 'GH_ERR_TOKEN_ALGORITHM', token);
    expect(error.message).toContain('algorithm none');
  });

  test.each([
    ['the PEM public key', (key: TestKey) => key.publicPem],
    ['the JWK', (key: TestKey) => JSON.stringify(key.jwk)],
  ])('HS256 keyed with %s (algorithm confusion) is refused', async (_name, secret) => {
    const token = publicKeyHmacToken(rsaKey, serviceAccountClaims(), secret(rsaKey));
    const error = await rejection(staticVerifier().verify(token), 'GH_ERR_TOKEN_ALGORITHM', token);
    expect(error.message).toContain('HS256');
  });

  test('an ES256 token is refused when only RS256 is allowed', async () => {
    const token = await signToken(ecKey, serviceAccountClaims());
    await rejection(staticVerifier({ algorithms: ['RS256'] }).verify(token), 'GH_ERR_TOKEN_ALGORITHM', token);
  });

  test('a tampered payload (other ServiceAccount, valid signature of the original) is refused', async () => {
    const token = await signToken(rsaKey, serviceAccountClaims());
    const tampered = withPayload(token, serviceAccountClaims({ namespace: 'kube-system', serviceAccount: 'admin' }));
    await rejection(staticVerifier().verify(tampered), 'GH_ERR_TOKEN_SIGNATURE', tampered);
  });

  test.each([
    ['no kubernetes.io claim', (claims: Record<string, unknown>) => { delete claims['kubernetes.io']; }, 'kubernetes.io is missing'],
    ['no namespace', (claims: Record<string, unknown>) => { delete (claims['kubernetes.io'] as Record<string, unknown>).namespace; }, 'kubernetes.io.namespace is missing'],
    ['no serviceaccount uid', (claims: Record<string, unknown>) => { delete ((claims['kubernetes.io'] as Record<string, Record<string, unknown>>).serviceaccount).uid; }, 'kubernetes.io.serviceaccount.uid is missing'],
    ['no pod binding', (claims: Record<string, unknown>) => { delete (claims['kubernetes.io'] as Record<string, unknown>).pod; }, 'kubernetes.io.pod is missing'],
    ['a namespace that is no Kubernetes name', (claims: Record<string, unknown>) => { (claims['kubernetes.io'] as Record<string, unknown>).namespace = 'Payments/../x'; }, 'kubernetes.io.namespace is invalid'],
    ['no sub', (claims: Record<string, unknown>) => { delete claims.sub; }, 'sub is missing'],
  ])('a token with %s is refused', async (_name, mutate, text) => {
    const claims = serviceAccountClaims() as Record<string, unknown>;
    mutate(claims);
    const token = await signToken(rsaKey, claims);
    const error = await rejection(staticVerifier().verify(token), 'GH_ERR_TOKEN_CLAIMS', token);
    expect(error.message).toContain(text);
  });

  test('a token not bound to a pod passes when requirePod is false', async () => {
    const claims = serviceAccountClaims() as Record<string, unknown>;
    delete (claims['kubernetes.io'] as Record<string, unknown>).pod;
    const workload = await staticVerifier({ requirePod: false }).verify(await signToken(rsaKey, claims));
    expect(workload.pod).toBeUndefined();
    expect(workload.serviceAccount).toBe('ci-runner');
  });

  test('a sub that names another ServiceAccount than the kubernetes.io claim is refused', async () => {
    const token = await signToken(rsaKey, { ...serviceAccountClaims(), sub: 'system:serviceaccount:kube-system:admin' });
    const error = await rejection(staticVerifier().verify(token), 'GH_ERR_TOKEN_SUBJECT', token);
    expect(error.message).toContain('system:serviceaccount:payments:ci-runner');
  });

  test.each([
    ['empty', ''],
    ['not a JWT (a legacy opaque token)', 'opaque-legacy-token'],
    ['not base64url JSON', 'eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln'],
    ['huge', `${'a'.repeat(20000)}.b.c`],
  ])('a token that is %s is refused as malformed', async (_name, token) => {
    await rejection(staticVerifier().verify(token), 'GH_ERR_TOKEN_MALFORMED', token);
  });

  test('unsafe settings are refused at construction', () => {
    for (const algorithms of [['none'], ['HS256'], ['RS256', 'HS512'], []]) {
      expect(() => staticVerifier({ algorithms })).toThrow(expect.objectContaining({ code: 'GH_ERR_INVALID_ARGUMENT' }));
    }
    const privateJwk = { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' };
    expect(() => staticVerifier({ jwks: { keys: [privateJwk] } })).toThrow(expect.objectContaining({ code: 'GH_ERR_INVALID_ARGUMENT' }));
    expect(() => staticVerifier({ clockSkewSeconds: -1 })).toThrow(expect.objectContaining({ code: 'GH_ERR_INVALID_ARGUMENT' }));
    expect(() => staticVerifier({ jwks: { url: 'http://jwks.example/keys' } })).toThrow(expect.objectContaining({ code: 'GH_ERR_IDENTITY_INSECURE_URL' }));
    expect(() => staticVerifier({ jwks: { url: 'http://10.0.0.1/keys', allowInsecureLoopback: true } })).toThrow(expect.objectContaining({ code: 'GH_ERR_IDENTITY_INSECURE_URL' }));
  });
});

describe('ServiceAccount token verification (JWKS from a URL)', () => {
  let server: LoopbackServer & { setKeys(next: readonly object[]): void; jwksUrl: string };

  beforeEach(async () => {
    server = await startJwksServer([rsaKey.jwk]);
  });
  afterEach(async () => {
    jest.useRealTimers();
    await server.close();
  });

  function remoteVerifier(overrides: { cooldownMs?: number; bearerToken?: () => string } = {}) {
    return createServiceAccountTokenVerifier({
      issuer: CLUSTER_ISSUER,
      jwks: { url: server.jwksUrl, allowInsecureLoopback: true, ...overrides },
      now: fixedClock,
    });
  }

  test('fetches the key set once and verifies with it, sending the operator token when configured', async () => {
    const verifier = remoteVerifier({ bearerToken: () => 'operator-token' });
    for (let i = 0; i < 3; i += 1) {
      await expect(verifier.verify(await signToken(rsaKey, serviceAccountClaims()))).resolves.toMatchObject({ namespace: 'payments' });
    }
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]?.headers.authorization).toBe('Bearer operator-token');
  });

  test('HS256 keyed with the served public key is refused without touching the key set', async () => {
    const token = publicKeyHmacToken(rsaKey, serviceAccountClaims());
    await rejection(remoteVerifier().verify(token), 'GH_ERR_TOKEN_ALGORITHM', token);
    expect(server.requests).toHaveLength(0);
  });

  test('after a key rotation the new kid is fetched', async () => {
    const verifier = remoteVerifier({ cooldownMs: 0 });
    await verifier.verify(await signToken(rsaKey, serviceAccountClaims()));
    server.setKeys([rsaKey.jwk, ecKey.jwk]);
    await expect(verifier.verify(await signToken(ecKey, serviceAccountClaims()))).resolves.toMatchObject({ serviceAccount: 'ci-runner' });
    expect(server.requests).toHaveLength(2);
  });

  test("unknown kids refetch at most once per jose's cooldown", async () => {
    // Only Date is faked: jose's cooldown reads Date.now, sockets and timers stay real.
    jest.useFakeTimers({ now: Date.now(), doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'queueMicrotask', 'hrtime', 'performance'] });
    const verifier = remoteVerifier({ cooldownMs: 30_000 });
    await verifier.verify(await signToken(rsaKey, serviceAccountClaims()));
    server.setKeys([rsaKey.jwk, ecKey.jwk]);
    const rotated = await signToken(ecKey, serviceAccountClaims());
    await rejection(verifier.verify(rotated), 'GH_ERR_TOKEN_UNKNOWN_KEY', rotated);
    const bogus = await signToken(rsaKey, serviceAccountClaims(), { kid: 'bogus' });
    await rejection(verifier.verify(bogus), 'GH_ERR_TOKEN_UNKNOWN_KEY', bogus);
    expect(server.requests).toHaveLength(1);
    jest.setSystemTime(Date.now() + 31_000);
    await expect(verifier.verify(rotated)).resolves.toMatchObject({ serviceAccount: 'ci-runner' });
    expect(server.requests).toHaveLength(2);
  });

  test('an unreachable or broken key set refuses every token', async () => {
    server.handle(() => ({ status: 500, body: 'boom' }));
    const token = await signToken(rsaKey, serviceAccountClaims());
    const error = await rejection(remoteVerifier().verify(token), 'GH_ERR_JWKS_UNAVAILABLE', token);
    expect(error.message).toContain(server.jwksUrl);
    server.handle(() => ({ status: 200, body: 'not json' }));
    await rejection(remoteVerifier().verify(token), 'GH_ERR_JWKS_UNAVAILABLE', token);
    await server.close();
    await rejection(remoteVerifier().verify(token), 'GH_ERR_JWKS_UNAVAILABLE', token);
    server = await startJwksServer([rsaKey.jwk]);
  });

  test('a key set that never arrives refuses after the timeout', async () => {
    server.handle(() => ({ status: 0, hang: true }));
    const verifier = createServiceAccountTokenVerifier({
      issuer: CLUSTER_ISSUER,
      jwks: { url: server.jwksUrl, allowInsecureLoopback: true, timeoutMs: 150 },
      now: fixedClock,
    });
    const error = await rejection(verifier.verify(await signToken(rsaKey, serviceAccountClaims())), 'GH_ERR_JWKS_UNAVAILABLE');
    expect(error.message).toContain('timed out');
  });
});
