// What a PostgreSQL session needs to know about its resource at any moment: the compiled policy,
// the masker, the upstream credential. Built once per snapshot and swapped atomically on reload,
// so a policy edit applies to the next statement of every live session.
import { GatehouseError } from '../../../api/errors.js';
import type { ProtectedResource } from '../../../api/kinds/kinds.js';
import { compilePolicies, type CompiledPolicySet } from '../../../api/policy/compile.js';
import { compileTableGlob } from '../../../api/policy/glob.js';
import type { QualifiedName } from '../../../api/sql/operations.js';
import type { NonHumanIdentity } from '../../../api/kinds/kinds.js';
import type { SnapshotResource, UpstreamCredential } from '../../../api/snapshot/sidecar-snapshot.js';
import { createMasker, type Masker } from '../../masking/masker.js';
import type { UpstreamTlsOptions } from '../upstream/upstream-transport.js';
import { ColumnCatalog } from './column-catalog.js';

export interface PostgresResourceState {
  /** Snapshot version this state was built from. */
  readonly version: string;
  readonly identity: string;
  readonly resource: ProtectedResource;
  readonly policy: CompiledPolicySet;
  readonly masker: Masker;
  readonly catalog: ColumnCatalog;
  /** Whether a COPY ... TO STDOUT of these tables could carry a column that a rule masks. */
  copyOutHitsMaskedColumns(tables: readonly QualifiedName[]): boolean;
  readonly credential?: UpstreamCredential;
  readonly caPem?: string;
  /** Set when new sessions must be refused whatever the credential says, with this as the FATAL's text. */
  readonly refusal?: string;
}

/** Where sessions read the current state; undefined when the identity lost access altogether. */
export interface PostgresResourceHandle {
  readonly name: string;
  current(): PostgresResourceState | undefined;
}

function copyOutCheck(columnGlobs: readonly string[]): (tables: readonly QualifiedName[]) => boolean {
  // COPY output carries no column names, so a masked column cannot be found in it: any rule that
  // could name a column of a copied table makes the COPY a deny (fail closed). A rule naming a bare
  // column matches whatever is copied, even `COPY (SELECT * FROM some_function()) TO STDOUT`,
  // which names no table at all but can return that column.
  if (columnGlobs.some((glob) => !glob.includes('.'))) return () => true;
  const matchers = columnGlobs.map((glob) => compileTableGlob(glob.split('.').slice(0, -1).join('.')));
  return (tables) => matchers.some((matchTable) => tables.some((table) => matchTable(table)));
}

/** TLS towards the resource, the same for sessions and for the cancel requests sent on their behalf. */
export function upstreamTlsOptions(state: PostgresResourceState): UpstreamTlsOptions {
  const tls = state.resource.spec.tls;
  return {
    mode: tls?.mode ?? 'prefer',
    ...(state.caPem ? { caPem: state.caPem } : {}),
    ...(tls?.serverName ? { servername: tls.serverName } : {}),
  };
}

export function buildResourceState(
  identity: NonHumanIdentity,
  entry: SnapshotResource,
  version: string,
  hashKey: Uint8Array,
): PostgresResourceState {
  const policy = compilePolicies({ policies: entry.policies, identity, resource: entry.resource });
  const masker = createMasker(policy.masking, { hashKey });
  const columnGlobs = policy.masking.flatMap((rule) => rule.columns ?? []);
  const check = copyOutCheck(columnGlobs);
  if (entry.resource.spec.protocol !== 'postgres') {
    throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `resource ${entry.resource.metadata.name} is not postgres` });
  }
  return {
    version,
    identity: identity.metadata.name,
    resource: entry.resource,
    policy,
    masker,
    catalog: new ColumnCatalog(columnGlobs),
    copyOutHitsMaskedColumns: (tables) => columnGlobs.length > 0 && check(tables),
    ...(entry.credential ? { credential: entry.credential } : {}),
    ...(entry.caPem ? { caPem: entry.caPem } : {}),
  };
}
