// Cancels a running query on the real backend: the proxy maps a client's CancelRequest (which
// names the sidecar's made-up key) to this, with the upstream backend's own key. PostgreSQL reads
// the request on a new connection, never answers, and closes it.
import type { Socket } from 'node:net';
import { GatehouseError } from '../../../api/errors.js';
import { encodeCancelRequest, type BackendKey } from '../protocol/startup-messages.js';
import { withDeadline } from './deadline.js';
import { closedError, formatAddress } from './upstream-errors.js';
import { openUpstreamTransport, type UpstreamTlsOptions } from './upstream-transport.js';

export const DEFAULT_CANCEL_TIMEOUT_MS = 5_000;

export interface CancelTarget extends BackendKey {
  readonly host: string;
  readonly port: number;
  /** As for the session, so the key never crosses the network in clear when the session did not. */
  readonly tls: UpstreamTlsOptions;
  readonly timeoutMs?: number;
}

/** Resolves once the server has taken the request (closed the connection). Never mentions the key in errors. */
export async function sendCancel(target: CancelTarget): Promise<void> {
  const address = formatAddress(target.host, target.port);
  const timeoutMs = target.timeoutMs ?? DEFAULT_CANCEL_TIMEOUT_MS;
  let socket: Socket | undefined;
  const request = encodeCancelRequest(target);
  const cancel = async () => {
    const transport = await openUpstreamTransport({ host: target.host, port: target.port, address, tls: target.tls }, (opened) => { socket = opened; });
    await writeAndAwaitClose(transport, request, address);
  };
  await withDeadline(cancel(), {
    timeoutMs,
    onExpire: () => socket?.destroy(),
    timeoutError: () => new GatehouseError('GH_ERR_PG_UPSTREAM_TIMEOUT', { address, phase: 'cancel', timeoutMs }),
  });
}

/** Resolves when the server closes the connection after the request was sent; fails if it could not be sent. */
function writeAndAwaitClose(socket: Socket, request: Buffer, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = false;
    // A reset after sending still means the server got the request; 'close' below decides.
    socket.on('error', () => undefined);
    socket.once('close', () => (sent ? resolve() : reject(closedError(address, 'cancel'))));
    socket.resume();
    socket.end(request, () => {
      sent = true;
    });
  });
}
