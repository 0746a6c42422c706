// The cluster's control plane: what LocalControlPlane is for one identity from a folder, this is for
// every pod in the cluster that carries the sidecar. Each pod is a node (`namespace/pod`) in the
// SnapshotCache, acting as the NonHumanIdentity that names its ServiceAccount; its snapshot comes
// from selectForIdentity, the selection local mode uses, over the namespace's objects from the
// informer caches. Credentials come from one shared CredentialManager, one per identity and
// resource however many pods share them.
//
// A change to a Gatehouse object or a Secret they use schedules one full recompute (every identity's
// selection, every pod) after a short debounce. A pod change redoes only that pod's node: pods are
// created by the hundred in a scale-up, on the event loop the admission webhook answers on, and a
// pod joining an identity that already has pods changes nobody else's snapshot. All pods of an
// identity share one selection and one set of resource lists, so the cache hashes them once.
// Snapshots are published at once with the credentials the manager holds now, and only then does
// the manager catch up (issue, re-scope, revoke): a removed policy reaches the sidecars without
// waiting for a database, and the catch-up publishes again when credentials change.
import { Counter, Gauge, type Registry } from 'prom-client';
import { GatehouseError } from '../../api/errors.js';
import type { AccessPolicy, NonHumanIdentity, ObjectMeta, ProtectedResource } from '../../api/kinds/kinds.js';
import type { Logger } from '../../api/logging/logger.js';
import { namespaceOf, type GatehouseConfig } from '../../api/manifests/config.js';
import { toResourceSets, type ResourceSets } from '../../api/proto/snapshot-resources.js';
import type { SnapshotCache } from '../control-plane/snapshot-cache.js';
import { toUpstreamCredential, type IssuedCredential } from '../credentials/credential-issuer.js';
import { CredentialManager, credentialKeyOf, type CredentialGrant, type CredentialIssuers } from '../credentials/credential-manager.js';
import type { Scheduler } from '../credentials/scheduler.js';
import { selectForIdentity, withCredentials, type LocalSelection } from '../local-control-plane/local-snapshot.js';
import { configFromStores, configOf } from '../reconcile/cluster-config.js';
import { splitKey, type ClusterStores, type KubePod, type ObjectStore } from '../reconcile/cluster-objects.js';
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

/** Whom a node acts as: an identity with pods, or (orphaned) the identity its pod lost, served with nothing. */
type PodAssignment =
  | { readonly kind: 'identity'; readonly identityKey: string }
  | { readonly kind: 'orphan'; readonly identity: NonHumanIdentity; readonly sets: ResourceSets };

interface NodeState {
  readonly assignment: PodAssignment;
  /** The sets last handed to the cache: handing it the same object again would change nothing. */
  published?: ResourceSets;
}

/** An identity with pods: its selection, its nodes, and its sets as last built with the credentials of then. */
interface IdentityState {
  readonly selection: LocalSelection;
  readonly nodes: Set<string>;
  built?: { readonly sets: ResourceSets; readonly credentials: readonly (IssuedCredential | undefined)[] };
}

interface ControlPlaneMetrics {
  readonly nodes: Gauge;
  readonly recomputes: Counter;
  readonly podChanges: Counter;
  readonly selections: Counter;
  readonly credentialFailures: Counter<'namespace' | 'resource'>;
}

function createMetrics(registry: Registry | undefined): ControlPlaneMetrics | undefined {
  if (!registry) return undefined;
  const registers = [registry];
  return {
    nodes: new Gauge({ name: 'gatehouse_control_plane_sidecar_pods', help: 'Pods with a sidecar that hold a snapshot in the cache.', registers }),
    recomputes: new Counter({
      name: 'gatehouse_control_plane_recomputes_total',
      help: 'Full recomputations of every sidecar pod\'s snapshot, after a change to a Gatehouse object or a Secret one names (pod changes are applied one pod at a time).',
      registers,
    }),
    podChanges: new Counter({
      name: 'gatehouse_control_plane_pod_changes_total',
      help: 'Sidecar pods added, changed or gone, each applied to that pod\'s snapshot alone.',
      registers,
    }),
    selections: new Counter({
      name: 'gatehouse_control_plane_selections_total',
      help: 'Selections computed for an identity: each identity with pods on a full recompute, and an identity whose first pod arrives.',
      registers,
    }),
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

function orphanAssignment(identity: NonHumanIdentity): PodAssignment {
  return { kind: 'orphan', identity, sets: toResourceSets(withCredentials({ version: '', identity, resources: [] }, () => undefined)) };
}

function sameItems<T>(left: readonly T[], right: readonly T[]): boolean {
  return left.length === right.length && left.every((item, index) => item === right[index]);
}

export class ClusterControlPlane implements CredentialRevoker {
  private readonly manager: CredentialManager;
  private readonly ledger = new RevocationLedger();
  private readonly log: Logger;
  private readonly metrics: ControlPlaneMetrics | undefined;
  private readonly debounceMs: number;
  private readonly retryFailedMs: number;
  /** Per identity (namespace/name) with pods. */
  private identities = new Map<string, IdentityState>();
  /** Per node with a snapshot. */
  private nodes = new Map<string, NodeState>();
  /** Per namespace, its objects as sidecars see them, as of the last full recompute: pod changes leave them alone. */
  private configs = new Map<string, GatehouseConfig>();
  /** Nodes whose pod changed since the last flush. */
  private readonly changedPods = new Set<string>();
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

  /** A Gatehouse object or a Secret one names changed: recompute everything after the debounce. */
  changed(): void {
    this.schedule('recompute');
  }

  /**
   * A pod was added, updated or deleted: after the debounce, only its node is redone, from the
   * pod as the store holds it then (not as the event carried it).
   */
  podChanged(pod: KubePod): void {
    if (this.closed) return;
    this.changedPods.add(nodeIdOfPod(pod));
    this.schedule('pods');
  }

  /** Node ids that hold a snapshot. */
  nodeIds(): string[] {
    return [...this.nodes.keys()];
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
    this.changedPods.clear();
    await this.syncing;
    await this.manager.close(options);
  }

  private schedule(what: 'recompute' | 'pods' | 'publish'): void {
    if (this.closed) return;
    if (what === 'recompute') this.recomputeWanted = true;
    else if (what === 'publish') this.publishWanted = true;
    this.timer ??= setTimeout(() => this.flush(), this.debounceMs);
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.closed) return;
    try {
      if (this.recomputeWanted) {
        this.recompute();
        return;
      }
      if (this.changedPods.size > 0) this.applyPodChanges();
      if (this.publishWanted) this.publish();
    } catch (error) {
      // A timer callback must not take the process down; the sidecars keep what they have, and the retry recomputes everything.
      this.log.error({ err: error instanceof Error ? error.message : String(error) }, 'snapshot recompute failed; retrying later');
      this.retryLater();
    }
  }

  /** Every identity's selection and every pod's node anew, published at once; credentials catch up after. */
  private recompute(): void {
    this.recomputeWanted = false;
    this.changedPods.clear();
    if (this.closed) return;
    this.metrics?.recomputes.inc();
    const previous = { nodes: this.nodes, identities: this.identities };
    this.configs = new Map();
    this.identities = new Map();
    this.nodes = new Map();
    for (const pod of this.options.stores.pods.list()) {
      if (!carriesSidecar(pod)) continue;
      const nodeId = nodeIdOfPod(pod);
      const namespace = namespaceOf(pod);
      const before = previous.nodes.get(nodeId);
      const lost = before ? identityOfNode(before, previous.identities) : undefined;
      this.assign(nodeId, namespace, identityOfPod(pod, this.configFor(namespace).identities), before, lost);
    }
    for (const nodeId of previous.nodes.keys()) if (!this.nodes.has(nodeId)) this.forget(nodeId);
    this.publish();
    this.requestSync(this.grants());
  }

  /** Redoes the nodes of the pods that changed; a sync follows when an identity gained its first or lost its last pod. */
  private applyPodChanges(): void {
    const nodeIds = [...this.changedPods];
    this.changedPods.clear();
    let grantsChanged = false;
    for (const nodeId of nodeIds) {
      this.metrics?.podChanges.inc();
      if (this.applyPodChange(nodeId)) grantsChanged = true;
    }
    this.metrics?.nodes.set(this.nodes.size);
    if (grantsChanged) this.requestSync(this.grants());
  }

  /** One node from its pod's current state; true when the set of identities with pods changed. */
  private applyPodChange(nodeId: string): boolean {
    const { namespace, name } = splitKey(nodeId);
    const pod = this.options.stores.pods.get(namespace, name);
    const before = this.nodes.get(nodeId);
    if (!pod || !carriesSidecar(pod)) {
      if (!before) return false;
      const released = this.detach(nodeId, before);
      this.forget(nodeId);
      return released;
    }
    const identity = identityOfPod(pod, this.configFor(namespace).identities);
    if (before?.assignment.kind === 'identity' && identity && identityKeyOf(identity) === before.assignment.identityKey) return false;
    if (before?.assignment.kind === 'orphan' && !identity) return false;
    const lost = before ? identityOfNode(before, this.identities) : undefined;
    const released = before ? this.detach(nodeId, before) : false;
    const created = this.assign(nodeId, namespace, identity, before, lost);
    const node = this.nodes.get(nodeId);
    if (node) this.publishNode(nodeId, node);
    return released || created;
  }

  /**
   * Gives the node the identity its pod acts as, reusing the identity's selection when it has one.
   * Without an identity, a pod that had one (`lost`, the one it acted as or had lost before) keeps
   * it with no resources, so everything is denied, and a pod that never had one gets nothing.
   * True when the identity got its first pod.
   */
  private assign(nodeId: string, namespace: string, identity: NonHumanIdentity | undefined, before: NodeState | undefined, lost: NonHumanIdentity | undefined): boolean {
    if (!identity) {
      if (before?.assignment.kind === 'orphan') this.nodes.set(nodeId, before);
      else if (lost) this.nodes.set(nodeId, { assignment: orphanAssignment(lost) });
      return false;
    }
    const identityKey = identityKeyOf(identity);
    let state = this.identities.get(identityKey);
    const created = state === undefined;
    if (!state) {
      this.metrics?.selections.inc();
      state = { selection: selectForIdentity(this.configFor(namespace), identity.metadata.name, namespace), nodes: new Set() };
      this.identities.set(identityKey, state);
    }
    state.nodes.add(nodeId);
    this.nodes.set(nodeId, { assignment: { kind: 'identity', identityKey } });
    return created;
  }

  /** Takes the node off its identity; true when that was the identity's last pod (its selection goes, its grants with it). */
  private detach(nodeId: string, node: NodeState): boolean {
    this.nodes.delete(nodeId);
    if (node.assignment.kind !== 'identity') return false;
    const state = this.identities.get(node.assignment.identityKey);
    if (!state) return false;
    state.nodes.delete(nodeId);
    if (state.nodes.size > 0) return false;
    this.identities.delete(node.assignment.identityKey);
    return true;
  }

  private forget(nodeId: string): void {
    this.options.cache.clearSnapshot(nodeId);
    this.options.onNodeRemoved?.(nodeId);
    this.log.info({ node: nodeId }, 'pod gone; snapshot removed');
  }

  private configFor(namespace: string): GatehouseConfig {
    let config = this.configs.get(namespace);
    if (!config) this.configs.set(namespace, (config = sidecarView(configFromStores(this.options.stores, { namespace, live: true }))));
    return config;
  }

  private grants(): CredentialGrant[] {
    return [...this.identities.values()].flatMap((state) => state.selection.grants);
  }

  /** Sets every node whose snapshot is not the one its identity (with the credentials held now) gives. */
  private publish(): void {
    this.publishWanted = false;
    for (const [nodeId, node] of this.nodes) this.publishNode(nodeId, node);
    this.metrics?.nodes.set(this.nodes.size);
  }

  private publishNode(nodeId: string, node: NodeState): void {
    const { assignment } = node;
    const state = assignment.kind === 'identity' ? this.identities.get(assignment.identityKey) : undefined;
    const sets = assignment.kind === 'orphan' ? assignment.sets : state ? this.setsOf(state) : undefined;
    if (sets === undefined || node.published === sets) return;
    this.options.cache.setSnapshot(nodeId, sets);
    node.published = sets;
  }

  /** The identity's sets with the credentials held now, rebuilt only when one of those changed. */
  private setsOf(state: IdentityState): ResourceSets {
    const { snapshot } = state.selection;
    const credentials = snapshot.resources.map((entry) => this.manager.credentialFor(credentialKeyOf(snapshot.identity, entry.resource)));
    if (state.built && sameItems(state.built.credentials, credentials)) return state.built.sets;
    const issued = new Map(snapshot.resources.map((entry, index) => [entry.resource, credentials[index]]));
    const sets = toResourceSets(withCredentials(snapshot, (resource) => {
      const credential = issued.get(resource);
      return credential ? toUpstreamCredential(credential) : undefined;
    }));
    state.built = { sets, credentials };
    return sets;
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

/** The identity a node acts as, or the one it lost (orphaned). */
function identityOfNode(node: NodeState, identities: ReadonlyMap<string, IdentityState>): NonHumanIdentity | undefined {
  return node.assignment.kind === 'orphan' ? node.assignment.identity : identities.get(node.assignment.identityKey)?.selection.snapshot.identity;
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
