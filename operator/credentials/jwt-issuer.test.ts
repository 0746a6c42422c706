// JWT credentials verified the way a service would, with jose against the published JWKS: claims,
// audience and expiry, key rotation that keeps old kids verifiable until their tokens expire, and
// the JWKS served over real HTTP at /.well-known/jwks.json.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTVerifyOptions } from 'jose';
import type { PolicyRuleT } from '../../api/kinds/kinds.js';
import { identity, policy, resource } from './credential-fixtures.js';
import { credentialRequest, type CredentialRequest } from './credential-issuer.js';
import { createJwksHandler, JWKS_PATH } from './jwks-handler.js';
import { JwtIssuer, tokenScope } from './jwt-issuer.js';
import { ManualScheduler } from './manual-scheduler.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2030, 0, 1);
const api = resource('billing-api', { protocol: 'http', address: 'https://billing.payments.svc', credentials: { strategy: 'jwt' } });
const caller = identity('invoice-bot', { groups: ['billing', 'bots'] });

function request(rules: readonly PolicyRuleT[] = [{ effect: 'allow', operations: ['read'], paths: ['/v1/**'] }], ttl = '10m'): CredentialRequest {
  return credentialRequest({
    identity: caller,
    resource: api,
    policies: [policy('bot-access', ['invoice-bot'], ['billing-api'], rules, { credentialTTL: ttl })],
  });
}

function verifyOptions(atMs: number, extra: JWTVerifyOptions = {}): JWTVerifyOptions {
  return { issuer: 'gatehouse', audience: 'https://billing.payments.svc', algorithms: ['ES256'], currentDate: new Date(atMs), ...extra };
}

async function errorCode(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

describe('JwtIssuer', () => {
  let clock: ManualScheduler;
  let issuer: JwtIssuer;

  beforeEach(() => {
    clock = new ManualScheduler(T0);
    issuer = new JwtIssuer({ clock, rotationIntervalMs: 6 * HOUR, prepublishMs: 15 * 60_000, leewayMs: 60_000 });
  });

  test('mints ES256 tokens that verify against the JWKS with the expected claims', async () => {
    const credential = await issuer.issue(request());
    const { payload, protectedHeader } = await jwtVerify(credential.password, createLocalJWKSet(await issuer.jwks()), verifyOptions(T0));
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    expect(protectedHeader.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(payload).toMatchObject({
      iss: 'gatehouse',
      sub: 'payments/invoice-bot',
      aud: 'https://billing.payments.svc',
      groups: ['billing', 'bots'],
      scope: 'read',
      iat: T0 / 1000,
      exp: T0 / 1000 + 600,
    });
    expect(payload.jti).toBe(credential.id.replace(/^jti\//, ''));
    expect(credential).toMatchObject({ strategy: 'jwt', username: 'payments/invoice-bot', expiresAt: T0 + 600_000, renewAt: T0 + 400_000 });
  });

  test('the JWKS holds public keys only', async () => {
    await issuer.issue(request());
    const { keys } = await issuer.jwks();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(keys[0]).not.toHaveProperty('d');
  });

  test('expired tokens and tokens for another audience are rejected', async () => {
    const credential = await issuer.issue(request(undefined, '2m'));
    const jwks = createLocalJWKSet(await issuer.jwks());
    expect(await errorCode(jwtVerify(credential.password, jwks, verifyOptions(T0 + 121_000)))).toBe('ERR_JWT_EXPIRED');
    expect(await errorCode(jwtVerify(credential.password, jwks, verifyOptions(T0, { audience: 'https://other.svc' })))).toBe('ERR_JWT_CLAIM_VALIDATION_FAILED');
  });

  test('rotation: the next key is published early, old kids verify until their last token expired', async () => {
    const first = await issuer.issue(request(undefined, '1h'));
    const firstKid = decodeProtectedHeader(first.password).kid;

    await clock.advance(6 * HOUR - 10 * 60_000);
    expect((await issuer.jwks()).keys).toHaveLength(2);
    const stillFirst = await issuer.issue(request(undefined, '1h'));
    expect(decodeProtectedHeader(stillFirst.password).kid).toBe(firstKid);

    await clock.advance(10 * 60_000);
    const second = await issuer.issue(request(undefined, '1h'));
    const secondKid = decodeProtectedHeader(second.password).kid;
    expect(secondKid).not.toBe(firstKid);
    const kids = (await issuer.jwks()).keys.map((key) => key.kid);
    expect(kids).toEqual(expect.arrayContaining([firstKid, secondKid]));
    await jwtVerify(stillFirst.password, createLocalJWKSet(await issuer.jwks()), verifyOptions(clock.now()));

    // stillFirst expires 50 minutes into the new key's life; one minute of leeway later its kid is gone.
    await clock.advance(50 * 60_000 + 60_001);
    const late = await issuer.jwks();
    expect(late.keys.map((key) => key.kid)).toEqual([secondKid]);
    const code = await errorCode(jwtVerify(stillFirst.password, createLocalJWKSet(late), verifyOptions(T0 + 6 * HOUR)));
    expect(code).toBe('ERR_JWKS_NO_MATCHING_KEY');
  });

  test('rotateKeys switches now and keeps the old key while its tokens live', async () => {
    const before = await issuer.issue(request());
    await issuer.rotateKeys();
    const after = await issuer.issue(request());
    expect(decodeProtectedHeader(after.password).kid).not.toBe(decodeProtectedHeader(before.password).kid);
    await jwtVerify(before.password, createLocalJWKSet(await issuer.jwks()), verifyOptions(clock.now()));
  });

  test('scope: operations some rule may let through, minus those denied everywhere', () => {
    const rules: PolicyRuleT[] = [
      { effect: 'allow', operations: ['read'], paths: ['/v1/**'] },
      { effect: 'require-approval', operations: ['write', 'delete'], paths: ['/v1/invoices/*'], approval: { approvers: { groups: ['finance'] } } },
      { effect: 'deny', operations: ['delete'] },
      { effect: 'deny', operations: ['write'], paths: ['/v1/admin/**'] },
    ];
    expect(tokenScope(request(rules))).toEqual(['read', 'write']);
  });
});

describe('JWKS over HTTP', () => {
  let server: Server;
  let base: string;
  const issuer = new JwtIssuer({ issuer: 'gatehouse' });

  beforeAll(async () => {
    const jwks = createJwksHandler(issuer, { maxAgeSeconds: 30 });
    server = createServer((req, res) => {
      if (jwks(req, res)) return;
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('a service verifies tokens with jose against the served JWKS', async () => {
    const credential = await issuer.issue(request());
    const remote = createRemoteJWKSet(new URL(`${base}${JWKS_PATH}`));
    const { payload } = await jwtVerify(credential.password, remote, {
      issuer: 'gatehouse', audience: 'https://billing.payments.svc', algorithms: ['ES256'],
    });
    expect(payload.sub).toBe('payments/invoice-bot');
  });

  test('serves the JWKS media type with a short cache; other paths and methods are not its business', async () => {
    const response = await fetch(`${base}${JWKS_PATH}?x=1`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/jwk-set+json');
    expect(response.headers.get('cache-control')).toBe('public, max-age=30');
    expect(((await response.json()) as { keys: unknown[] }).keys.length).toBeGreaterThan(0);
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
    const post = await fetch(`${base}${JWKS_PATH}`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });
});
