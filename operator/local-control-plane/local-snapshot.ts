// What the local control plane serves one identity, built from a config folder: the grants the
// CredentialManager keeps credentials for, and the snapshot with the credentials it issued. The
// selection (which resources, which policies) is buildSnapshotFromConfig's, so local mode and
// `gatehouse explain` can never disagree about who may reach what.
import { createHash } from 'node:crypto';
import type { ProtectedResource } from '../../api/kinds/kinds.js';
import { namespaceOf, type GatehouseConfig } from '../../api/manifests/config.js';
import {
  buildSnapshotFromConfig, snapshotVersion, type SidecarSnapshot, type SnapshotResource, type UpstreamCredential,
} from '../../api/snapshot/sidecar-snapshot.js';
import type { CredentialGrant } from '../credentials/credential-manager.js';

export interface LocalSelection {
  /** Identity, resources and policies; credentials are not filled in here. */
  readonly snapshot: SidecarSnapshot;
  /** One per resource in the snapshot: what the CredentialManager must hold. */
  readonly grants: readonly CredentialGrant[];
}

/**
 * Content of the Secret a resource's credentials come from (static: the login; postgres-dynamic:
 * the admin), hashed: an edited Secret re-issues the credential, and no secret value leaves here.
 */
function secretRevision(config: GatehouseConfig, resource: ProtectedResource): string | undefined {
  const name = resource.spec.credentials.secretRef?.name;
  const secret = config.secrets.find((candidate) => candidate.metadata.name === name && namespaceOf(candidate) === namespaceOf(resource));
  if (!secret) return undefined;
  const entries = Object.entries(secret.data).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256').update(JSON.stringify(entries)).digest('hex').slice(0, 16);
}

/** Throws GH_ERR_REF_UNKNOWN_IDENTITY when the identity is not in the folder (or is ambiguous). */
export function selectForIdentity(config: GatehouseConfig, identity: string, namespace?: string): LocalSelection {
  // buildSnapshotFromConfig reads static logins straight from Secrets; here the CredentialManager issues them.
  const snapshot = withCredentials(buildSnapshotFromConfig(config, identity, namespace), () => undefined);
  const grants = snapshot.resources.map((entry) => {
    const revision = secretRevision(config, entry.resource);
    return { identity: snapshot.identity, resource: entry.resource, policies: entry.policies, ...(revision ? { revision } : {}) };
  });
  return { snapshot, grants };
}

/**
 * The snapshot with each resource's current credential (absent when none was issued). Key order
 * matches what the sidecar reassembles from the wire, so both compute the same version.
 */
export function withCredentials(
  snapshot: SidecarSnapshot,
  credentialFor: (resource: ProtectedResource) => UpstreamCredential | undefined,
): SidecarSnapshot {
  const resources: SnapshotResource[] = snapshot.resources.map((entry) => {
    const credential = credentialFor(entry.resource);
    return {
      resource: entry.resource,
      policies: entry.policies,
      ...(credential ? { credential } : {}),
      ...(entry.caPem !== undefined ? { caPem: entry.caPem } : {}),
    };
  });
  return { version: snapshotVersion({ identity: snapshot.identity, resources }), identity: snapshot.identity, resources };
}
