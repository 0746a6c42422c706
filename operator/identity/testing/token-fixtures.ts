// Real keys and real tokens for the identity tests: jose generates RS256 and ES256 key pairs and
// signs ServiceAccount-shaped and OIDC-shaped JWTs; the attacks (alg none, HS256 keyed with the
// public key, tampering) are built by hand because no honest library will produce them.
import { createHmac } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export interface TestKey {
  readonly alg: 'RS256' | 'ES256';
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** Public JWK as an issuer publishes it (kid, alg, use). */
  readonly jwk: JWK;
  /** The public key in PEM, what an algorithm-confusion attacker would use as an HMAC secret. */
  readonly publicPem: string;
}

export async function createTestKey(alg: 'RS256' | 'ES256', kid: string): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, jwk, publicPem: await exportSPKI(publicKey) };
}

export const CLUSTER_ISSUER = 'https://kubernetes.default.svc.cluster.local';
/** Tests run on a fixed clock so expiry cases never depend on when they run. */
export const NOW = new Date('2031-05-04T12:00:00Z');
export const NOW_SECONDS = Math.floor(NOW.getTime() / 1000);
export const fixedClock = (): Date => NOW;

export interface ServiceAccountClaimsInput {
  readonly namespace?: string;
  readonly serviceAccount?: string;
  readonly pod?: string;
}

/** Claims a kube-apiserver puts into a projected, pod-bound token for audience gatehouse. */
export function serviceAccountClaims(input: ServiceAccountClaimsInput = {}): JWTPayload {
  const namespace = input.namespace ?? 'payments';
  const serviceAccount = input.serviceAccount ?? 'ci-runner';
  return {
    iss: CLUSTER_ISSUER,
    aud: ['gatehouse'],
    sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
    iat: NOW_SECONDS - 60,
    nbf: NOW_SECONDS - 60,
    exp: NOW_SECONDS + 3600,
    jti: 'b6d2c1e0-7f1c-4a52-9d8e-0f2b3c4d5e6f',
    'kubernetes.io': {
      namespace,
      node: { name: 'node-a', uid: '0b8d6c9e-1111-4c1e-9d1a-000000000001' },
      pod: { name: input.pod ?? 'orders-7d9f8c-abcde', uid: '3c1f2a9b-2222-4c1e-9d1a-000000000002' },
      serviceaccount: { name: serviceAccount, uid: '9a8b7c6d-3333-4c1e-9d1a-000000000003' },
      warnafter: NOW_SECONDS + 3000,
    },
  };
}

export async function signToken(key: TestKey, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, ...header }).sign(key.privateKey);
}

function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

/** An unsecured JWT (`alg: none`, empty signature), which must never verify. */
export function unsignedToken(claims: JWTPayload, kid?: string): string {
  return `${base64url(JSON.stringify({ alg: 'none', typ: 'JWT', kid }))}.${base64url(JSON.stringify(claims))}.`;
}

/** HS256 keyed with the issuer's public key: passes only a verifier that lets the token choose the algorithm. */
export function publicKeyHmacToken(key: TestKey, claims: JWTPayload, secret: string = key.publicPem): string {
  const signingInput = `${base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: key.kid }))}.${base64url(JSON.stringify(claims))}`;
  const signature = createHmac('sha256', secret).update(signingInput).digest('base64url');
  return `${signingInput}.${signature}`;
}

/** Swaps the payload of a validly signed token, keeping the original signature. */
export function withPayload(token: string, claims: JWTPayload): string {
  const [header, , signature] = token.split('.');
  return `${header}.${base64url(JSON.stringify(claims))}.${signature}`;
}
