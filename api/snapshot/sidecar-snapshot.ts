// What one sidecar needs to enforce, as plain data: its identity, and for each resource it may reach
// the policies that apply and the credential to use upstream. The control plane builds it (from a
// cluster, or from a config folder in local mode); the sidecar only consumes it.
import { createHash } from 'node:crypto';
import { GatehouseError } from '../errors.js';
import type { AccessPolicy, NonHumanIdentity, ProtectedResource } from '../kinds/kinds.js';
import type { GatehouseConfig, Secret } from '../manifests/config.js';
import { namespaceOf } from '../manifests/namespace.js';
import { selectPolicies } from '../policy/compile.js';

export interface UpstreamCredential {
  readonly username: string;
  readonly password: string;
  /** Epoch ms after which the sidecar must not use it; absent for static credentials. */
  readonly expiresAt?: number;
}

export interface SnapshotResource {
  readonly resource: ProtectedResource;
  /** The AccessPolicies whose subjects include the identity and whose resources include this one. */
  readonly policies: readonly AccessPolicy[];
  /** Absent when the resource needs none, or when the identity may not receive it. */
  readonly credential?: UpstreamCredential;
  /** PEM CA for tls.mode verify-full. */
  readonly caPem?: string;
}

export interface SidecarSnapshot {
  /** Content hash: equal snapshots have equal versions. */
  readonly version: string;
  readonly identity: NonHumanIdentity;
  readonly resources: readonly SnapshotResource[];
}

export function policiesFor(
  policies: readonly AccessPolicy[],
  identity: NonHumanIdentity,
  resource: ProtectedResource,
): AccessPolicy[] {
  return selectPolicies({ policies, identity, resource });
}

function findSecret(secrets: readonly Secret[], namespace: string, name: string | undefined): Secret | undefined {
  return name === undefined ? undefined : secrets.find((secret) => secret.metadata.name === name && namespaceOf(secret) === namespace);
}

function staticCredential(resource: ProtectedResource, secrets: readonly Secret[]): UpstreamCredential | undefined {
  const { strategy, secretRef } = resource.spec.credentials;
  if (strategy !== 'static') return undefined;
  const secret = findSecret(secrets, namespaceOf(resource), secretRef?.name);
  const username = secret?.data.username;
  const password = secret?.data.password;
  return username !== undefined && password !== undefined ? { username, password } : undefined;
}

export function snapshotVersion(content: unknown): string {
  return createHash('sha256').update(JSON.stringify(content)).digest('hex').slice(0, 16);
}

/**
 * Builds the snapshot for `identityName` from a config folder (local mode). Only resources some
 * policy grants the identity are included, so a sidecar never holds credentials it may not use.
 */
export function buildSnapshotFromConfig(config: GatehouseConfig, identityName: string, namespace?: string): SidecarSnapshot {
  const candidates = config.identities.filter(
    (identity) => identity.metadata.name === identityName && (namespace === undefined || namespaceOf(identity) === namespace),
  );
  if (candidates.length !== 1) {
    throw new GatehouseError('GH_ERR_REF_UNKNOWN_IDENTITY', {
      name: identityName,
      namespace: namespace ?? (candidates.length > 1 ? 'several namespaces (pass --namespace)' : 'any namespace'),
    });
  }
  const identity = candidates[0]!;
  const resources: SnapshotResource[] = [];
  for (const resource of config.resources) {
    const policies = policiesFor(config.policies, identity, resource);
    if (policies.length === 0) continue;
    const caName = resource.spec.tls?.caSecretRef;
    const caSecret = findSecret(config.secrets, namespaceOf(resource), caName?.name);
    const caPem = caSecret?.data[caName?.key ?? 'ca.crt'];
    const credential = staticCredential(resource, config.secrets);
    resources.push({ resource, policies, ...(credential ? { credential } : {}), ...(caPem ? { caPem } : {}) });
  }
  return { version: snapshotVersion({ identity, resources }), identity, resources };
}
