// The policy discovery service as local mode runs it: the real gRPC server, but bound to loopback,
// in plaintext, and with an authenticator that knows exactly one node, the sidecar in this process,
// which proves itself with a random token made for this run (local mode has no cluster tokens).
// The authenticator is not exported and this is the only way to start it, so it cannot end up in
// front of a cluster: there the server is started with TLS and nodeAuthenticatorFrom(...).
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { GatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import type { DiscoveryProto } from '../../api/proto/discovery-proto.js';
import type { ControlPlaneMetrics } from '../control-plane/control-plane-metrics.js';
import type { AuthenticationResult, NodeAuthenticator } from '../control-plane/node-stream.js';
import type { ConfigWatcher } from '../control-plane/snapshot-cache.js';
import { startDiscoveryServer, type DiscoveryServer } from '../control-plane/stream-server.js';

export interface LocalDiscoveryServerOptions {
  readonly proto: DiscoveryProto;
  readonly watcher: ConfigWatcher;
  readonly metrics: ControlPlaneMetrics;
  readonly logger: Logger;
  /** The one node served. */
  readonly nodeId: string;
  /** A loopback address; 127.0.0.1 by default. */
  readonly host?: string;
  /** 0 (a free port) by default. */
  readonly port?: number;
  readonly debounceMs?: number;
  readonly snapshotTtlMs?: number;
}

export interface LocalDiscoveryServer extends DiscoveryServer {
  /** host:port for the SnapshotClient. */
  readonly address: string;
  readonly nodeId: string;
  /** The token the in-process sidecar presents; it never leaves the process. */
  readonly token: string;
}

/** Accepts one token, and proves one node with it (the stream server refuses any other claim). */
class LocalModeAuthenticator implements NodeAuthenticator {
  private readonly expected: Buffer;

  constructor(
    private readonly nodeId: string,
    token: string,
  ) {
    this.expected = Buffer.from(token);
  }

  async authenticate(token: string): Promise<AuthenticationResult> {
    const presented = Buffer.from(token);
    const matches = presented.length === this.expected.length && timingSafeEqual(presented, this.expected);
    return matches ? { nodeId: this.nodeId } : new GatehouseError('GH_ERR_LOCAL_TOKEN');
  }
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

export async function startLocalDiscoveryServer(options: LocalDiscoveryServerOptions): Promise<LocalDiscoveryServer> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopback(host)) throw new GatehouseError('GH_ERR_LOCAL_NOT_LOOPBACK', { host });
  const token = randomBytes(32).toString('base64url');
  const server = await startDiscoveryServer({
    proto: options.proto,
    watcher: options.watcher,
    authenticator: new LocalModeAuthenticator(options.nodeId, token),
    metrics: options.metrics,
    logger: options.logger,
    transport: { kind: 'plaintext-local-mode' },
    host,
    port: options.port ?? 0,
    ...(options.debounceMs !== undefined ? { debounceMs: options.debounceMs } : {}),
    ...(options.snapshotTtlMs !== undefined ? { snapshotTtlMs: options.snapshotTtlMs } : {}),
  });
  return {
    port: server.port,
    connectedStreams: () => server.connectedStreams(),
    close: (graceMs) => server.close(graceMs),
    address: `${host.includes(':') ? `[${host}]` : host}:${server.port}`,
    nodeId: options.nodeId,
    token,
  };
}
