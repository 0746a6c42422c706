// The `static` strategy: the username and password from the resource's Secret, unchanged. Whether
// the identity may have it at all is the caller's decision (the CredentialManager issues only when
// some AccessPolicy grants the identity the resource); the credential never expires, and revoking
// it only stops Gatehouse delivering it, since the Secret is shared and managed outside Gatehouse.
import type { ProtectedResource } from '../../api/kinds/kinds.js';
import type { CredentialIssuer, CredentialRequest, IssuedCredential } from './credential-issuer.js';
import { readCredentialSecret, type SecretLookup } from './credential-secret.js';
import { systemScheduler, type Clock } from './scheduler.js';

export interface StaticCredentialIssuerOptions {
  readonly secrets: SecretLookup;
  readonly clock?: Clock;
}

export class StaticCredentialIssuer implements CredentialIssuer {
  readonly strategy = 'static';
  private readonly secrets: SecretLookup;
  private readonly clock: Clock;

  constructor(options: StaticCredentialIssuerOptions) {
    this.secrets = options.secrets;
    this.clock = options.clock ?? systemScheduler;
  }

  async issue(request: CredentialRequest): Promise<IssuedCredential> {
    const secret = await readCredentialSecret(this.secrets, request.resource);
    return {
      strategy: 'static',
      id: `secret/${secret.secret}`,
      username: secret.username,
      password: secret.password,
      issuedAt: this.clock.now(),
    };
  }

  /** Nothing to undo upstream: the Secret belongs to whoever manages the database. */
  async revoke(_credential: IssuedCredential, _resource: ProtectedResource): Promise<void> {}
}
