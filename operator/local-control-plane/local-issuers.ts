// The credential issuers local mode runs: the same static, postgres-dynamic and jwt issuers as the
// operator, over the Secrets of the config folder. Against the demo database (PGlite, which has no
// login roles) postgres-dynamic is replaced by an issuer that refuses with a message saying so.
import { GatehouseError } from '../../api/errors.js';
import type { ProtectedResource } from '../../api/kinds/kinds.js';
import type { Logger } from '../../api/logging/logger.js';
import type { CredentialIssuer, CredentialRequest, IssuedCredential } from '../credentials/credential-issuer.js';
import type { CredentialIssuers } from '../credentials/credential-manager.js';
import type { SecretLookup } from '../credentials/credential-secret.js';
import { JwtIssuer } from '../credentials/jwt-issuer.js';
import { PostgresDynamicIssuer } from '../credentials/postgres-dynamic-issuer.js';
import { StaticCredentialIssuer } from '../credentials/static-issuer.js';

/**
 * Roles local mode creates are named apart from the operator's (`gh_`), so neither one's startup
 * cleanup can ever take the other's roles on a shared server.
 */
export const LOCAL_ROLE_PREFIX = 'ghdev_';

export interface LocalIssuerOptions {
  readonly secrets: SecretLookup;
  readonly logger: Logger;
  /** Resources point at the embedded demo database, which cannot hold dynamic roles. */
  readonly demoDatabase: boolean;
}

/** postgres-dynamic against PGlite: every issue is refused, by name, with what to do instead. */
export class DemoDatabaseDynamicIssuer implements CredentialIssuer {
  readonly strategy = 'postgres-dynamic';

  async issue(request: CredentialRequest): Promise<IssuedCredential> {
    throw new GatehouseError('GH_ERR_LOCAL_DEMO_DYNAMIC_ROLES', { resource: request.resource.metadata.name });
  }

  async revoke(_credential: IssuedCredential, _resource: ProtectedResource): Promise<void> {}
}

export function localCredentialIssuers(options: LocalIssuerOptions): CredentialIssuers {
  const { secrets, logger } = options;
  return {
    static: new StaticCredentialIssuer({ secrets }),
    'postgres-dynamic': options.demoDatabase
      ? new DemoDatabaseDynamicIssuer()
      : new PostgresDynamicIssuer({ secrets, logger, rolePrefix: LOCAL_ROLE_PREFIX }),
    // Issued and delivered like in a cluster; the PostgreSQL sidecar has no use for it (http resources do).
    jwt: new JwtIssuer({ logger, issuer: 'gatehouse-dev' }),
  };
}
