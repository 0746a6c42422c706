// One sidecar's discovery stream, server side: authenticates the first request, then speaks the
// xDS-style protocol per type (subscribe, respond with a random nonce, ACK/NACK, stale nonces
// ignored) and relays pushes from the cache, coalescing a burst of changes into one response per
// type. What to send is the cache's business; this class only decides when and how.
import { randomBytes } from 'node:crypto';
import { Metadata, status as GrpcStatus, type ServerDuplexStream } from '@grpc/grpc-js';
import { GatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import type { DiscoveryRequest, DiscoveryResponseInit } from '../../api/proto/discovery-proto.js';
import { isTypeUrl, typeName, type TypeUrl } from '../../api/proto/snapshot-resources.js';
import type { ControlPlaneMetrics } from './control-plane-metrics.js';
import type { ConfigWatcher, WatchResponse } from './snapshot-cache.js';

/**
 * What the identity module answers: who the token proves and until when (the stream is ended at
 * that moment so the sidecar reconnects with its refreshed token), or why it proves nothing.
 */
export type AuthenticationResult = { readonly nodeId: string; readonly expiresAtMs?: number } | GatehouseError;

/** Verifies a sidecar's projected ServiceAccount token (operator/identity implements it). */
export interface NodeAuthenticator {
  /** Resolves to a GatehouseError for a bad token; throws only when verification itself failed (retryable). */
  authenticate(token: string, nodeId: string): Promise<AuthenticationResult>;
}

export const ERROR_CODE_METADATA_KEY = 'gatehouse-error-code';

export interface NodeStreamOptions {
  readonly watcher: ConfigWatcher;
  readonly authenticator: NodeAuthenticator;
  readonly metrics: ControlPlaneMetrics;
  readonly logger: Logger;
  readonly debounceMs: number;
  readonly snapshotTtlMs: number;
  /** Must be the cache's clock: push latency is measured from the cache's change time. */
  readonly clock: () => number;
}

export type DiscoveryCall = ServerDuplexStream<DiscoveryRequest, DiscoveryResponseInit>;

interface SentResponse {
  readonly version: string;
  readonly nonce: string;
  readonly changedAtMs: number;
  /** Only pushes are timed: an answer to a subscription measures how long the node was away, not the push. */
  readonly push: boolean;
  acked: boolean;
}

interface TypeState {
  /** The version the node holds or was last sent: a watch fires only for something else. */
  known: string;
  sent?: SentResponse;
  /** The newest push not yet sent (debounce window open). */
  pending?: WatchResponse;
  cancelWatch?: () => void;
  resourceNames: readonly string[];
}

function nonce(): string {
  return randomBytes(8).toString('hex');
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, index) => name === b[index]);
}

export class NodeStream {
  private nodeId: string | undefined;
  private log: Logger;
  private readonly types = new Map<TypeUrl, TypeState>();
  /** Types with a pending push, oldest first: the last one sent carries the newest type_versions. */
  private readonly pendingOrder = new Set<TypeUrl>();
  private flushTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private inbox: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly call: DiscoveryCall,
    private readonly options: NodeStreamOptions,
    private readonly onClose: (stream: NodeStream) => void,
  ) {
    this.log = options.logger.child({ peer: call.getPeer() });
    // Requests are handled one at a time, in order: the first one awaits authentication.
    call.on('data', (request: DiscoveryRequest) => {
      this.inbox = this.inbox.then(() => this.handle(request)).catch((error: unknown) => this.fail(error));
    });
    call.on('end', () => this.close(() => call.end()));
    call.on('cancelled', () => this.close());
    call.on('close', () => this.close());
    call.on('error', () => this.close());
  }

  get authenticatedNode(): string | undefined {
    return this.nodeId;
  }

  /** Ends the stream with UNAVAILABLE: the sidecar reconnects (to another replica) and keeps its snapshot meanwhile. */
  shutdown(): void {
    this.reject(GrpcStatus.UNAVAILABLE, new GatehouseError('GH_ERR_CP_SHUTTING_DOWN'));
  }

  private async handle(request: DiscoveryRequest): Promise<void> {
    if (this.closed) return;
    if (this.nodeId === undefined && !(await this.authenticate(request))) return;
    if (!isTypeUrl(request.type_url)) {
      this.log.debug({ typeUrl: request.type_url }, 'request for a type this operator does not serve; ignored');
      return;
    }
    const state = this.stateOf(request.type_url);
    if (request.response_nonce === '') return this.subscribe(request.type_url, state, request);
    if (request.response_nonce !== state.sent?.nonce) {
      // It answers a response that a newer one replaced; the answer to the newer one will come.
      this.options.metrics.staleRequests.inc({ type: typeName(request.type_url) });
      return;
    }
    if (request.error_detail) this.nack(request.type_url, state.sent, request);
    else this.ack(request.type_url, state.sent, request.version_info);
    if (!sameNames(state.resourceNames, request.resource_names)) {
      state.resourceNames = [...request.resource_names];
      this.arm(request.type_url, state, state.pending?.version ?? state.known);
    }
  }

  private async authenticate(request: DiscoveryRequest): Promise<boolean> {
    const claimed = request.node?.id ?? '';
    const token = request.node?.token ?? '';
    if (claimed === '' || token === '') return this.refuse('no-node', GrpcStatus.UNAUTHENTICATED, new GatehouseError('GH_ERR_CP_NO_NODE'));
    let result: AuthenticationResult;
    try {
      result = await this.options.authenticator.authenticate(token, claimed);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      return this.refuse('auth-unavailable', GrpcStatus.UNAVAILABLE, new GatehouseError('GH_ERR_CP_AUTH_UNAVAILABLE', { node: claimed, detail }));
    }
    if (this.closed) return false;
    if (!('nodeId' in result)) {
      const error = new GatehouseError('GH_ERR_CP_UNAUTHENTICATED', { node: claimed, detail: result.message }, { cause: result });
      return this.refuse('unauthenticated', GrpcStatus.UNAUTHENTICATED, error, result.code);
    }
    if (result.nodeId !== claimed) {
      return this.refuse('node-mismatch', GrpcStatus.PERMISSION_DENIED, new GatehouseError('GH_ERR_CP_NODE_MISMATCH', { proven: result.nodeId, claimed }));
    }
    this.nodeId = result.nodeId;
    this.log = this.log.child({ node: result.nodeId });
    if (result.expiresAtMs !== undefined) this.endAt(result.expiresAtMs);
    // Headers now tell the sidecar it is in, even when it is already current and gets no response.
    this.call.sendMetadata(new Metadata());
    this.options.metrics.connectedSidecars.inc();
    this.log.info({ sidecarVersion: request.node?.sidecar_version }, 'sidecar connected');
    return true;
  }

  /** A proof that runs out ends the stream; the sidecar reconnects and proves itself with a fresh token. */
  private endAt(expiresAtMs: number): void {
    // setTimeout holds at most ~24.8 days; a token lives hours at most, a longer one is re-checked then.
    const delayMs = Math.min(Math.max(0, expiresAtMs - this.options.clock()), 2 ** 31 - 1);
    this.expiryTimer = setTimeout(() => {
      this.log.info('token expired; ending the stream so the sidecar re-authenticates');
      this.reject(GrpcStatus.UNAUTHENTICATED, new GatehouseError('GH_ERR_TOKEN_EXPIRED', { detail: 'during the discovery stream' }));
    }, delayMs);
  }

  private refuse(reason: string, code: GrpcStatus, error: GatehouseError, causeCode?: string): false {
    this.options.metrics.rejectedStreams.inc({ reason });
    this.log.warn({ node: error.details.node ?? error.details.claimed, code: causeCode ?? error.code, reason }, 'discovery stream refused');
    this.reject(code, error, causeCode);
    return false;
  }

  private reject(code: GrpcStatus, error: GatehouseError, causeCode?: string): void {
    if (this.closed) return;
    const metadata = new Metadata();
    metadata.set(ERROR_CODE_METADATA_KEY, causeCode ?? error.code);
    // grpc-js turns an 'error' on a server stream into the call's final status.
    this.call.emit('error', { code, details: `${error.code}: ${error.message}`, metadata });
    this.close();
  }

  private stateOf(typeUrl: TypeUrl): TypeState {
    let state = this.types.get(typeUrl);
    if (!state) this.types.set(typeUrl, (state = { known: '', resourceNames: [] }));
    return state;
  }

  private subscribe(typeUrl: TypeUrl, state: TypeState, request: DiscoveryRequest): void {
    state.known = request.version_info;
    state.resourceNames = [...request.resource_names];
    state.pending = undefined;
    this.pendingOrder.delete(typeUrl);
    // A sidecar that reconnects says what it runs; that is as good as an ACK for the status.
    if (request.version_info !== '') this.record('ack', typeUrl, request.version_info);
    this.arm(typeUrl, state, state.known);
  }

  private ack(typeUrl: TypeUrl, sent: SentResponse, version: string): void {
    this.record('ack', typeUrl, version);
    this.options.metrics.acks.inc({ type: typeName(typeUrl) });
    if (version === sent.version && sent.push && !sent.acked) {
      sent.acked = true;
      this.options.metrics.pushLatency.observe({ type: typeName(typeUrl) }, Math.max(0, this.options.clock() - sent.changedAtMs) / 1000);
    }
  }

  /** The node keeps its acked version; the refused one is recorded and not sent again on this stream. */
  private nack(typeUrl: TypeUrl, sent: SentResponse, request: DiscoveryRequest): void {
    const error = { code: request.error_detail?.code ?? '', message: request.error_detail?.message ?? '' };
    this.options.watcher.recordDelivery({ kind: 'nack', nodeId: this.nodeId!, typeUrl, version: sent.version, error });
    this.options.metrics.nacks.inc({ node: this.nodeId!, type: typeName(typeUrl) });
    this.log.warn({ type: typeName(typeUrl), version: sent.version, keeps: request.version_info, code: error.code, detail: error.message }, 'sidecar refused a snapshot');
  }

  private record(kind: 'sent' | 'ack', typeUrl: TypeUrl, version: string): void {
    this.options.watcher.recordDelivery({ kind, nodeId: this.nodeId!, typeUrl, version });
  }

  /** (Re)opens the type's watch for anything but `knownVersion`; an immediate answer goes out now. */
  private arm(typeUrl: TypeUrl, state: TypeState, knownVersion: string): void {
    state.cancelWatch?.();
    state.cancelWatch = undefined;
    const watch = this.options.watcher.createWatch(
      { nodeId: this.nodeId!, typeUrl, knownVersion, resourceNames: state.resourceNames },
      (response) => this.onPush(typeUrl, state, response),
    );
    if (watch.kind === 'registered') {
      state.cancelWatch = watch.cancel;
      return;
    }
    this.send(typeUrl, state, watch.response, false);
    this.arm(typeUrl, state, watch.response.version);
  }

  /** A change in the cache: remember the newest, keep watching, send when the debounce window closes. */
  private onPush(typeUrl: TypeUrl, state: TypeState, response: WatchResponse): void {
    state.cancelWatch = undefined;
    if (this.closed) return;
    state.pending = response;
    this.pendingOrder.delete(typeUrl);
    this.pendingOrder.add(typeUrl);
    this.arm(typeUrl, state, response.version);
    this.flushTimer ??= setTimeout(() => this.flush(), this.options.debounceMs);
  }

  private flush(): void {
    this.flushTimer = undefined;
    if (this.closed) return;
    for (const typeUrl of this.pendingOrder) {
      const state = this.types.get(typeUrl)!;
      const response = state.pending!;
      state.pending = undefined;
      // Changed and changed back within the window: the node already has it.
      if (response.version !== state.known) this.send(typeUrl, state, response, true);
    }
    this.pendingOrder.clear();
  }

  private send(typeUrl: TypeUrl, state: TypeState, response: WatchResponse, push: boolean): void {
    const sent: SentResponse = { version: response.version, nonce: nonce(), changedAtMs: response.changedAtMs, push, acked: false };
    state.sent = sent;
    state.known = response.version;
    this.call.write({
      version_info: response.version,
      nonce: sent.nonce,
      type_url: typeUrl,
      resources: response.resources.map((resource) => ({
        name: resource.name,
        version: resource.version,
        payload: resource.payload,
        expires_at_unix_ms: resource.expiresAtMs ?? 0,
      })),
      type_versions: response.typeVersions,
      snapshot_ttl_ms: this.options.snapshotTtlMs,
    });
    this.record('sent', typeUrl, response.version);
    this.options.metrics.responses.inc({ type: typeName(typeUrl) });
  }

  private fail(error: unknown): void {
    this.log.error({ err: error }, 'discovery stream failed');
    const detail = error instanceof Error ? error.message : String(error);
    this.reject(GrpcStatus.INTERNAL, new GatehouseError('GH_ERR_CP_STREAM_FAILED', { node: this.nodeId ?? 'unknown', detail }));
  }

  private close(then?: () => void): void {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    for (const state of this.types.values()) state.cancelWatch?.();
    this.types.clear();
    if (this.nodeId !== undefined) {
      this.options.metrics.connectedSidecars.dec();
      this.log.info('sidecar disconnected');
    }
    this.onClose(this);
    then?.();
  }
}
