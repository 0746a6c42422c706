// The sidecar's listener for one PostgreSQL ProtectedResource on 127.0.0.1:spec.sidecar.port: accepts
// app connections, runs a PostgresSession for each, maps cancel keys, and drains on shutdown.
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { adoptAccepted, readsDirectly } from '../net/direct-reads.js';
import { GatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import type { SqlClassifier } from '../../api/sql/classify.js';
import type { StatementApprovals } from '../approvals/statement-approvals.js';
import type { SidecarMetrics } from '../metrics/sidecar-metrics.js';
import type { SessionRecorder } from '../recording/session-recorder.js';
import type { BackendKey } from './protocol/startup-messages.js';
import { sendCancel } from './upstream/cancel-request.js';
import { PostgresSession, splitAddress, type CancelRegistry, type SessionLimits } from './session/postgres-session.js';
import { upstreamTlsOptions, type PostgresResourceHandle, type PostgresResourceState } from './session/resource-state.js';

export interface PostgresListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly resource: PostgresResourceHandle;
  readonly classifier: SqlClassifier;
  readonly metrics: SidecarMetrics;
  readonly logger: Logger;
  readonly recorder: SessionRecorder;
  readonly limits: SessionLimits;
  /** Holds require-approval statements for a decision; without it they are denied. */
  readonly approvals?: StatementApprovals;
}

class CancelKeys implements CancelRegistry {
  private readonly keys = new Map<string, () => Promise<void>>();

  private static id(key: BackendKey): string {
    return `${key.processId}:${key.secretKey}`;
  }

  register(clientKey: BackendKey, cancel: () => Promise<void>): void {
    this.keys.set(CancelKeys.id(clientKey), cancel);
  }

  unregister(clientKey: BackendKey): void {
    this.keys.delete(CancelKeys.id(clientKey));
  }

  async cancel(clientKey: BackendKey): Promise<void> {
    // An unknown key is ignored silently, as PostgreSQL does: no oracle for guessing keys.
    await this.keys.get(CancelKeys.id(clientKey))?.().catch(() => undefined);
  }
}

function cancelUpstream(state: PostgresResourceState, key: BackendKey): Promise<void> {
  const [host, port] = splitAddress(state.resource.spec.address);
  return sendCancel({
    host,
    port,
    processId: key.processId,
    secretKey: key.secretKey,
    // Same TLS as the session, server name included: the cancel key must not cross the network in clear.
    tls: upstreamTlsOptions(state),
  });
}

export class PostgresListener {
  private server: Server | undefined;
  private readonly sessions = new Set<PostgresSession>();
  private readonly sockets = new Set<Socket>();
  private readonly cancels = new CancelKeys();
  private directReadsUnavailableLogged = false;

  constructor(private readonly options: PostgresListenerOptions) {}

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? this.options.port;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  async start(): Promise<void> {
    // Paused on connect so that adoptAccepted can re-wrap the connection before anything is read.
    const server = createServer({ pauseOnConnect: true }, (socket) => this.accept(this.adopt(socket)));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          new GatehouseError('GH_ERR_PG_LISTEN', {
            address: `${this.options.host}:${this.options.port}`,
            resource: this.options.resource.name,
            detail: error.code ?? error.message,
          }),
        ),
      );
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    server.on('error', (error) => this.options.logger.error({ err: error.message }, 'listener error'));
    this.server = server;
  }

  /** The connection with direct reads (ADR 0006); said once if this Node does not allow them. */
  private adopt(accepted: Socket): Socket {
    const socket = adoptAccepted(accepted);
    if (!readsDirectly(socket) && !this.directReadsUnavailableLogged) {
      this.directReadsUnavailableLogged = true;
      this.options.logger.info({ node: process.version }, 'accepted connections use stream reads: this Node.js does not allow direct reads (slower, otherwise the same)');
    }
    return socket;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    const session = new PostgresSession(socket, {
      resource: this.options.resource,
      classifier: this.options.classifier,
      metrics: this.options.metrics,
      logger: this.options.logger,
      recorder: this.options.recorder,
      cancels: this.cancels,
      limits: this.options.limits,
      sendCancel: cancelUpstream,
      ...(this.options.approvals ? { approvals: this.options.approvals } : {}),
    });
    this.sessions.add(session);
    void session.run().finally(() => {
      this.sessions.delete(session);
      this.sockets.delete(socket);
    });
  }

  /** Ends every session now (revoked access, or the end of a drain). */
  terminateAll(reason: string): void {
    for (const session of this.sessions) session.terminate(reason);
  }

  /** Stops accepting, waits up to `graceMs` for sessions to end by themselves, then ends them. */
  async drain(graceMs: number): Promise<void> {
    const server = this.server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const deadline = Date.now() + graceMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    this.terminateAll('the sidecar is shutting down');
    for (const socket of this.sockets) socket.destroy();
    await closed;
    this.server = undefined;
  }
}
