// The contract every credential strategy implements (static, postgres-dynamic, jwt): issue a
// credential for one identity on one resource, optionally renew it in place, and revoke it. The
// CredentialManager drives issuers; issuers hold no per-credential state of their own, so a manager
// restart loses nothing but the credentials themselves (which startup cleanup then removes).
import { compilePolicies, type CompiledPolicySet } from '../../api/policy/compile.js';
import type { AccessPolicy, NonHumanIdentity, ProtectedResource } from '../../api/kinds/kinds.js';
import type { UpstreamCredential } from '../../api/snapshot/sidecar-snapshot.js';
import { GatehouseError } from '../../api/errors.js';
import { namespaceOf } from '../../api/manifests/config.js';

/** Strategies that produce a credential ('none' never reaches an issuer). */
export type IssuedStrategy = 'static' | 'postgres-dynamic' | 'jwt';

/** Fraction of the lifetime after which a credential is renewed: a third of it is left as slack for retries. */
export const RENEW_FRACTION = 2 / 3;

export interface CredentialRequest {
  readonly identity: NonHumanIdentity;
  readonly resource: ProtectedResource;
  /** The AccessPolicies that apply to identity on resource; `policy` is compiled from exactly these. */
  readonly policies: readonly AccessPolicy[];
  readonly policy: CompiledPolicySet;
  /** Lifetime of the credential; issuers with expiring credentials must honour it. */
  readonly ttlMs: number;
}

export interface IssuedCredential {
  readonly strategy: IssuedStrategy;
  /** Names the credential without revealing it (role name, token jti, Secret name): safe to log. */
  readonly id: string;
  readonly username: string;
  /** The secret part: a password, or a signed token. Never log it. */
  readonly password: string;
  readonly issuedAt: number;
  /** Epoch ms after which it is useless; absent for static credentials, which do not expire. */
  readonly expiresAt?: number;
  /** Epoch ms at which the manager renews it (about two thirds of the lifetime); absent when it never expires. */
  readonly renewAt?: number;
}

export interface CredentialIssuer {
  readonly strategy: IssuedStrategy;
  issue(request: CredentialRequest): Promise<IssuedCredential>;
  /**
   * Extends `credential` for another `request.ttlMs` and brings its scope in line with
   * `request.policy`. Issuers without it are rotated instead: a new credential is issued and the
   * old one revoked when it expires.
   */
  renew?(credential: IssuedCredential, request: CredentialRequest): Promise<IssuedCredential>;
  /** Makes `credential` unusable and ends what it holds open (sessions); idempotent. */
  revoke(credential: IssuedCredential, resource: ProtectedResource): Promise<void>;
  /**
   * Removes credentials this issuer created earlier on `resource` (a previous operator process)
   * that are not in `keep` (usernames); returns the usernames removed.
   */
  cleanupLeftovers?(resource: ProtectedResource, keep: ReadonlySet<string>): Promise<readonly string[]>;
}

export interface CredentialLifetime {
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly renewAt: number;
}

/** Issue time, expiry and renewal time for a credential issued at `now` that lives `ttlMs`. */
export function credentialLifetime(now: number, ttlMs: number): CredentialLifetime {
  return { issuedAt: now, expiresAt: now + ttlMs, renewAt: now + Math.floor(ttlMs * RENEW_FRACTION) };
}

/** Throws GH_ERR_CREDENTIAL_TTL unless `request.ttlMs` is a usable lifetime. */
export function assertUsableTtl(request: CredentialRequest, minimumMs: number): void {
  const { ttlMs } = request;
  if (Number.isFinite(ttlMs) && ttlMs >= minimumMs) return;
  throw new GatehouseError('GH_ERR_CREDENTIAL_TTL', {
    ttl: ttlMs,
    identity: `${namespaceOf(request.identity)}/${request.identity.metadata.name}`,
    resource: request.resource.metadata.name,
    detail: `credentials of strategy ${request.resource.spec.credentials.strategy} need at least ${minimumMs} ms`,
  });
}

export interface CredentialRequestInit {
  readonly identity: NonHumanIdentity;
  readonly resource: ProtectedResource;
  readonly policies: readonly AccessPolicy[];
  /** Defaults to the compiled credentialTTL (smallest policy TTL, capped by the identity maximum). */
  readonly ttlMs?: number;
}

/** Compiles the policies and builds the request an issuer takes. */
export function credentialRequest(init: CredentialRequestInit): CredentialRequest {
  const { identity, resource, policies } = init;
  const policy = compilePolicies({ policies, identity, resource });
  return { identity, resource, policies, policy, ttlMs: init.ttlMs ?? policy.credentialTTL };
}

/** What goes into the sidecar snapshot. */
export function toUpstreamCredential(credential: IssuedCredential): UpstreamCredential {
  return {
    username: credential.username,
    password: credential.password,
    ...(credential.expiresAt === undefined ? {} : { expiresAt: credential.expiresAt }),
  };
}
