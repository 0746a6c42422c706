// The credential issuers the operator runs, over the Secrets in its informer cache, each wrapped so
// the control plane knows which issued credentials are not yet revoked per resource. The
// CredentialManager forgets a credential when it releases it, even if the revocation failed and is
// being retried; the ProtectedResource finalizer must not let the object go while one is left.
import type { ProtectedResource } from '../../api/kinds/kinds.js';
import type { Logger } from '../../api/logging/logger.js';
import { namespaceOf } from '../../api/manifests/config.js';
import type { CredentialIssuer, CredentialRequest, IssuedCredential } from '../credentials/credential-issuer.js';
import type { CredentialIssuers } from '../credentials/credential-manager.js';
import type { SecretLookup } from '../credentials/credential-secret.js';
import { JwtIssuer } from '../credentials/jwt-issuer.js';
import { PostgresDynamicIssuer } from '../credentials/postgres-dynamic-issuer.js';
import { StaticCredentialIssuer } from '../credentials/static-issuer.js';
import { decodeSecret, type ObjectStore, type KubeSecret } from '../reconcile/cluster-objects.js';

export interface ClusterIssuerOptions {
  readonly secrets: SecretLookup;
  readonly logger: Logger;
  /** `iss` of the JWTs this operator mints. */
  readonly jwtIssuer: string;
  /** Prefix of dynamic PostgreSQL roles; the issuer's default (`gh_`) when absent. */
  readonly rolePrefix?: string;
}

export function clusterCredentialIssuers(options: ClusterIssuerOptions): CredentialIssuers {
  const { secrets, logger } = options;
  return {
    static: new StaticCredentialIssuer({ secrets }),
    'postgres-dynamic': new PostgresDynamicIssuer({ secrets, logger, ...(options.rolePrefix ? { rolePrefix: options.rolePrefix } : {}) }),
    jwt: new JwtIssuer({ logger, issuer: options.jwtIssuer }),
  };
}

/** Secrets by namespace and name from the informer cache, decoded as the issuers take them. */
export function secretLookupFrom(store: ObjectStore<KubeSecret>): SecretLookup {
  return (namespace, name) => {
    const secret = store.get(namespace, name);
    return secret ? decodeSecret(secret) : undefined;
  };
}

function resourceKey(resource: ProtectedResource): string {
  return `${namespaceOf(resource)}/${resource.metadata.name}`;
}

interface Outstanding {
  readonly credential: IssuedCredential;
  readonly issuer: CredentialIssuer;
}

/** Remembers every credential issued until its revocation succeeds, per resource. */
export class RevocationLedger {
  private readonly outstanding = new Map<string, Map<string, Outstanding>>();

  /** The issuers, each reporting to this ledger; give these to the CredentialManager. */
  track(issuers: CredentialIssuers): CredentialIssuers {
    const tracked: CredentialIssuers = {};
    for (const [strategy, issuer] of Object.entries(issuers) as [keyof CredentialIssuers, CredentialIssuer | undefined][]) {
      if (issuer) tracked[strategy] = this.wrap(issuer);
    }
    return tracked;
  }

  /** Credentials of the resource not (yet) known to be revoked. */
  pending(resource: ProtectedResource): number {
    return this.outstanding.get(resourceKey(resource))?.size ?? 0;
  }

  /** Revokes what is left on the resource (revocation is idempotent); returns the failures, which stay for a retry. */
  async revokeRemaining(resource: ProtectedResource): Promise<Error[]> {
    const entries = [...(this.outstanding.get(resourceKey(resource))?.values() ?? [])];
    const failures: Error[] = [];
    for (const { credential, issuer } of entries) {
      await issuer.revoke(credential, resource).then(
        () => this.forget(resource, credential),
        (error: unknown) => failures.push(error instanceof Error ? error : new Error(String(error))),
      );
    }
    return failures;
  }

  private wrap(inner: CredentialIssuer): CredentialIssuer {
    const remember = (request: CredentialRequest, credential: IssuedCredential): IssuedCredential => {
      const key = resourceKey(request.resource);
      let entries = this.outstanding.get(key);
      if (!entries) this.outstanding.set(key, (entries = new Map()));
      entries.set(credential.id, { credential, issuer: inner });
      return credential;
    };
    const tracked: CredentialIssuer = {
      strategy: inner.strategy,
      issue: async (request) => remember(request, await inner.issue(request)),
      revoke: async (credential, resource) => {
        await inner.revoke(credential, resource);
        this.forget(resource, credential);
      },
    };
    // Renewal keeps the credential's id; it is tracked under it already.
    if (inner.renew) tracked.renew = (credential, request) => inner.renew!(credential, request).then((renewed) => remember(request, renewed));
    if (inner.cleanupLeftovers) tracked.cleanupLeftovers = (resource, keep) => inner.cleanupLeftovers!(resource, keep);
    return tracked;
  }

  private forget(resource: ProtectedResource, credential: IssuedCredential): void {
    const key = resourceKey(resource);
    const entries = this.outstanding.get(key);
    entries?.delete(credential.id);
    if (entries?.size === 0) this.outstanding.delete(key);
  }
}
