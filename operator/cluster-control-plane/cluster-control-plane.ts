// The cluster's control plane: what LocalControlPlane is for one identity from a folder, this is for
// every pod in the cluster that carries the sidecar. Each pod is a node (`namespace/pod`) in the
// SnapshotCache, acting as the NonHumanIdentity that names its ServiceAccount; its snapshot comes
// from selectForIdentity, the selection local mode uses, over the namespace's objects from the
// informer caches. Credentials come from one shared CredentialManager, one per identity and
// resource however many pods share them.
//
// Any change (a Gatehouse object, a Secret, a pod) schedules one recompute after a short debounce.
// A recompute publishes at once with the credentials the manager holds now, and only then asks the
// manager to catch up (issue, re-scope, revoke): a removed policy reaches the sidecars without
// waiting for a database, and the catch-up publishes again when credentials change.
import { Counter, Gauge, type Registry } from 'prom-client';
import { GatehouseError } from '../../api/errors.js';
import type { AccessPolicy, NonHumanIdentity, ObjectMeta, ProtectedResource } from '../../api/kinds/kinds.js';
import type { Logger } from '../../api/logging/logger.js';
import { namespaceOf, type GatehouseConfig } from '../../api/manifests/config.js';
import { toResourceSets, type ResourceSets } from '../../api/proto/snapshot-resources.js';
import type { SidecarSnapshot } from '../../api/snapshot/sidecar-snapshot.js';
import type { SnapshotCache } from '../control-plane/snapshot-cache.js';
import { toUpstreamCredential } from '../credentials/credential-issuer.js';
import { CredentialManager, credentialKeyOf, type CredentialGrant, type CredentialIssuers } from '../credentials/credential-manager.js';
import type { Scheduler } from '../credentials/scheduler.js';
import { selectForIdentity, withCredentials, type LocalSelection } from '../local-control-plane/local-snapshot.js';
import { configFromStores, configOf } from '../reconcile/cluster-config.js';
import type { ClusterStores, KubePod, ObjectStore } from '../reconcile/cluster-objects.js';
import type { CredentialRevoker } from '../reconcile/resource-reconciler.js';
import { RevocationLedger } from './cluster-issuers.js';
import { carriesSidecar, identityOfPod, nodeIdOfPod } from './sidecar-pods.js';

export interface ClusterControlPlaneOptions {
  readonly stores: ClusterStores & { readonly pods: ObjectStore<KubePod> };
  readonly cache: SnapshotCache;
  /** The issuers, untracked; the control plane wraps them to follow revocations. */
  readonly issuers: CredentialIssuers;
  readonly logger: Logger;
  readonly registry?: Registry;
  /** Quiet time after a change before recomputing. Default 20 ms. */
  readonly debounceMs?: number;
  /** After a credential failed to issue, recompute again this much later. Default 15 s. */
  readonly retryFailedMs?: number;
  readonly scheduler?: Scheduler;
  /** A node's snapshot was removed (its pod is gone): forget its metrics. */
  readonly onNodeRemoved?: (nodeId: string) => void;
}

interface PodAssignment {
  readonly identityKey: string;
}

interface ControlPlaneMetrics {
  readonly nodes: Gauge;
  readonly recomputes: Counter;
  readonly credentialFailures: Counter<'namespace' | 'resource'>;
}

function createMetrics(registry: Registry | undefined): ControlPlaneMetrics | undefined {
  if (!registry) return undefined;
  const registers = [registry];
  return {
    nodes: new Gauge({ name: 'gatehouse_control_plane_sidecar_pods', help: 'Pods with a sidecar that hold a snapshot in the cache.', registers }),
    recomputes: new Counter({ name: 'gatehouse_control_plane_recomputes_total', help: 'Recomputations of every sidecar pod\'s snapshot after cluster changes.', registers }),
    credentialFailures: new Counter({
      name: 'gatehouse_control_plane_credential_failures_total',
      help: 'Credentials that could not be issued, renewed or revoked in a sync, by resource; retried.',
      labelNames: ['namespace', 'resource'],
      registers,
    }),
  };
}

function identityKeyOf(identity: NonHumanIdentity): string {
  return `${namespaceOf(identity)}/${identity.metadata.name}`;
}

export class ClusterControlPlane implements CredentialRevoker {
  private readonly manager: CredentialManager;
  private readonly ledger = new RevocationLedger();
  private readonly log: Logger;
  private readonly metrics: ControlPlaneMetrics | undefined;
  private readonly debounceMs: number;
  private readonly retryFailedMs: number;
  /** Per identity (namespace/name) with pods: the selection of the last recompute. */
  private selections = new Map<string, LocalSelection>();
  /** Per node with a snapshot: whom it acts as, or the identity it last had (served an empty snapshot). */
  private assignments = new Map<string, PodAssignment>();
  /** Identities whose pods lost them: they keep this identity with no resources, so nothing stays allowed. */
  private orphaned = new Map<string, NonHumanIdentity>();
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private recomputeWanted = false;
  private publishWanted = false;
  private wantedGrants: readonly CredentialGrant[] | undefined;
  private syncing: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: ClusterControlPlaneOptions) {
    this.log = options.logger.child({ component: 'cluster-control-plane' });
    this.metrics = createMetrics(options.registry);
    this.debounceMs = options.debounceMs ?? 20;
    this.retryFailedMs = options.retryFailedMs ?? 15_000;
    this.manager = new CredentialManager({
      issuers: this.ledger.track(options.issuers),
      logger: options.logger,
      ...(options.scheduler ? { scheduler: options.scheduler } : {}),
    });
    this.manager.subscribe(() => this.schedule('publish'));
  }

  /** Computes and publishes every pod's snapshot now (the informers must have synced). */
  start(): void {
    this.recompute();
  }

  /** Something in the cluster changed: recompute after the debounce. */
  changed(): void {
    this.schedule('recompute');
  }

  /** Node ids that hold a snapshot. */
  nodeIds(): string[] {
    return [...this.assignments.keys()];
  }

  /** Resolves once no recompute is scheduled and no credential sync runs (tests, shutdown). */
  async settled(): Promise<void> {
    for (;;) {
      if (this.timer !== undefined) {
        this.flush();
        continue;
      }
      if (this.syncing === undefined) return;
      await this.syncing;
    }
  }

  /**
   * Revokes every credential issued on `resource` (the ProtectedResource finalizer). The resource
   * is being deleted, so a recompute now stops granting it; then whatever is left is released, and
   * credentials whose revocation failed earlier are revoked again. Rejects while any remain.
   */
  async revokeResource(resource: ProtectedResource): Promise<void> {
    this.recompute();
    await this.settled();
    const namespace = namespaceOf(resource);
    const left = this.manager.keys().filter((key) => key.namespace === namespace && key.resource === resource.metadata.name);
    for (const key of left) await this.manager.release(key).catch(() => undefined);
    for (const failure of await this.ledger.revokeRemaining(resource)) {
      this.log.warn({ resource: `${namespace}/${resource.metadata.name}`, err: failure.message }, 'revocation failed; the finalizer stays');
    }
    const pending = this.ledger.pending(resource);
    if (pending > 0) throw new GatehouseError('GH_ERR_CLUSTER_REVOCATION_PENDING', { resource: `${namespace}/${resource.metadata.name}`, count: pending });
  }

  /** Stops recomputing; with `revoke`, revokes every credential (dynamic roles dropped, their sessions ended). */
  async close(options: { revoke?: boolean } = {}): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearTimeout(this.retryTimer);
    this.timer = undefined;
    await this.syncing;
    await this.manager.close(options);
  }

  private schedule(what: 'recompute' | 'publish'): void {
    if (this.closed) return;
    if (what === 'recompute') this.recomputeWanted = true;
    else this.publishWanted = true;
    this.timer ??= setTimeout(() => this.flush(), this.debounceMs);
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.closed) return;
    try {
      if (this.recomputeWanted) this.recompute();
      else if (this.publishWanted) this.publish();
    } catch (error) {
      // A timer callback must not take the process down; the sidecars keep what they have, and the next change retries.
      this.log.error({ err: error instanceof Error ? error.message : String(error) }, 'snapshot recompute failed; retrying later');
      this.retryLater();
    }
  }

  /** Selection for every identity with pods, published at once; credentials catch up after. */
  private recompute(): void {
    this.recomputeWanted = false;
    if (this.closed) return;
    this.metrics?.recomputes.inc();
    const pods = this.options.stores.pods.list().filter(carriesSidecar);
    const selections = new Map<string, LocalSelection>();
    const assignments = new Map<string, PodAssignment>();
    for (const [namespace, namespacePods] of groupByNamespace(pods)) {
      const config = sidecarView(configFromStores(this.options.stores, { namespace, live: true }));
      for (const pod of namespacePods) {
        const identity = identityOfPod(pod, config.identities);
        const nodeId = nodeIdOfPod(pod);
        if (!identity) {
          this.orphan(nodeId, assignments);
          continue;
        }
        const identityKey = identityKeyOf(identity);
        if (!selections.has(identityKey)) selections.set(identityKey, selectForIdentity(config, identity.metadata.name, namespace));
        assignments.set(nodeId, { identityKey });
        this.orphaned.delete(nodeId);
      }
    }
    this.removeGone(assignments);
    this.selections = selections;
    this.assignments = assignments;
    this.publish();
    this.requestSync([...selections.values()].flatMap((selection) => selection.grants));
  }

  /** A pod whose identity is gone keeps the identity it had, with no resources: everything is denied. */
  private orphan(nodeId: string, assignments: Map<string, PodAssignment>): void {
    const previous = this.assignments.get(nodeId);
    const identity = previous ? (this.selections.get(previous.identityKey)?.snapshot.identity ?? this.orphaned.get(nodeId)) : this.orphaned.get(nodeId);
    if (!identity) return; // never had one: nothing to serve, the sidecar never becomes ready
    this.orphaned.set(nodeId, identity);
    assignments.set(nodeId, { identityKey: `orphan:${nodeId}` });
  }

  private removeGone(next: ReadonlyMap<string, PodAssignment>): void {
    for (const nodeId of this.assignments.keys()) {
      if (next.has(nodeId)) continue;
      this.options.cache.clearSnapshot(nodeId);
      this.orphaned.delete(nodeId);
      this.options.onNodeRemoved?.(nodeId);
      this.log.info({ node: nodeId }, 'pod gone; snapshot removed');
    }
  }

  /** Sets every node's snapshot from the last selections and the manager's current credentials. */
  private publish(): void {
    this.publishWanted = false;
    const sets = new Map<string, ResourceSets>();
    for (const [identityKey, selection] of this.selections) sets.set(identityKey, toResourceSets(this.withIssued(selection.snapshot)));
    for (const [nodeId, assignment] of this.assignments) {
      let resourceSets = sets.get(assignment.identityKey);
      if (!resourceSets) {
        const identity = this.orphaned.get(nodeId);
        if (!identity) continue;
        resourceSets = toResourceSets(withCredentials({ version: '', identity, resources: [] }, () => undefined));
      }
      this.options.cache.setSnapshot(nodeId, resourceSets);
    }
    this.metrics?.nodes.set(this.assignments.size);
  }

  private withIssued(snapshot: SidecarSnapshot): SidecarSnapshot {
    return withCredentials(snapshot, (resource) => {
      const issued = this.manager.credentialFor(credentialKeyOf(snapshot.identity, resource));
      return issued ? toUpstreamCredential(issued) : undefined;
    });
  }

  /** Runs manager.sync for the newest grants, one sync at a time; a newer set waits for the running one. */
  private requestSync(grants: readonly CredentialGrant[]): void {
    this.wantedGrants = grants;
    this.syncing ??= this.syncLoop().finally(() => {
      this.syncing = undefined;
    });
  }

  private async syncLoop(): Promise<void> {
    while (this.wantedGrants !== undefined && !this.closed) {
      const grants = this.wantedGrants;
      this.wantedGrants = undefined;
      const { failures } = await this.manager.sync(grants);
      for (const failure of failures) {
        this.metrics?.credentialFailures.inc({ namespace: failure.key.namespace, resource: failure.key.resource });
        this.log.warn({ ...failure.key, err: failure.error.message }, 'credential sync failed; retrying later');
      }
      if (failures.length > 0) this.retryLater();
      this.schedule('publish');
    }
  }

  private retryLater(): void {
    if (this.retryTimer !== undefined || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.changed();
    }, this.retryFailedMs);
    this.retryTimer.unref();
  }
}

function groupByNamespace(pods: readonly KubePod[]): Map<string, KubePod[]> {
  const groups = new Map<string, KubePod[]>();
  for (const pod of pods) {
    const namespace = namespaceOf(pod);
    groups.set(namespace, [...(groups.get(namespace) ?? []), pod]);
  }
  return groups;
}

/**
 * The objects as a sidecar needs them: kind, name, namespace and spec. Status, resourceVersion and
 * the rest would change the snapshot's content hash on every status write and push it to every
 * sidecar for nothing (the sidecar reads only names and specs).
 */
function sidecarView(config: GatehouseConfig): GatehouseConfig {
  const strip = <T extends NonHumanIdentity | ProtectedResource | AccessPolicy>(object: T): T => {
    const metadata: ObjectMeta = { name: object.metadata.name, ...(object.metadata.namespace !== undefined ? { namespace: object.metadata.namespace } : {}) };
    return { apiVersion: object.apiVersion, kind: object.kind, metadata, spec: object.spec } as T;
  };
  return configOf(config.identities.map(strip), config.resources.map(strip), config.policies.map(strip), config.secrets);
}
