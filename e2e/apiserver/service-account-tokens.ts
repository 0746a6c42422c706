// The API server's ServiceAccount token issuer: signs projected-token-shaped JWTs (ES256) for
// TokenRequest, checks them for TokenReview and API authentication, and publishes the key set
// (/openid/v1/jwks) and discovery document (/.well-known/openid-configuration) as the real one does.
import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export interface TokenSubject {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly serviceAccountUid: string;
  readonly audiences: readonly string[];
  readonly expirationSeconds?: number;
  readonly pod?: { readonly name: string; readonly uid: string };
}

export interface ReviewedToken {
  readonly username: string;
  readonly uid: string;
  readonly groups: string[];
  readonly audiences: string[];
  readonly extra: Record<string, string[]>;
}

interface KubernetesClaims {
  namespace: string;
  serviceaccount: { name: string; uid: string };
  pod?: { name: string; uid: string };
  node?: { name: string; uid: string };
  warnafter?: number;
}

/** The real server's default and bounds for expirationSeconds. */
const DEFAULT_EXPIRATION_SECONDS = 3600;
const MIN_EXPIRATION_SECONDS = 600;

export class ServiceAccountTokenIssuer {
  private constructor(
    readonly issuer: string,
    private readonly kid: string,
    private readonly privateKey: CryptoKey,
    private readonly publicKey: CryptoKey,
    readonly publicJwk: JWK,
  ) {}

  static async create(issuer: string): Promise<ServiceAccountTokenIssuer> {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(jwk);
    return new ServiceAccountTokenIssuer(issuer, kid, privateKey, publicKey, { ...jwk, kid, alg: 'ES256', use: 'sig' });
  }

  /** Signs a token; expirationSeconds below the real minimum (600) is raised to it, as the real server does. */
  async issue(subject: TokenSubject): Promise<{ token: string; expiresAt: Date }> {
    const now = Math.floor(Date.now() / 1000);
    const lifetime = Math.max(subject.expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS, MIN_EXPIRATION_SECONDS);
    const kubernetes: KubernetesClaims = {
      namespace: subject.namespace,
      serviceaccount: { name: subject.serviceAccount, uid: subject.serviceAccountUid },
      ...(subject.pod === undefined ? {} : { pod: { ...subject.pod } }),
    };
    const token = await new SignJWT({ 'kubernetes.io': kubernetes } as unknown as JWTPayload)
      .setProtectedHeader({ alg: 'ES256', kid: this.kid })
      .setIssuer(this.issuer)
      .setSubject(`system:serviceaccount:${subject.namespace}:${subject.serviceAccount}`)
      .setAudience([...subject.audiences])
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + lifetime)
      .setJti(randomUUID())
      .sign(this.privateKey);
    return { token, expiresAt: new Date((now + lifetime) * 1000) };
  }

  /**
   * Verifies signature, issuer, time and that the token is meant for one of `audiences`; returns what a
   * TokenReview reports, or undefined with the reason in `error`.
   */
  async review(token: string, audiences: readonly string[]): Promise<{ user?: ReviewedToken; audiences?: string[]; error?: string }> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.publicKey, { issuer: this.issuer, algorithms: ['ES256'] }));
    } catch (error) {
      return { error: `invalid bearer token, ${error instanceof Error ? error.message : 'verification failed'}` };
    }
    const tokenAudiences = typeof payload.aud === 'string' ? [payload.aud] : payload.aud ?? [];
    const matched = tokenAudiences.filter((audience) => audiences.includes(audience));
    if (matched.length === 0) return { error: 'invalid bearer token, token audiences are invalid' };
    const claims = (payload as { 'kubernetes.io'?: KubernetesClaims })['kubernetes.io'];
    if (claims === undefined) return { error: 'invalid bearer token, no kubernetes.io claims' };
    const extra: Record<string, string[]> = { 'authentication.kubernetes.io/credential-id': [`JTI=${payload.jti}`] };
    if (claims.pod !== undefined) {
      extra['authentication.kubernetes.io/pod-name'] = [claims.pod.name];
      extra['authentication.kubernetes.io/pod-uid'] = [claims.pod.uid];
    }
    return {
      audiences: matched,
      user: {
        username: `system:serviceaccount:${claims.namespace}:${claims.serviceaccount.name}`,
        uid: claims.serviceaccount.uid,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${claims.namespace}`, 'system:authenticated'],
        audiences: matched,
        extra,
      },
    };
  }

  jwks(): { keys: JWK[] } {
    return { keys: [this.publicJwk] };
  }

  openIdConfiguration(jwksUri: string): Record<string, unknown> {
    return {
      issuer: this.issuer,
      jwks_uri: jwksUri,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['ES256'],
    };
  }
}
