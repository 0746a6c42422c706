// The sidecar's end of the policy discovery stream: subscribes with its node id and token, turns the
// typed responses back into a SidecarSnapshot, hands it to the Sidecar, and ACKs or NACKs. It keeps
// the last good snapshot through refusals and lost connections, reconnects with jittered backoff,
// and says when that snapshot has expired so the sidecar can fail closed.
import type { Client, ClientDuplexStream, StatusObject } from '@grpc/grpc-js';
import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import { STREAM_SNAPSHOTS_PATH, type DiscoveryProto, type DiscoveryRequestInit, type DiscoveryResponse, type ErrorDetailMessage } from '../../api/proto/discovery-proto.js';
import { ALL_TYPE_URLS, fromResourceSets, isTypeUrl, type ResourceSets, type TypedResource, type TypeUrl } from '../../api/proto/snapshot-resources.js';
import type { SidecarSnapshot } from '../../api/snapshot/sidecar-snapshot.js';
import { controlPlaneClient, type ControlPlaneConnection } from './control-plane-channel.js';

export type { ClientTransport } from './control-plane-channel.js';

export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 30_000, multiplier: 2 };

export interface SnapshotClientOptions extends ControlPlaneConnection {
  readonly proto: DiscoveryProto;
  /** Applies a snapshot whole or throws (Sidecar.apply); a throw becomes a NACK. */
  readonly apply: (snapshot: SidecarSnapshot) => Promise<void>;
  readonly logger: Logger;
  readonly backoff?: Partial<BackoffOptions>;
  /** HTTP/2 keepalive pings, so a control plane that vanished without a FIN is noticed. Default 30 s. */
  readonly keepaliveMs?: number;
  readonly clock?: () => number;
  /** In [0, 1); Math.random by default (tests make the jitter predictable). */
  readonly random?: () => number;
}

/** The refusal the client last sent, for logs and readiness. */
export interface Refusal {
  readonly version: string;
  readonly code: string;
  readonly message: string;
}

interface HeldResponse {
  readonly version: string;
  readonly nonce: string;
  readonly resources: readonly TypedResource[];
}

type DiscoveryCall = ClientDuplexStream<DiscoveryRequestInit, DiscoveryResponse>;

/**
 * Delay before reconnect attempt `attempt` (0-based): exponential, capped, with "equal jitter"
 * (half fixed, half random) so a fleet that lost the operator together does not return in lockstep.
 */
export function reconnectDelay(attempt: number, backoff: BackoffOptions, random: () => number): number {
  const base = Math.min(backoff.maxMs, backoff.initialMs * backoff.multiplier ** attempt);
  return base / 2 + random() * (base / 2);
}

function refusalOf(error: unknown, version: string): Refusal {
  if (isGatehouseError(error)) return { version, code: error.code, message: error.message };
  const wrapped = new GatehouseError('GH_ERR_CP_APPLY_FAILED', { version, detail: error instanceof Error ? error.message : String(error) });
  return { version, code: wrapped.code, message: wrapped.message };
}

function earlier(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  return b === undefined || a <= b ? a : b;
}

/** The earliest credential expiry of a snapshot, or undefined when none expires. */
function earliestCredentialExpiry(snapshot: SidecarSnapshot): number | undefined {
  let at: number | undefined;
  for (const entry of snapshot.resources) at = earlier(at, entry.credential?.expiresAt);
  return at;
}

export class SnapshotClient {
  private readonly backoff: BackoffOptions;
  private readonly clock: () => number;
  private readonly random: () => number;
  private log: Logger;
  private client: Client | undefined;
  private call: DiscoveryCall | undefined;
  /** Bumped per connection attempt; events of an older stream are ignored. */
  private generation = 0;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private stopped = true;
  private isConnected = false;
  private lostAtMs: number;
  /** The newest response per type on this stream, applied or not. */
  private held = new Map<TypeUrl, HeldResponse>();
  /** What `held` was when the last good snapshot was applied. */
  private applied = new Map<TypeUrl, HeldResponse>();
  /** type_versions of the newest response: the set is complete when `held` has exactly these. */
  private target: Readonly<Record<string, string>> = {};
  private ttlMs = 0;
  private appliedTtlMs = 0;
  /** The response last answered per type on this stream, and whether with an ACK. */
  private readonly answered = new Map<TypeUrl, { readonly nonce: string; readonly acked: boolean }>();
  private good: SidecarSnapshot | undefined;
  /** earliestCredentialExpiry(good), kept with it: sessions ask for the expiry before every statement. */
  private goodCredentialExpiry: number | undefined;
  private refusal: Refusal | undefined;
  private reconciling: Promise<void> | undefined;
  private dirty = false;

  constructor(private readonly options: SnapshotClientOptions) {
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.clock = options.clock ?? Date.now;
    this.random = options.random ?? Math.random;
    this.log = options.logger.child({ node: options.nodeId, controlPlane: options.address });
    this.lostAtMs = this.clock();
  }

  /** The snapshot in force: the last one applied successfully. */
  get lastGood(): SidecarSnapshot | undefined {
    return this.good;
  }

  /** Authenticated and subscribed on a live stream. */
  get connected(): boolean {
    return this.isConnected;
  }

  get lastRefusal(): Refusal | undefined {
    return this.refusal;
  }

  /**
   * When the last good snapshot stops counting: the earliest credential expiry, and while the control
   * plane is lost, the moment of the loss plus the snapshot TTL the server set. Undefined: no limit.
   */
  expiresAt(): number | undefined {
    if (!this.good) return undefined;
    const lease = this.isConnected || this.appliedTtlMs <= 0 ? undefined : this.lostAtMs + this.appliedTtlMs;
    return earlier(this.goodCredentialExpiry, lease);
  }

  /** Epoch ms since when the control plane is unreachable (since start, if never reached); undefined while connected. */
  lostSince(): number | undefined {
    return this.isConnected ? undefined : this.lostAtMs;
  }

  /** True when there is no snapshot, or it is past expiresAt(): the sidecar must deny. */
  expired(now: number = this.clock()): boolean {
    if (!this.good) return true;
    const at = this.expiresAt();
    return at !== undefined && now >= at;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  /** Closes the stream; an apply in progress is awaited. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.generation += 1;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.call?.cancel();
    this.call = undefined;
    this.client?.close();
    this.client = undefined;
    this.markLost();
    await this.reconciling;
  }

  private async connect(): Promise<void> {
    const generation = ++this.generation;
    let token: string;
    try {
      token = await this.options.token();
    } catch (error) {
      this.onStreamEnd(generation, { detail: `cannot read the token: ${(error as Error).message}` });
      return;
    }
    if (this.stopped || generation !== this.generation) return;
    this.client?.close();
    const keepaliveMs = this.options.keepaliveMs ?? 30_000;
    this.client = controlPlaneClient(this.options.address, this.options.transport, {
      'grpc.keepalive_time_ms': keepaliveMs,
      'grpc.keepalive_timeout_ms': Math.min(keepaliveMs, 10_000),
    });
    const method = this.options.proto.streamSnapshots;
    const call = this.client.makeBidiStreamRequest(STREAM_SNAPSHOTS_PATH, method.requestSerialize, method.responseDeserialize);
    this.call = call;
    this.subscribe(call, generation, token);
  }

  private subscribe(call: DiscoveryCall, generation: number, token: string): void {
    // A new stream starts from what is in force: nonces of the old one mean nothing here, and a
    // version received but never applied must be sent again if the operator still wants it.
    this.answered.clear();
    // The subscription below reports the applied versions, which answers them on this stream.
    for (const [typeUrl, held] of this.applied) this.answered.set(typeUrl, { nonce: held.nonce, acked: true });
    this.held = new Map(this.applied);
    this.target = {};
    call.on('metadata', () => this.onConnected(generation));
    call.on('data', (response: DiscoveryResponse) => this.onResponse(generation, response));
    call.on('status', (status: StatusObject) => this.onStreamEnd(generation, { code: status.code, detail: status.details }));
    call.on('error', () => undefined); // the status event that follows says what happened
    ALL_TYPE_URLS.forEach((typeUrl, index) => {
      call.write({
        // xDS sends the node once per stream; the operator authenticates the first request.
        ...(index === 0 ? { node: { id: this.options.nodeId, token, sidecar_version: this.options.sidecarVersion } } : {}),
        type_url: typeUrl,
        version_info: this.applied.get(typeUrl)?.version ?? '',
        response_nonce: '',
      });
    });
  }

  private onConnected(generation: number): void {
    if (generation !== this.generation) return;
    this.isConnected = true;
    this.attempt = 0;
    this.log.info({ version: this.good?.version }, 'connected to the control plane');
  }

  private markLost(): void {
    if (this.isConnected) this.lostAtMs = this.clock();
    this.isConnected = false;
  }

  private onStreamEnd(generation: number, status: { code?: number; detail: string }): void {
    if (generation !== this.generation || this.stopped) return;
    this.generation += 1;
    this.markLost();
    this.call = undefined;
    const delayMs = reconnectDelay(this.attempt, this.backoff, this.random);
    this.attempt += 1;
    this.log.warn({ grpcCode: status.code, detail: status.detail, retryInMs: Math.round(delayMs), version: this.good?.version }, 'control plane stream ended; keeping the last good snapshot');
    this.reconnectTimer = setTimeout(() => void this.connect(), delayMs);
  }

  private onResponse(generation: number, response: DiscoveryResponse): void {
    if (generation !== this.generation) return;
    if (!isTypeUrl(response.type_url)) {
      this.log.debug({ typeUrl: response.type_url }, 'response of a type this sidecar does not know; ignored');
      return;
    }
    this.held.set(response.type_url, {
      version: response.version_info,
      nonce: response.nonce,
      resources: response.resources.map((resource) => ({
        name: resource.name,
        payload: resource.payload,
        ...(resource.expires_at_unix_ms > 0 ? { expiresAtMs: resource.expires_at_unix_ms } : {}),
      })),
    });
    this.target = response.type_versions;
    this.ttlMs = response.snapshot_ttl_ms;
    this.scheduleReconcile();
  }

  /** Coalesces: responses that arrive while a snapshot is being applied are handled in one more pass. */
  private scheduleReconcile(): void {
    this.dirty = true;
    this.reconciling ??= this.reconcileLoop().finally(() => {
      this.reconciling = undefined;
    });
  }

  private async reconcileLoop(): Promise<void> {
    while (this.dirty && !this.stopped) {
      this.dirty = false;
      await this.reconcile();
    }
  }

  /** Applies once every type is at the versions of the newest response, so never a mix of two snapshots. */
  private complete(): boolean {
    return ALL_TYPE_URLS.every((typeUrl) => this.target[typeUrl] !== undefined && this.held.get(typeUrl)?.version === this.target[typeUrl]);
  }

  private async reconcile(): Promise<void> {
    if (!this.complete()) return;
    const attempt = new Map(this.held);
    const generation = this.generation;
    const ttlMs = this.ttlMs;
    let snapshot: SidecarSnapshot | undefined;
    try {
      snapshot = fromResourceSets(setsOf(attempt));
      if (snapshot.version !== this.good?.version) await this.options.apply(snapshot);
    } catch (error) {
      this.refuse(attempt, generation, refusalOf(error, snapshot?.version ?? versionsOf(attempt)));
      return;
    }
    if (snapshot.version !== this.good?.version) this.log.info({ version: snapshot.version }, 'snapshot applied');
    this.good = snapshot;
    this.goodCredentialExpiry = earliestCredentialExpiry(snapshot);
    this.applied = attempt;
    this.appliedTtlMs = ttlMs;
    this.refusal = undefined;
    this.acknowledge(attempt, generation);
  }

  private acknowledge(attempt: ReadonlyMap<TypeUrl, HeldResponse>, generation: number): void {
    for (const [typeUrl, held] of attempt) {
      // A response refused before may be part of this good snapshot after all (the failure was
      // transient): ACK it now, with its nonce, which is still the newest for its type.
      const answered = this.answered.get(typeUrl);
      if (answered?.nonce === held.nonce && answered.acked) continue;
      this.send(generation, typeUrl, { type_url: typeUrl, version_info: held.version, response_nonce: held.nonce });
    }
  }

  /** NACK what this attempt newly received; every type keeps reporting the version in force. */
  private refuse(attempt: ReadonlyMap<TypeUrl, HeldResponse>, generation: number, refusal: Refusal): void {
    this.refusal = refusal;
    this.log.error({ version: refusal.version, code: refusal.code, detail: refusal.message, keeps: this.good?.version }, 'snapshot refused; keeping the last good one');
    const errorDetail: ErrorDetailMessage = { code: refusal.code, message: refusal.message };
    for (const [typeUrl, held] of attempt) {
      if (this.answered.get(typeUrl)?.nonce === held.nonce) continue;
      this.send(generation, typeUrl, {
        type_url: typeUrl,
        version_info: this.applied.get(typeUrl)?.version ?? '',
        response_nonce: held.nonce,
        error_detail: errorDetail,
      });
    }
  }

  private send(generation: number, typeUrl: TypeUrl, request: DiscoveryRequestInit): void {
    // The stream this answers is gone: the next one subscribes with the versions in force instead.
    if (generation !== this.generation || !this.call) return;
    this.answered.set(typeUrl, { nonce: request.response_nonce ?? '', acked: !request.error_detail });
    this.call.write(request);
  }
}

function setsOf(held: ReadonlyMap<TypeUrl, HeldResponse>): ResourceSets {
  const resourcesOf = (typeUrl: TypeUrl): readonly TypedResource[] => held.get(typeUrl)?.resources ?? [];
  return Object.fromEntries(ALL_TYPE_URLS.map((typeUrl) => [typeUrl, resourcesOf(typeUrl)])) as Record<TypeUrl, readonly TypedResource[]>;
}

function versionsOf(held: ReadonlyMap<TypeUrl, HeldResponse>): string {
  return [...held.values()].map((entry) => entry.version).join('/');
}
