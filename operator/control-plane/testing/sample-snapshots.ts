// Sample snapshots for tests and benchmarks, built from config/samples, and variants of them that
// change exactly one resource type (a policy edit, a credential rotation).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AccessPolicy } from '../../../api/kinds/kinds.js';
import { loadConfigDir } from '../../../api/manifests/config.js';
import { toResourceSets, type ResourceSets } from '../../../api/proto/snapshot-resources.js';
import { buildSnapshotFromConfig, snapshotVersion, type SidecarSnapshot } from '../../../api/snapshot/sidecar-snapshot.js';

const REPO_ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');

export interface Samples {
  /** ci-runner in payments: orders-db with a static credential. */
  readonly ciRunner: SidecarSnapshot;
  /** billing-service in payments: two resources, one with a CA. */
  readonly billing: SidecarSnapshot;
}

export async function loadSamples(): Promise<Samples> {
  const config = await loadConfigDir(join(REPO_ROOT, 'config', 'samples'));
  return {
    ciRunner: buildSnapshotFromConfig(config, 'ci-runner', 'payments'),
    billing: buildSnapshotFromConfig(config, 'billing-service', 'payments'),
  };
}

function rebuilt(identity: SidecarSnapshot['identity'], resources: SidecarSnapshot['resources']): SidecarSnapshot {
  return { version: snapshotVersion({ identity, resources }), identity, resources };
}

/** The same snapshot with every policy's deny message changed: only IdentityPolicy differs. */
export function withPolicyRevision(snapshot: SidecarSnapshot, revision: number): SidecarSnapshot {
  const revise = (policy: AccessPolicy): AccessPolicy => ({
    ...policy,
    metadata: { ...policy.metadata, annotations: { ...policy.metadata.annotations, 'test.gatehouse.dev/revision': String(revision) } },
  });
  return rebuilt(snapshot.identity, snapshot.resources.map((entry) => ({ ...entry, policies: entry.policies.map(revise) })));
}

/** The same snapshot with rotated credentials expiring at `expiresAt`: only Credential differs. */
export function withCredential(snapshot: SidecarSnapshot, password: string, expiresAt?: number): SidecarSnapshot {
  return rebuilt(
    snapshot.identity,
    snapshot.resources.map((entry) =>
      entry.credential ? { ...entry, credential: { username: entry.credential.username, password, ...(expiresAt !== undefined ? { expiresAt } : {}) } } : entry,
    ),
  );
}

export function setsFor(snapshot: SidecarSnapshot): ResourceSets {
  return toResourceSets(snapshot);
}
