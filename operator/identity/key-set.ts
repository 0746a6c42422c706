// Where an issuer's public keys come from: a JWKS URL fetched and cached by jose (refetched when a
// token names an unknown kid, at most once per cooldown), or a static key set given in config.
import { createLocalJWKSet, createRemoteJWKSet, customFetch, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { GatehouseError } from '../../api/errors.js';
import { checkedUrl, joseFetch, type HttpsClientOptions } from './https-client.js';

export interface RemoteJwksOptions extends HttpsClientOptions {
  readonly url: string | URL;
  /** Least time between two fetches triggered by unknown key ids (jose cooldownDuration). Default 30 s. */
  readonly cooldownMs?: number;
  /** The set is refetched after this long even if every kid is known (jose cacheMaxAge). Default 10 min. */
  readonly cacheMaxAgeMs?: number;
}

export type JwksSource = RemoteJwksOptions | JSONWebKeySet;

export interface KeySet {
  readonly keys: JWTVerifyGetKey;
  /** Names the source in error messages. */
  readonly description: string;
}

export function createKeySet(source: JwksSource): KeySet {
  if ('keys' in source) return staticKeySet(source);
  const url = checkedUrl(source.url, source.allowInsecureLoopback);
  const keys = createRemoteJWKSet(url, {
    timeoutDuration: source.timeoutMs,
    cooldownDuration: source.cooldownMs,
    cacheMaxAge: source.cacheMaxAgeMs,
    [customFetch]: joseFetch(source),
  });
  return { keys, description: url.origin + url.pathname };
}

function staticKeySet(jwks: JSONWebKeySet): KeySet {
  // A private or symmetric key in config would be a leak and an HS* confusion risk: refuse it early.
  for (const key of jwks.keys) {
    if (key.kty === 'oct' || 'd' in key) {
      throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', {
        detail: `static key set holds a private or symmetric key (kid ${key.kid ?? 'none'}); give only public keys`,
      });
    }
  }
  return { keys: createLocalJWKSet(jwks), description: 'a static key set' };
}
