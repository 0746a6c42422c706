// The policy discovery service's gRPC server: TLS (plaintext only when asked for, for local mode),
// one NodeStream per connected sidecar, graceful shutdown. It speaks the protocol and nothing
// else; what each node gets comes from the ConfigWatcher (the snapshot cache) it is given.
import { Server, ServerCredentials, type ServerDuplexStream, type UntypedHandleCall } from '@grpc/grpc-js';
import { GatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import type { DiscoveryProto, DiscoveryRequest, DiscoveryResponseInit } from '../../api/proto/discovery-proto.js';
import type { ControlPlaneMetrics } from './control-plane-metrics.js';
import { NodeStream, type NodeAuthenticator } from './node-stream.js';
import type { ConfigWatcher } from './snapshot-cache.js';

export type { AuthenticationResult, NodeAuthenticator } from './node-stream.js';

/** TLS with the operator's serving key and certificate, or plaintext, which must be asked for by name. */
export type ServerTransport =
  | { readonly kind: 'tls'; readonly keyPem: string | Buffer; readonly certPem: string | Buffer }
  | { readonly kind: 'plaintext-local-mode' };

/**
 * The service's other methods, served by other parts of the operator (recordings, approvals). grpc-js
 * accepts a service once, so they join StreamSnapshots in the one implementation; a method left out
 * answers UNIMPLEMENTED.
 */
export interface ExtraDiscoveryHandlers {
  readonly ReportEvents?: UntypedHandleCall;
  readonly RequestApproval?: UntypedHandleCall;
}

export interface DiscoveryServerOptions {
  readonly proto: DiscoveryProto;
  readonly watcher: ConfigWatcher;
  readonly authenticator: NodeAuthenticator;
  readonly metrics: ControlPlaneMetrics;
  readonly logger: Logger;
  readonly transport: ServerTransport;
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  /** A burst of cache changes within this window goes out as one response per type. Default 50 ms. */
  readonly debounceMs?: number;
  /** How long a sidecar may enforce its last snapshot after losing the control plane; 0 = no limit. Default 5 min. */
  readonly snapshotTtlMs?: number;
  /** The cache's clock (epoch ms); push latency is measured against it. Date.now by default. */
  readonly clock?: () => number;
  /** HTTP/2 keepalive pings, so a vanished sidecar's stream and watches are freed. Default 30 s. */
  readonly keepaliveMs?: number;
  /** Close connections after this age so sidecars reconnect and re-authenticate with a fresh token. Off by default. */
  readonly maxConnectionAgeMs?: number;
  /** Handlers of the service's other methods; UNIMPLEMENTED when absent. */
  readonly extraHandlers?: ExtraDiscoveryHandlers;
}

export interface DiscoveryServer {
  readonly port: number;
  /** Authenticated streams open now. */
  connectedStreams(): number;
  /** Ends every stream with UNAVAILABLE (sidecars reconnect, keeping their snapshot), then stops; forced after graceMs. */
  close(graceMs?: number): Promise<void>;
}

export const DEFAULT_DEBOUNCE_MS = 50;
export const DEFAULT_SNAPSHOT_TTL_MS = 5 * 60_000;

function credentialsFor(transport: ServerTransport): ServerCredentials {
  if (transport.kind === 'plaintext-local-mode') return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(null, [{ private_key: Buffer.from(transport.keyPem), cert_chain: Buffer.from(transport.certPem) }], false);
}

function serverOptions(options: DiscoveryServerOptions): Record<string, number> {
  const keepaliveMs = options.keepaliveMs ?? 30_000;
  return {
    // Channelz keeps per-connection and per-call trace state; with a thousand long-lived streams
    // that is memory nobody reads (we export Prometheus metrics instead).
    'grpc.enable_channelz': 0,
    'grpc.keepalive_time_ms': keepaliveMs,
    'grpc.keepalive_timeout_ms': Math.min(keepaliveMs, 10_000),
    ...(options.maxConnectionAgeMs !== undefined
      ? { 'grpc.max_connection_age_ms': options.maxConnectionAgeMs, 'grpc.max_connection_age_grace_ms': 10_000 }
      : {}),
  };
}

function bind(server: Server, address: string, credentials: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (error, port) => {
      if (error) reject(new GatehouseError('GH_ERR_CP_LISTEN', { address, detail: error.message }, { cause: error }));
      else resolve(port);
    });
  });
}

export async function startDiscoveryServer(options: DiscoveryServerOptions): Promise<DiscoveryServer> {
  const streams = new Set<NodeStream>();
  const streamOptions = {
    watcher: options.watcher,
    authenticator: options.authenticator,
    metrics: options.metrics,
    logger: options.logger,
    debounceMs: options.debounceMs ?? DEFAULT_DEBOUNCE_MS,
    snapshotTtlMs: options.snapshotTtlMs ?? DEFAULT_SNAPSHOT_TTL_MS,
    clock: options.clock ?? Date.now,
  };
  let closing = false;
  const server = new Server(serverOptions(options));
  server.addService(options.proto.service, {
    ...options.extraHandlers,
    StreamSnapshots: (call: ServerDuplexStream<DiscoveryRequest, DiscoveryResponseInit>) => {
      const stream = new NodeStream(call, streamOptions, (closed) => streams.delete(closed));
      streams.add(stream);
      if (closing) stream.shutdown();
    },
  });
  const address = `${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}`;
  const port = await bind(server, address, credentialsFor(options.transport));
  options.logger.info({ address: `${options.host}:${port}`, transport: options.transport.kind }, 'policy discovery service listening');
  return {
    port,
    connectedStreams: () => [...streams].filter((stream) => stream.authenticatedNode !== undefined).length,
    close: async (graceMs = 5_000) => {
      closing = true;
      for (const stream of [...streams]) stream.shutdown();
      await shutdown(server, graceMs);
    },
  };
}

function shutdown(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
