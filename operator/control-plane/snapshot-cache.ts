// The snapshot cache of the policy discovery service: per node, the typed resource sets it should
// hold, versioned by content hash, plus the watches open on them and what each node acknowledged.
// It decides *what* a node gets; the stream server only speaks the protocol. Pure: no sockets, no
// timers, time only from an injected clock, so it is tested without a network.
import { createHash } from 'node:crypto';
import { ALL_TYPE_URLS, isTypeUrl, type ResourceSets, type TypedResource, type TypeUrl } from '../../api/proto/snapshot-resources.js';

export interface VersionedResource extends TypedResource {
  /** Content hash of payload and expiry. */
  readonly version: string;
}

export interface WatchRequest {
  readonly nodeId: string;
  readonly typeUrl: string;
  /** The version the node holds or was last sent ('' for none): answered only when the cache's differs. */
  readonly knownVersion: string;
  /** Empty or absent: every resource of the type. */
  readonly resourceNames?: readonly string[];
}

export interface WatchResponse {
  readonly nodeId: string;
  readonly typeUrl: TypeUrl;
  readonly version: string;
  readonly resources: readonly VersionedResource[];
  /** The version of every type in the snapshot this response belongs to. */
  readonly typeVersions: Readonly<Record<string, string>>;
  /** When this type's content became what it is (cache clock); where push latency starts. */
  readonly changedAtMs: number;
}

export type Respond = (response: WatchResponse) => void;

/** An immediate answer when the node is behind, otherwise a registered watch answered on the next change. */
export type Watch = { readonly kind: 'immediate'; readonly response: WatchResponse } | { readonly kind: 'registered'; readonly cancel: () => void };

export interface ErrorDetail {
  readonly code: string;
  readonly message: string;
}

/** What the stream server reports back about a node: the status the cache keeps for metrics. */
export type DeliveryEvent =
  | { readonly kind: 'sent'; readonly nodeId: string; readonly typeUrl: string; readonly version: string }
  | { readonly kind: 'ack'; readonly nodeId: string; readonly typeUrl: string; readonly version: string }
  | { readonly kind: 'nack'; readonly nodeId: string; readonly typeUrl: string; readonly version: string; readonly error: ErrorDetail };

/** The one interface between the stream server and the cache. */
export interface ConfigWatcher {
  createWatch(request: WatchRequest, respond: Respond): Watch;
  recordDelivery(event: DeliveryEvent): void;
}

export interface TypeStatus {
  readonly sentVersion?: string;
  readonly sentAtMs?: number;
  readonly ackedVersion?: string;
  readonly ackedAtMs?: number;
  /** The last rejection: the version the node refused and why. The acked version stays in force. */
  readonly lastNack?: ErrorDetail & { readonly version: string; readonly atMs: number };
}

export interface NodeStatus {
  readonly nodeId: string;
  /** Versions the cache holds for the node now (empty when it has no snapshot). */
  readonly currentVersions: Readonly<Record<string, string>>;
  readonly types: Readonly<Record<string, TypeStatus>>;
}

/** Read side of the per-node status, for metrics and debugging endpoints. */
export interface NodeStatusSource {
  nodeIds(): readonly string[];
  nodeStatus(nodeId: string): NodeStatus | undefined;
}

export interface SnapshotCacheOptions {
  /** Epoch ms; Date.now by default. */
  readonly clock?: () => number;
}

interface TypeSnapshot {
  readonly version: string;
  readonly resources: readonly VersionedResource[];
  readonly changedAtMs: number;
}

interface OpenWatch {
  readonly request: WatchRequest;
  readonly typeUrl: TypeUrl;
  readonly respond: Respond;
}

interface NodeEntry {
  types?: Map<TypeUrl, TypeSnapshot>;
  readonly watches: Set<OpenWatch>;
}

function hash(parts: readonly (string | Uint8Array)[]): string {
  const digest = createHash('sha256');
  for (const part of parts) digest.update(part).update('\0');
  return digest.digest('hex').slice(0, 16);
}

function versioned(resource: TypedResource): VersionedResource {
  return { ...resource, version: hash([resource.name, resource.payload, String(resource.expiresAtMs ?? '')]) };
}

function typeVersion(resources: readonly VersionedResource[]): string {
  return hash(resources.flatMap((resource) => [resource.name, resource.version]));
}

export class SnapshotCache implements ConfigWatcher, NodeStatusSource {
  private readonly nodes = new Map<string, NodeEntry>();
  private readonly statuses = new Map<string, Map<string, TypeStatus>>();
  private readonly clock: () => number;
  /**
   * Hashes by resource list: the cluster control plane hands every pod of an identity the same
   * (readonly) lists, so each is hashed once per change, not once per pod.
   */
  private readonly versionedLists = new WeakMap<readonly TypedResource[], Pick<TypeSnapshot, 'version' | 'resources'>>();

  constructor(options: SnapshotCacheOptions = {}) {
    this.clock = options.clock ?? Date.now;
  }

  /**
   * Replaces the node's snapshot and answers every open watch whose type now has another version.
   * Returns the types whose version changed (none when the content is the same).
   */
  setSnapshot(nodeId: string, sets: ResourceSets): TypeUrl[] {
    const entry = this.entry(nodeId);
    const now = this.clock();
    const next = new Map<TypeUrl, TypeSnapshot>();
    const changed: TypeUrl[] = [];
    for (const typeUrl of ALL_TYPE_URLS) {
      const { version, resources } = this.versionedList(sets[typeUrl]);
      const previous = entry.types?.get(typeUrl);
      const same = previous?.version === version;
      if (!same) changed.push(typeUrl);
      next.set(typeUrl, same ? previous : { version, resources, changedAtMs: now });
    }
    entry.types = next;
    this.answerWatches(entry);
    return changed;
  }

  private versionedList(list: readonly TypedResource[]): Pick<TypeSnapshot, 'version' | 'resources'> {
    let versionedList = this.versionedLists.get(list);
    if (!versionedList) {
      const resources = list.map(versioned);
      versionedList = { version: typeVersion(resources), resources };
      this.versionedLists.set(list, versionedList);
    }
    return versionedList;
  }

  /** Forgets the node (its pod is gone): snapshot and status. Open watches stay until cancelled. */
  clearSnapshot(nodeId: string): void {
    const entry = this.nodes.get(nodeId);
    this.statuses.delete(nodeId);
    if (!entry) return;
    delete entry.types;
    this.dropIfIdle(nodeId, entry);
  }

  /** Current versions per type, or undefined when the node has no snapshot. */
  versions(nodeId: string): Readonly<Record<string, string>> | undefined {
    const types = this.nodes.get(nodeId)?.types;
    return types ? versionsOf(types) : undefined;
  }

  createWatch(request: WatchRequest, respond: Respond): Watch {
    const entry = this.entry(request.nodeId);
    const typeUrl = request.typeUrl;
    if (!isTypeUrl(typeUrl)) {
      // Nothing of an unknown type will ever exist; the watch just never fires (a newer sidecar
      // asking an older operator for a type it does not serve is not an error).
      return { kind: 'registered', cancel: () => undefined };
    }
    const response = this.responseIfBehind(request.nodeId, entry, { request, typeUrl, respond });
    if (response) return { kind: 'immediate', response };
    const watch: OpenWatch = { request, typeUrl, respond };
    entry.watches.add(watch);
    return {
      kind: 'registered',
      cancel: () => {
        entry.watches.delete(watch);
        this.dropIfIdle(request.nodeId, entry);
      },
    };
  }

  recordDelivery(event: DeliveryEvent): void {
    let types = this.statuses.get(event.nodeId);
    if (!types) this.statuses.set(event.nodeId, (types = new Map()));
    const previous = types.get(event.typeUrl) ?? {};
    const atMs = this.clock();
    if (event.kind === 'sent') types.set(event.typeUrl, { ...previous, sentVersion: event.version, sentAtMs: atMs });
    else if (event.kind === 'ack') types.set(event.typeUrl, { ...previous, ackedVersion: event.version, ackedAtMs: atMs });
    else types.set(event.typeUrl, { ...previous, lastNack: { ...event.error, version: event.version, atMs } });
  }

  nodeIds(): readonly string[] {
    return [...new Set([...this.statuses.keys(), ...[...this.nodes].filter(([, entry]) => entry.types).map(([id]) => id)])];
  }

  nodeStatus(nodeId: string): NodeStatus | undefined {
    const types = this.statuses.get(nodeId);
    const current = this.nodes.get(nodeId)?.types;
    if (!types && !current) return undefined;
    return { nodeId, currentVersions: current ? versionsOf(current) : {}, types: Object.fromEntries(types ?? []) };
  }

  private entry(nodeId: string): NodeEntry {
    let entry = this.nodes.get(nodeId);
    if (!entry) this.nodes.set(nodeId, (entry = { watches: new Set() }));
    return entry;
  }

  private dropIfIdle(nodeId: string, entry: NodeEntry): void {
    if (!entry.types && entry.watches.size === 0 && this.nodes.get(nodeId) === entry) this.nodes.delete(nodeId);
  }

  private responseIfBehind(nodeId: string, entry: NodeEntry, watch: OpenWatch): WatchResponse | undefined {
    const current = entry.types?.get(watch.typeUrl);
    if (!entry.types || !current || current.version === watch.request.knownVersion) return undefined;
    const names = watch.request.resourceNames ?? [];
    const resources = names.length === 0 ? current.resources : current.resources.filter((resource) => names.includes(resource.name));
    return {
      nodeId,
      typeUrl: watch.typeUrl,
      version: current.version,
      resources,
      typeVersions: versionsOf(entry.types),
      changedAtMs: current.changedAtMs,
    };
  }

  private answerWatches(entry: NodeEntry): void {
    // A copy: respond() usually opens the next watch right away, which must wait for the next change.
    for (const watch of [...entry.watches]) {
      const response = this.responseIfBehind(watch.request.nodeId, entry, watch);
      if (!response) continue;
      entry.watches.delete(watch);
      watch.respond(response);
    }
  }
}

function versionsOf(types: ReadonlyMap<TypeUrl, TypeSnapshot>): Record<string, string> {
  return Object.fromEntries([...types].map(([typeUrl, snapshot]) => [typeUrl, snapshot.version]));
}
