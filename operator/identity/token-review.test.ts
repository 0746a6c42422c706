import type { ErrorCode } from '../../api/errors.js';
import { expectRefusal } from './testing/refusals.js';
import { createTokenReviewVerifier, TOKEN_REVIEW_PATH, type TokenReviewVerifierOptions } from './token-review.js';
import { createCertificate, loopbackCertificate, startLoopbackServer, type LoopbackServer, type Reply, type TlsMaterial } from './testing/loopback-servers.js';
import { NOW_SECONDS, createTestKey, fixedClock, serviceAccountClaims, signToken, type TestKey } from './testing/token-fixtures.js';

const OPERATOR_TOKEN = 'operator-own-token';

let tls: TlsMaterial;
let key: TestKey;
let server: LoopbackServer;
let workloadToken: string;

/** What a kube-apiserver answers for a pod-bound token reviewed for audience gatehouse. */
function authenticated(overrides: Record<string, unknown> = {}): Reply {
  return {
    status: 201,
    body: {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      status: {
        authenticated: true,
        audiences: ['gatehouse'],
        user: {
          username: 'system:serviceaccount:payments:ci-runner',
          uid: '9a8b7c6d-3333-4c1e-9d1a-000000000003',
          groups: ['system:serviceaccounts', 'system:serviceaccounts:payments', 'system:authenticated'],
          extra: {
            'authentication.kubernetes.io/pod-name': ['orders-7d9f8c-abcde'],
            'authentication.kubernetes.io/pod-uid': ['3c1f2a9b-2222-4c1e-9d1a-000000000002'],
            'authentication.kubernetes.io/node-name': ['node-a'],
          },
        },
        ...overrides,
      },
    },
  };
}

/** Like the API server: the operator's own bearer token must be valid before anything is reviewed. */
function apiServer(answer: (token: string) => Reply) {
  return (request: { path: string; method: string; headers: Record<string, unknown>; body: string }): Reply => {
    if (request.headers.authorization !== `Bearer ${OPERATOR_TOKEN}`) {
      return { status: 401, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 } };
    }
    if (request.method !== 'POST' || request.path !== TOKEN_REVIEW_PATH) return { status: 404, body: { kind: 'Status', code: 404 } };
    const review = JSON.parse(request.body) as { spec: { token: string } };
    return answer(review.spec.token);
  };
}

function verifier(overrides: Partial<TokenReviewVerifierOptions> = {}) {
  return createTokenReviewVerifier({ server: server.url, ca: tls.cert, bearerToken: () => OPERATOR_TOKEN, now: fixedClock, ...overrides });
}

const rejection = (promise: Promise<unknown>, code: ErrorCode) => expectRefusal(promise, code, [workloadToken, OPERATOR_TOKEN]);

beforeAll(async () => {
  [tls, key] = await Promise.all([loopbackCertificate(), createTestKey('RS256', 'rsa-1')]);
  workloadToken = await signToken(key, serviceAccountClaims());
});
beforeEach(async () => {
  server = await startLoopbackServer(apiServer(() => authenticated()), tls);
});
afterEach(async () => {
  await server.close();
});

describe('TokenReview', () => {
  test('an authenticated review yields the ServiceAccount, pod and the token expiry', async () => {
    await expect(verifier().verify(workloadToken)).resolves.toEqual({
      kind: 'serviceaccount',
      namespace: 'payments',
      serviceAccount: 'ci-runner',
      serviceAccountUid: '9a8b7c6d-3333-4c1e-9d1a-000000000003',
      pod: { name: 'orders-7d9f8c-abcde', uid: '3c1f2a9b-2222-4c1e-9d1a-000000000002' },
      expiresAt: new Date((NOW_SECONDS + 3600) * 1000),
    });
    const [request] = server.requests;
    expect(request?.headers['content-type']).toBe('application/json');
    expect(JSON.parse(request?.body ?? '')).toEqual({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token: workloadToken, audiences: ['gatehouse'] },
    });
  });

  test('authenticated: false is refused, with the API server reason but never the token', async () => {
    server.handle(apiServer((token) => ({ status: 201, body: { status: { authenticated: false, error: `[invalid bearer token, ${token} has been invalidated]` } } })));
    const error = await rejection(verifier().verify(workloadToken), 'GH_ERR_TOKEN_REVIEW_UNAUTHENTICATED');
    expect(error.message).not.toContain('invalidated');
    server.handle(apiServer(() => ({ status: 201, body: { status: { authenticated: false, error: 'token has been invalidated' } } })));
    const reasoned = await rejection(verifier().verify(workloadToken), 'GH_ERR_TOKEN_REVIEW_UNAUTHENTICATED');
    expect(reasoned.message).toContain('(token has been invalidated)');
  });

  test.each([
    ['another audience', { audiences: ['https://kubernetes.default.svc'] }],
    ['no audiences (valid only for the API server itself)', { audiences: [] }],
    ['audiences absent', { audiences: undefined }],
  ])('an authenticated review with %s is refused', async (_name, overrides) => {
    server.handle(apiServer(() => authenticated(overrides)));
    await rejection(verifier().verify(workloadToken), 'GH_ERR_TOKEN_AUDIENCE');
  });

  test('a user that is not a ServiceAccount is refused', async () => {
    server.handle(apiServer(() => authenticated({ user: { username: 'alice@example.com', uid: '1' } })));
    const error = await rejection(verifier().verify(workloadToken), 'GH_ERR_TOKEN_NOT_SERVICE_ACCOUNT');
    expect(error.message).toContain('alice@example.com');
  });

  test('a review without the pod binding is refused unless requirePod is false', async () => {
    const user = { username: 'system:serviceaccount:payments:ci-runner', uid: '9a8b', extra: {} };
    server.handle(apiServer(() => authenticated({ user })));
    await rejection(verifier().verify(workloadToken), 'GH_ERR_TOKEN_CLAIMS');
    await expect(verifier({ requirePod: false }).verify(workloadToken)).resolves.not.toHaveProperty('pod');
  });

  test.each([
    [401, 'GH_ERR_TOKEN_REVIEW_FORBIDDEN'],
    [403, 'GH_ERR_TOKEN_REVIEW_FORBIDDEN'],
    [500, 'GH_ERR_TOKEN_REVIEW_FAILED'],
    [503, 'GH_ERR_TOKEN_REVIEW_FAILED'],
  ] as const)('HTTP %i from the API server is refused as %s', async (status, code) => {
    server.handle(() => ({ status, body: { kind: 'Status', code: status } }));
    const error = await rejection(verifier().verify(workloadToken), code);
    expect(error.message).toContain(String(status));
  });

  test("the operator's own token is sent and a rejected one is reported as such", async () => {
    const error = await rejection(verifier({ bearerToken: () => 'stale-operator-token' }).verify(workloadToken), 'GH_ERR_TOKEN_REVIEW_FORBIDDEN');
    expect(error.message).toContain('system:auth-delegator');
    expect(server.requests[0]?.headers.authorization).toBe('Bearer stale-operator-token');
  });

  test('an API server that never answers is refused after the deadline', async () => {
    server.handle(() => ({ status: 0, hang: true }));
    const error = await rejection(verifier({ timeoutMs: 200 }).verify(workloadToken), 'GH_ERR_TOKEN_REVIEW_FAILED');
    expect(error.message).toContain('200 ms');
  });

  test('an answer that is not a TokenReview is refused', async () => {
    server.handle(apiServer(() => ({ status: 201, body: 'not json' })));
    await rejection(verifier().verify(workloadToken), 'GH_ERR_TOKEN_REVIEW_FAILED');
    server.handle(apiServer(() => ({ status: 201, body: { kind: 'TokenReview' } })));
    await rejection(verifier().verify(workloadToken), 'GH_ERR_TOKEN_REVIEW_FAILED');
  });

  test('a server whose certificate the CA does not vouch for gets no tokens', async () => {
    const otherCa = await createCertificate();
    await rejection(verifier({ ca: otherCa.cert }).verify(workloadToken), 'GH_ERR_TOKEN_REVIEW_FAILED');
    expect(server.requests).toHaveLength(0);
  });

  test('a plain-http API server is refused at construction, before any token could be sent', () => {
    expect(() => verifier({ server: 'http://127.0.0.1:1' })).toThrow(expect.objectContaining({ code: 'GH_ERR_IDENTITY_INSECURE_URL' }));
  });

  test('non-JWT tokens are refused without bothering the API server; tokens without exp after the review', async () => {
    await rejection(verifier().verify('legacy-opaque-token'), 'GH_ERR_TOKEN_MALFORMED');
    expect(server.requests).toHaveLength(0);
    const { exp: _exp, ...claims } = serviceAccountClaims();
    await rejection(verifier().verify(await signToken(key, claims)), 'GH_ERR_TOKEN_CLAIMS');
  });
});
