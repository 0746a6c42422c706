// The JWT checks ServiceAccount and OIDC tokens share: an asymmetric algorithm allow-list, the
// signature against the issuer's keys, issuer, audience, exp/nbf with a small clock skew, and
// jose's errors turned into GH_ERR_* codes that name what failed but never echo the token.
import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { GatehouseError } from '../../api/errors.js';
import { printableHeaderValue, readUnverifiedToken } from './unverified-token.js';

// Only public-key signatures: `none` proves nothing, and HS* "verified" with a public key lets
// anyone who has the (public) key sign (algorithm confusion).
export const SUPPORTED_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'] as const;
export type SigningAlgorithm = (typeof SUPPORTED_ALGORITHMS)[number];
/** Kubernetes ServiceAccount issuers and the common CI OIDC issuers sign with these. */
export const DEFAULT_ALGORITHMS: readonly SigningAlgorithm[] = ['RS256', 'ES256'];
export const DEFAULT_CLOCK_SKEW_SECONDS = 30;

export interface JwtExpectations {
  readonly issuer: string;
  /** The token must carry at least one of these in aud. */
  readonly audiences: readonly string[];
  readonly algorithms: readonly SigningAlgorithm[];
  readonly clockSkewSeconds: number;
  readonly now: () => Date;
  /** Where the keys come from, for error messages (a JWKS URL, or "a static key set"). */
  readonly keySource: string;
  readonly subject?: string;
  readonly maxTokenAgeSeconds?: number;
}

/** Verified claims; exp is always present because verification requires it. */
export type VerifiedClaims = JWTPayload & { readonly exp: number };

/** Checks a configured allow-list at construction, so a bad setting fails at startup, not per token. */
export function checkAlgorithms(algorithms: readonly string[] | undefined): readonly SigningAlgorithm[] {
  if (algorithms === undefined) return DEFAULT_ALGORITHMS;
  if (algorithms.length === 0) throw invalidSetting('algorithms must list at least one algorithm');
  for (const algorithm of algorithms) {
    if (!(SUPPORTED_ALGORITHMS as readonly string[]).includes(algorithm)) {
      throw invalidSetting(`algorithm ${algorithm} is not allowed; use asymmetric ones: ${SUPPORTED_ALGORITHMS.join(', ')}`);
    }
  }
  return algorithms as readonly SigningAlgorithm[];
}

export function checkClockSkew(seconds: number | undefined): number {
  if (seconds === undefined) return DEFAULT_CLOCK_SKEW_SECONDS;
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > 300) {
    throw invalidSetting('clockSkewSeconds must be between 0 and 300');
  }
  return seconds;
}

function invalidSetting(detail: string): GatehouseError {
  return new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail });
}

export async function verifyJwt(token: string, keys: JWTVerifyGetKey, expect: JwtExpectations): Promise<VerifiedClaims> {
  const { header } = readUnverifiedToken(token);
  // Checked before jose so the refusal is precise and no key is ever looked up for `none` or HS*.
  if (typeof header.alg !== 'string' || !(expect.algorithms as readonly string[]).includes(header.alg)) {
    throw algorithmError(header.alg, expect.algorithms);
  }
  try {
    const { payload } = await jwtVerify(token, keys, {
      issuer: expect.issuer,
      audience: [...expect.audiences],
      algorithms: [...expect.algorithms],
      clockTolerance: expect.clockSkewSeconds,
      currentDate: expect.now(),
      requiredClaims: ['exp'],
      subject: expect.subject,
      maxTokenAge: expect.maxTokenAgeSeconds,
    });
    return payload as VerifiedClaims;
  } catch (error) {
    throw toTokenError(error, expect, header);
  }
}

function algorithmError(algorithm: unknown, accepted: readonly string[]): GatehouseError {
  return new GatehouseError('GH_ERR_TOKEN_ALGORITHM', {
    algorithm: printableHeaderValue(algorithm),
    accepted: accepted.join(', '),
  });
}

/** Maps jose's failure to our code. jose checks the signature before any claim, so claim details are trustworthy. */
export function toTokenError(error: unknown, expect: JwtExpectations, { alg, kid }: { alg?: unknown; kid?: unknown }): GatehouseError {
  if (error instanceof GatehouseError) return error;
  if (error instanceof errors.JWTExpired) return expiredError(error);
  if (error instanceof errors.JWTClaimValidationFailed) return claimError(error, expect);
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return new GatehouseError('GH_ERR_TOKEN_SIGNATURE', { issuer: expect.issuer });
  }
  if (error instanceof errors.JWKSNoMatchingKey) return unknownKeyError(expect, kid, '');
  if (error instanceof errors.JWKSMultipleMatchingKeys) {
    return unknownKeyError(expect, kid, ' as the only match (several keys fit and the token names no kid)');
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return algorithmError(alg, expect.algorithms);
  // JOSENotSupported: e.g. a crit header parameter nobody here understands, which RFC 7515 says to refuse.
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid || error instanceof errors.JOSENotSupported) {
    return new GatehouseError('GH_ERR_TOKEN_MALFORMED', { detail: error.message });
  }
  return keysUnavailable(error, expect);
}

function expiredError(error: InstanceType<typeof errors.JWTExpired>): GatehouseError {
  const { exp } = error.payload;
  const detail = error.claim === 'exp' && typeof exp === 'number'
    ? `at ${new Date(exp * 1000).toISOString()}`
    : 'it is older than the maximum token age';
  return new GatehouseError('GH_ERR_TOKEN_EXPIRED', { detail });
}

function claimError(error: InstanceType<typeof errors.JWTClaimValidationFailed>, expect: JwtExpectations): GatehouseError {
  if (error.reason === 'check_failed') {
    switch (error.claim) {
      case 'iss':
        return new GatehouseError('GH_ERR_TOKEN_ISSUER', { issuer: expect.issuer });
      case 'aud':
        return new GatehouseError('GH_ERR_TOKEN_AUDIENCE', { audience: expect.audiences.join(' or ') });
      case 'sub':
        return new GatehouseError('GH_ERR_TOKEN_SUBJECT', { expected: expect.subject ?? '(none)', detail: '' });
      case 'nbf':
        return notYetValid(error.payload.nbf);
      case 'iat':
        return new GatehouseError('GH_ERR_TOKEN_NOT_YET_VALID', { notBefore: 'its issue time (iat is in the future)' });
    }
  }
  return new GatehouseError('GH_ERR_TOKEN_CLAIMS', {
    claim: error.claim,
    reason: error.reason === 'missing' ? 'missing' : 'invalid',
    hint: 'the token was not minted by the expected issuer, or is damaged',
  });
}

function notYetValid(nbf: unknown): GatehouseError {
  const notBefore = typeof nbf === 'number' ? new Date(nbf * 1000).toISOString() : 'its nbf time';
  return new GatehouseError('GH_ERR_TOKEN_NOT_YET_VALID', { notBefore });
}

function unknownKeyError(expect: JwtExpectations, kid: unknown, detail: string): GatehouseError {
  return new GatehouseError('GH_ERR_TOKEN_UNKNOWN_KEY', {
    kid: printableHeaderValue(kid),
    issuer: expect.issuer,
    detail: `${detail} (keys from ${expect.keySource})`,
  });
}

function keysUnavailable(error: unknown, expect: JwtExpectations): GatehouseError {
  const detail = error instanceof errors.JWKSTimeout
    ? 'the request timed out'
    : error instanceof Error ? error.message : 'unknown failure';
  return new GatehouseError('GH_ERR_JWKS_UNAVAILABLE', { issuer: expect.issuer, url: expect.keySource, detail }, { cause: error });
}
