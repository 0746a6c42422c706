import type { ErrorCode } from '../../api/errors.js';
import { expectRefusal } from './testing/refusals.js';
import { createOidcVerifier, type OidcVerifierOptions } from './oidc-verifier.js';
import { loopbackCertificate, startLoopbackServer, type LoopbackServer, type Reply, type TlsMaterial } from './testing/loopback-servers.js';
import { NOW, NOW_SECONDS, createTestKey, publicKeyHmacToken, signToken, unsignedToken, type TestKey } from './testing/token-fixtures.js';

const SUBJECT = 'repo:acme/orders:ref:refs/heads/main';

let tls: TlsMaterial;
let key: TestKey;
let otherKey: TestKey;
let issuer: LoopbackServer;
let now: Date;

/** A CI system's OIDC issuer: discovery at the well-known path, keys at jwks_uri. */
function issuerRoutes(keys: () => readonly object[], documentIssuer?: string) {
  return (request: { path: string }): Reply => {
    if (request.path === '/.well-known/openid-configuration') {
      return { status: 200, body: { issuer: documentIssuer ?? issuer.url, jwks_uri: `${issuer.url}/keys`, id_token_signing_alg_values_supported: ['RS256'] } };
    }
    if (request.path === '/keys') return { status: 200, body: { keys: keys() } };
    return { status: 404, body: 'not found' };
  };
}

function ciClaims(overrides: Record<string, unknown> = {}) {
  return { iss: issuer.url, aud: 'gatehouse', sub: SUBJECT, iat: NOW_SECONDS - 10, nbf: NOW_SECONDS - 10, exp: NOW_SECONDS + 300, repository: 'acme/orders', ...overrides };
}

function verifier(overrides: Partial<OidcVerifierOptions> = {}) {
  return createOidcVerifier({ http: { ca: tls.cert }, now: () => now, ...overrides });
}

const expected = () => ({ issuer: issuer.url, audiences: ['gatehouse'], subject: SUBJECT });

const rejection = (promise: Promise<unknown>, code: ErrorCode, token?: string) => expectRefusal(promise, code, token ? [token] : []);

const paths = () => issuer.requests.map((request) => request.path);

beforeAll(async () => {
  [tls, key, otherKey] = await Promise.all([loopbackCertificate(), createTestKey('RS256', 'ci-1'), createTestKey('ES256', 'ci-2')]);
});
beforeEach(async () => {
  now = NOW;
  issuer = await startLoopbackServer(() => ({ status: 500 }), tls);
  issuer.handle(issuerRoutes(() => [key.jwk]));
});
afterEach(async () => {
  await issuer.close();
});

describe('OIDC verification of external workloads', () => {
  test('a valid CI token is verified through discovery over https', async () => {
    const token = await signToken(key, ciClaims());
    await expect(verifier().verify(token, expected())).resolves.toEqual({
      kind: 'oidc',
      issuer: issuer.url,
      subject: SUBJECT,
      audiences: ['gatehouse'],
      expiresAt: new Date((NOW_SECONDS + 300) * 1000),
    });
    expect(paths()).toEqual(['/.well-known/openid-configuration', '/keys']);
  });

  test('an expired CI token is refused', async () => {
    const token = await signToken(key, ciClaims({ exp: NOW_SECONDS - 60 }));
    await rejection(verifier().verify(token, expected()), 'GH_ERR_TOKEN_EXPIRED', token);
  });

  test('a token for another subject is refused (exact match, no prefixes)', async () => {
    for (const sub of ['repo:acme/orders:ref:refs/heads/main-evil', 'repo:acme/orders', 'repo:acme/other:ref:refs/heads/main']) {
      const token = await signToken(key, ciClaims({ sub }));
      await rejection(verifier().verify(token, expected()), 'GH_ERR_TOKEN_SUBJECT', token);
    }
  });

  test('a token for another audience, or from another issuer, is refused', async () => {
    const foreignAudience = await signToken(key, ciClaims({ aud: ['sts.amazonaws.com'] }));
    await rejection(verifier().verify(foreignAudience, expected()), 'GH_ERR_TOKEN_AUDIENCE', foreignAudience);
    const foreignIssuer = await signToken(key, ciClaims({ iss: 'https://token.actions.example' }));
    await rejection(verifier().verify(foreignIssuer, expected()), 'GH_ERR_TOKEN_ISSUER', foreignIssuer);
  });

  test('forged, unsigned and algorithm-confused tokens are refused', async () => {
    const impostor = await createTestKey('RS256', key.kid);
    const forged = await signToken(impostor, ciClaims());
    await rejection(verifier().verify(forged, expected()), 'GH_ERR_TOKEN_SIGNATURE', forged);
    const wrongKeyType = await signToken({ ...otherKey, kid: key.kid }, ciClaims());
    await rejection(verifier().verify(wrongKeyType, expected()), 'GH_ERR_TOKEN_UNKNOWN_KEY', wrongKeyType);
    const none = unsignedToken(ciClaims(), key.kid);
    await rejection(verifier().verify(none, expected()), 'GH_ERR_TOKEN_ALGORITHM', none);
    const confused = publicKeyHmacToken(key, ciClaims());
    await rejection(verifier().verify(confused, expected()), 'GH_ERR_TOKEN_ALGORITHM', confused);
  });

  test('a token without sub is refused even when no subject is expected', async () => {
    const { sub: _sub, ...claims } = ciClaims();
    const token = await signToken(key, claims);
    await rejection(verifier().verify(token, { issuer: issuer.url, audiences: ['gatehouse'] }), 'GH_ERR_TOKEN_CLAIMS', token);
  });

  test('discovery is cached for its TTL, then fetched again; the key set survives an unchanged jwks_uri', async () => {
    const oidc = verifier({ discoveryTtlMs: 60_000 });
    for (let i = 0; i < 3; i += 1) await oidc.verify(await signToken(key, ciClaims()), expected());
    expect(paths()).toEqual(['/.well-known/openid-configuration', '/keys']);
    now = new Date(NOW.getTime() + 61_000);
    await oidc.verify(await signToken(key, ciClaims({ exp: NOW_SECONDS + 600 })), expected());
    expect(paths()).toEqual(['/.well-known/openid-configuration', '/keys', '/.well-known/openid-configuration']);
  });

  test('concurrent first tokens share one discovery', async () => {
    const oidc = verifier();
    const token = await signToken(key, ciClaims());
    await Promise.all([oidc.verify(token, expected()), oidc.verify(token, expected()), oidc.verify(token, expected())]);
    expect(paths().filter((path) => path.startsWith('/.well-known'))).toHaveLength(1);
  });

  test('a rotated CI key is fetched when a token names its kid', async () => {
    const oidc = verifier({ jwksCooldownMs: 0 });
    await oidc.verify(await signToken(key, ciClaims()), expected());
    issuer.handle(issuerRoutes(() => [key.jwk, otherKey.jwk]));
    await expect(oidc.verify(await signToken(otherKey, ciClaims()), expected())).resolves.toMatchObject({ subject: SUBJECT });
    expect(paths().filter((path) => path === '/keys')).toHaveLength(2);
  });

  test('a discovery document naming another issuer is refused', async () => {
    issuer.handle(issuerRoutes(() => [key.jwk], 'https://evil.example'));
    const token = await signToken(key, ciClaims());
    const error = await rejection(verifier().verify(token, expected()), 'GH_ERR_OIDC_DISCOVERY', token);
    expect(error.message).toContain('different issuer');
  });

  test('failed discovery refuses, is not cached, and the next token retries', async () => {
    issuer.handle(() => ({ status: 404, body: 'nope' }));
    const oidc = verifier();
    const token = await signToken(key, ciClaims());
    await rejection(oidc.verify(token, expected()), 'GH_ERR_OIDC_DISCOVERY', token);
    issuer.handle(issuerRoutes(() => [key.jwk]));
    await expect(oidc.verify(token, expected())).resolves.toMatchObject({ subject: SUBJECT });
  });

  test('plain http is refused, for the issuer and for jwks_uri, unless loopback is explicitly allowed', async () => {
    const plain = await startLoopbackServer(() => ({ status: 500 }));
    try {
      plain.handle((request) => request.path === '/keys'
        ? { status: 200, body: { keys: [key.jwk] } }
        : { status: 200, body: { issuer: plain.url, jwks_uri: `${plain.url}/keys` } });
      const token = await signToken(key, ciClaims({ iss: plain.url }));
      const target = { issuer: plain.url, audiences: ['gatehouse'], subject: SUBJECT };
      await rejection(verifier().verify(token, target), 'GH_ERR_IDENTITY_INSECURE_URL', token);
      expect(plain.requests).toHaveLength(0);
      await expect(verifier({ http: { allowInsecureLoopback: true } }).verify(token, target)).resolves.toMatchObject({ issuer: plain.url });
      // An https issuer whose discovery points its keys at plain http is refused too.
      issuer.handle((request) => ({ status: 200, body: request.path.startsWith('/.well-known') ? { issuer: issuer.url, jwks_uri: `${plain.url}/keys` } : {} }));
      await rejection(verifier().verify(await signToken(key, ciClaims()), expected()), 'GH_ERR_IDENTITY_INSECURE_URL');
    } finally {
      await plain.close();
    }
  });
});
