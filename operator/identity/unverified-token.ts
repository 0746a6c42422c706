// Reads a JWT's header and claims WITHOUT verifying them. Only for choosing a verifier and for
// precise refusals (which algorithm, which key id); nothing read here may decide who a caller is.
import { decodeJwt, decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import { GatehouseError } from '../../api/errors.js';

export interface UnverifiedToken {
  readonly header: ProtectedHeaderParameters;
  readonly claims: JWTPayload;
}

// Projected tokens are about 1 KiB and CI OIDC tokens a few; a huge one is refused before any
// base64 or JSON work is spent on it.
export const MAX_TOKEN_LENGTH = 16 * 1024;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;

export function readUnverifiedToken(token: string): UnverifiedToken {
  if (token.length === 0) throw malformed('the token is empty');
  if (token.length > MAX_TOKEN_LENGTH) throw malformed(`the token is longer than ${MAX_TOKEN_LENGTH} characters`);
  if (!COMPACT_JWS.test(token)) throw malformed('expected three base64url parts separated by dots');
  try {
    return { header: decodeProtectedHeader(token), claims: decodeJwt(token) };
  } catch {
    throw malformed('the header or the claims are not base64url-encoded JSON objects');
  }
}

export function malformed(detail: string): GatehouseError {
  return new GatehouseError('GH_ERR_TOKEN_MALFORMED', { detail });
}

/** A header value fit for an error message: attacker-chosen, so shortened and stripped of oddities. */
export function printableHeaderValue(value: unknown): string {
  if (typeof value !== 'string') return value === undefined ? '(none)' : '(not a string)';
  const cleaned = value.replace(/[^\x21-\x7e]/g, '?');
  return cleaned.length > 32 ? `${cleaned.slice(0, 32)}…` : cleaned;
}
