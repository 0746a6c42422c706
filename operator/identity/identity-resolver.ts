// Turns a bearer token into the NonHumanIdentity it proves: pick the verifier from the token's
// (unverified) issuer, verify, then find the one identity that claims the verified workload. This
// is the entry point the control plane's stream server calls when a sidecar connects.
import { GatehouseError, isGatehouseError, type ErrorCode } from '../../api/errors.js';
import type { NonHumanIdentity } from '../../api/kinds/kinds.js';
import { namespaceOf } from '../../api/manifests/config.js';
import type { OidcVerifier } from './oidc-verifier.js';
import { readUnverifiedToken } from './unverified-token.js';
import {
  GATEHOUSE_AUDIENCE,
  describeWorkload,
  type OidcWorkload,
  type ServiceAccountVerifier,
  type ServiceAccountWorkload,
  type WorkloadIdentity,
} from './workload-identity.js';

export interface ResolvedIdentity {
  readonly identity: NonHumanIdentity;
  readonly workload: WorkloadIdentity;
  /** When the proof runs out; the caller must authenticate again by then. */
  readonly expiresAt: Date;
}

export interface AuthenticatorOptions {
  /** In-cluster workloads: tokens whose iss is exactly `issuer` go to `verifier` (JWKS or TokenReview). */
  readonly serviceAccounts?: { readonly issuer: string; readonly verifier: ServiceAccountVerifier };
  /** External workloads: tokens whose iss is some identity's spec.oidc.issuer. */
  readonly oidc?: OidcVerifier;
  /** The current NonHumanIdentities (all namespaces), read per token so edits apply at once. */
  readonly identities: () => readonly NonHumanIdentity[];
}

export type Authenticator = (token: string) => Promise<ResolvedIdentity>;

export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  return async (token: string): Promise<ResolvedIdentity> => {
    // The unverified iss only chooses which verifier may judge the token; it proves nothing.
    const { claims } = readUnverifiedToken(token);
    const issuer = typeof claims.iss === 'string' ? claims.iss : undefined;
    const identities = options.identities();
    if (options.serviceAccounts && issuer === options.serviceAccounts.issuer) {
      const workload = await options.serviceAccounts.verifier.verify(token);
      return resolved(resolveServiceAccount(workload, identities), workload);
    }
    const oidcIdentities = issuer === undefined ? [] : identities.filter((identity) => identity.spec.oidc?.issuer === issuer);
    if (options.oidc && issuer !== undefined && oidcIdentities.length > 0) {
      const workload = await options.oidc.verify(token, { issuer, audiences: audiencesOf(oidcIdentities) });
      return resolved(resolveOidc(workload, oidcIdentities), workload);
    }
    throw new GatehouseError('GH_ERR_TOKEN_UNTRUSTED_ISSUER', {
      cluster: options.serviceAccounts ? ` (${options.serviceAccounts.issuer})` : '',
    });
  };
}

// Refusals that say nothing about the token itself. An unknown kid is among them because right
// after a key rotation it clears up once jose's cooldown lets the key set be fetched again.
const UNAVAILABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'GH_ERR_JWKS_UNAVAILABLE',
  'GH_ERR_OIDC_DISCOVERY',
  'GH_ERR_TOKEN_REVIEW_FAILED',
  'GH_ERR_TOKEN_REVIEW_FORBIDDEN',
  'GH_ERR_TOKEN_UNKNOWN_KEY',
]);

/**
 * True when an authenticator refusal means "could not verify now" (keys, discovery or the API
 * server unreachable, or the operator's own access broken) rather than "this token is bad", so the
 * caller may tell the workload to retry. The token is refused either way.
 */
export function isVerificationUnavailable(error: unknown): boolean {
  return !isGatehouseError(error) || UNAVAILABLE_CODES.has(error.code);
}

function resolved(identity: NonHumanIdentity, workload: WorkloadIdentity): ResolvedIdentity {
  return { identity, workload, expiresAt: workload.expiresAt };
}

function oidcAudience(identity: NonHumanIdentity): string {
  return identity.spec.oidc?.audience ?? GATEHOUSE_AUDIENCE;
}

function audiencesOf(identities: readonly NonHumanIdentity[]): string[] {
  return [...new Set(identities.map(oidcAudience))];
}

/** The identity in the workload's own namespace whose spec.serviceAccountName names its ServiceAccount. */
export function resolveServiceAccount(workload: ServiceAccountWorkload, identities: readonly NonHumanIdentity[]): NonHumanIdentity {
  const matches = identities.filter(
    (identity) => namespaceOf(identity) === workload.namespace && identity.spec.serviceAccountName === workload.serviceAccount,
  );
  return exactlyOne(matches, workload, `spec.serviceAccountName: ${workload.serviceAccount} in namespace ${workload.namespace}`);
}

/** The identity whose spec.oidc names the verified issuer, the exact subject and one of the token's audiences. */
export function resolveOidc(workload: OidcWorkload, identities: readonly NonHumanIdentity[]): NonHumanIdentity {
  const matches = identities.filter((identity) => {
    const oidc = identity.spec.oidc;
    return oidc !== undefined
      && oidc.issuer === workload.issuer
      && oidc.subject === workload.subject
      && workload.audiences.includes(oidcAudience(identity));
  });
  return exactlyOne(matches, workload, `spec.oidc {issuer: ${workload.issuer}, subject: ${workload.subject}}`);
}

// Two identities for one workload would make its permissions depend on which one was found first,
// so ambiguity refuses instead of picking.
function exactlyOne(matches: readonly NonHumanIdentity[], workload: WorkloadIdentity, hint: string): NonHumanIdentity {
  const [first] = matches;
  if (first === undefined) {
    throw new GatehouseError('GH_ERR_IDENTITY_UNKNOWN', { workload: describeWorkload(workload), hint });
  }
  if (matches.length > 1) {
    const names = matches.map((identity) => `${namespaceOf(identity)}/${identity.metadata.name}`).sort().join(', ');
    throw new GatehouseError('GH_ERR_IDENTITY_AMBIGUOUS', { workload: describeWorkload(workload), names });
  }
  return first;
}
