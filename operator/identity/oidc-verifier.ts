// Verifies OIDC tokens of external workloads (a CI system's job token) for NonHumanIdentities with
// spec.oidc. The issuer's keys are found by OpenID discovery (issuer → jwks_uri, cached with a
// TTL) and fetched by jose. Only issuers named in NonHumanIdentities are ever asked, so a token
// cannot make the operator fetch from a URL of its choosing.
import { GatehouseError } from '../../api/errors.js';
import { checkedUrl, getJson, type HttpsClientOptions } from './https-client.js';
import { checkAlgorithms, checkClockSkew, verifyJwt, type JwtExpectations, type SigningAlgorithm } from './jwt-verification.js';
import { createKeySet, type KeySet } from './key-set.js';
import type { OidcWorkload } from './workload-identity.js';

export interface OidcVerifierOptions {
  /** Asymmetric algorithms accepted; default RS256 and ES256. */
  readonly algorithms?: readonly string[];
  /** Tolerance for exp and nbf; default 30 s. */
  readonly clockSkewSeconds?: number;
  readonly maxTokenAgeSeconds?: number;
  /** How long a discovery document is used before it is fetched again. Default 1 h. */
  readonly discoveryTtlMs?: number;
  /** For discovery and JWKS: CA bundle, timeout; allowInsecureLoopback only in tests. */
  readonly http?: Omit<HttpsClientOptions, 'bearerToken'>;
  /** Least time between JWKS refetches for unknown key ids (jose cooldown). Default 30 s. */
  readonly jwksCooldownMs?: number;
  readonly jwksCacheMaxAgeMs?: number;
  readonly now?: () => Date;
}

export interface OidcExpectations {
  /** The configured issuer (a NonHumanIdentity's spec.oidc.issuer), matched exactly against iss. */
  readonly issuer: string;
  /** The token must carry at least one of these in aud. */
  readonly audiences: readonly string[];
  /** When given, sub must equal it exactly. */
  readonly subject?: string;
}

export interface OidcVerifier {
  verify(token: string, expected: OidcExpectations): Promise<OidcWorkload>;
}

const DEFAULT_DISCOVERY_TTL_MS = 60 * 60 * 1000;
const DISCOVERY_PATH = '/.well-known/openid-configuration';

interface IssuerKeys {
  readonly fetchedAt: number;
  readonly jwksUri: string;
  readonly keySet: KeySet;
}

interface Settings {
  readonly algorithms: readonly SigningAlgorithm[];
  readonly clockSkewSeconds: number;
  readonly now: () => Date;
}

export function createOidcVerifier(options: OidcVerifierOptions = {}): OidcVerifier {
  const settings: Settings = {
    algorithms: checkAlgorithms(options.algorithms),
    clockSkewSeconds: checkClockSkew(options.clockSkewSeconds),
    now: options.now ?? (() => new Date()),
  };
  const discovery = new DiscoveryCache(options, settings.now);
  return {
    async verify(token: string, expected: OidcExpectations): Promise<OidcWorkload> {
      const { keySet } = await discovery.keysFor(expected.issuer);
      const expect: JwtExpectations = {
        ...settings,
        issuer: expected.issuer,
        audiences: expected.audiences,
        subject: expected.subject,
        keySource: keySet.description,
        maxTokenAgeSeconds: options.maxTokenAgeSeconds,
      };
      const claims = await verifyJwt(token, keySet.keys, expect);
      if (typeof claims.sub !== 'string' || claims.sub.length === 0) throw missingSubject();
      return {
        kind: 'oidc',
        issuer: expected.issuer,
        subject: claims.sub,
        audiences: typeof claims.aud === 'string' ? [claims.aud] : [...(claims.aud ?? [])],
        expiresAt: new Date(claims.exp * 1000),
      };
    },
  };
}

function missingSubject(): GatehouseError {
  return new GatehouseError('GH_ERR_TOKEN_CLAIMS', {
    claim: 'sub',
    reason: 'missing',
    hint: 'spec.oidc.subject is matched against sub, so the issuer must set it',
  });
}

/** Per issuer: the discovered jwks_uri and jose's key set for it; one discovery in flight at a time. */
class DiscoveryCache {
  readonly #entries = new Map<string, IssuerKeys>();
  readonly #inFlight = new Map<string, Promise<IssuerKeys>>();
  readonly #ttlMs: number;

  constructor(private readonly options: OidcVerifierOptions, private readonly now: () => Date) {
    this.#ttlMs = options.discoveryTtlMs ?? DEFAULT_DISCOVERY_TTL_MS;
  }

  keysFor(issuer: string): Promise<IssuerKeys> {
    const cached = this.#entries.get(issuer);
    if (cached && this.now().getTime() - cached.fetchedAt < this.#ttlMs) return Promise.resolve(cached);
    let pending = this.#inFlight.get(issuer);
    if (!pending) {
      // A failed discovery is not cached: the next token retries, and until then tokens are refused.
      pending = this.#discover(issuer, cached).finally(() => this.#inFlight.delete(issuer));
      this.#inFlight.set(issuer, pending);
    }
    return pending;
  }

  async #discover(issuer: string, previous: IssuerKeys | undefined): Promise<IssuerKeys> {
    const jwksUri = await discoverJwksUri(issuer, this.options.http ?? {});
    // Keeping jose's key set when jwks_uri is unchanged keeps its cache and cooldown too.
    const keySet = previous?.jwksUri === jwksUri ? previous.keySet : this.#keySetFor(jwksUri);
    const entry: IssuerKeys = { fetchedAt: this.now().getTime(), jwksUri, keySet };
    this.#entries.set(issuer, entry);
    return entry;
  }

  #keySetFor(jwksUri: string): KeySet {
    return createKeySet({
      ...this.options.http,
      url: jwksUri,
      cooldownMs: this.options.jwksCooldownMs,
      cacheMaxAgeMs: this.options.jwksCacheMaxAgeMs,
    });
  }
}

/** Fetches the issuer's discovery document and returns its jwks_uri, checked like the spec asks. */
export async function discoverJwksUri(issuer: string, http: Omit<HttpsClientOptions, 'bearerToken'>): Promise<string> {
  const url = checkedUrl(`${issuer.replace(/\/+$/, '')}${DISCOVERY_PATH}`, http.allowInsecureLoopback);
  let document: unknown;
  try {
    document = await getJson(url, http);
  } catch (error) {
    throw discoveryFailed(issuer, error instanceof Error ? error.message : 'request failed', error);
  }
  const fields = typeof document === 'object' && document !== null ? (document as Record<string, unknown>) : {};
  // OpenID Connect Discovery 1.0 §4.3: the document must name exactly the issuer it was fetched for,
  // otherwise one issuer could vouch for another's keys.
  if (fields.issuer !== issuer) throw discoveryFailed(issuer, 'the document names a different issuer');
  if (typeof fields.jwks_uri !== 'string') throw discoveryFailed(issuer, 'the document has no jwks_uri');
  return checkedUrl(fields.jwks_uri, http.allowInsecureLoopback).href;
}

function discoveryFailed(issuer: string, detail: string, cause?: unknown): GatehouseError {
  return new GatehouseError('GH_ERR_OIDC_DISCOVERY', { issuer, detail }, { cause });
}
