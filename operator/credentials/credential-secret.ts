// Reads the username/password Secret a ProtectedResource names in spec.credentials.secretRef. The
// lookup is passed in (a Kubernetes informer cache, or a config folder in local mode), so the
// issuers never decide where Secrets come from.
import { GatehouseError } from '../../api/errors.js';
import type { ProtectedResource } from '../../api/kinds/kinds.js';
import { namespaceOf, type Secret } from '../../api/manifests/config.js';

/** Finds a Secret by namespace and name; undefined when it does not exist. */
export type SecretLookup = (namespace: string, name: string) => Secret | undefined | Promise<Secret | undefined>;

export interface CredentialSecret {
  /** namespace/name of the Secret, for messages. */
  readonly secret: string;
  readonly username: string;
  readonly password: string;
}

/** The resource's credential Secret; GH_ERR_REF_UNKNOWN_SECRET or GH_ERR_REF_SECRET_KEYS when unusable. */
export async function readCredentialSecret(lookup: SecretLookup, resource: ProtectedResource): Promise<CredentialSecret> {
  const namespace = namespaceOf(resource);
  const { strategy, secretRef } = resource.spec.credentials;
  const name = secretRef?.name;
  const secret = name === undefined ? undefined : await lookup(namespace, name);
  if (name === undefined || secret === undefined) {
    throw new GatehouseError('GH_ERR_REF_UNKNOWN_SECRET', { name: name ?? '(no secretRef)', namespace, strategy });
  }
  const { username, password } = secret.data;
  const missing = [username ? undefined : 'username', password ? undefined : 'password'].filter((key) => key !== undefined);
  if (username === undefined || password === undefined || missing.length > 0) {
    throw new GatehouseError('GH_ERR_REF_SECRET_KEYS', { name, keys: missing.join(', ') });
  }
  return { secret: `${namespace}/${name}`, username, password };
}

/** A lookup over Secrets held in memory (local mode, tests). */
export function secretsFromList(secrets: readonly Secret[]): SecretLookup {
  return (namespace, name) => secrets.find((secret) => secret.metadata.name === name && namespaceOf(secret) === namespace);
}
