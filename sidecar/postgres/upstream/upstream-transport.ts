// Opens the byte stream to an upstream PostgreSQL: TCP, then TLS as the resource's mode asks,
// negotiated with SSLRequest the way libpq does (disable, prefer, require, verify-full).
import { isIP, type Socket } from 'node:net';
import { checkServerIdentity, connect as connectTls, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { GatehouseError } from '../../../api/errors.js';
import { connectDirect } from '../../net/direct-reads.js';
import { ENCRYPTION_ACCEPTED, ENCRYPTION_REFUSED, encodeSSLRequest } from '../protocol/startup-messages.js';
import { protocolError, upstreamSocketError } from './upstream-errors.js';

/**
 * `disable`: plaintext. `prefer`: TLS if the server offers it, else plaintext. `require`: TLS or
 * fail, certificate unchecked (as in libpq). `verify-full`: TLS with the certificate chained to the
 * given CA (or the system CAs) and naming the host.
 */
export type UpstreamTlsMode = 'disable' | 'prefer' | 'require' | 'verify-full';

export interface UpstreamTlsOptions {
  readonly mode: UpstreamTlsMode;
  /** PEM CA bundle for verify-full; the system CAs when absent. */
  readonly caPem?: string;
  /** Name the certificate must carry (and SNI), when it differs from the host dialled, e.g. an IP. */
  readonly servername?: string;
}

export interface UpstreamTarget {
  readonly host: string;
  readonly port: number;
  /** host:port for messages. */
  readonly address: string;
  readonly tls: UpstreamTlsOptions;
}

/** Connects and negotiates TLS; on failure the socket is destroyed and a GatehouseError thrown. */
export async function openUpstreamTransport(target: UpstreamTarget, onSocket: (socket: Socket) => void): Promise<Socket> {
  // Direct reads (no stream machinery per read); TLS, when negotiated, reads the connection itself.
  const tcp = connectDirect({ host: target.host, port: target.port });
  onSocket(tcp);
  try {
    await connected(tcp, target.address);
    tcp.setNoDelay(true);
    tcp.setKeepAlive(true, 60_000);
    if (target.tls.mode === 'disable') return tcp;
    const secured = await negotiateTls(tcp, target);
    if (secured !== tcp) onSocket(secured);
    return secured;
  } catch (error) {
    tcp.destroy();
    throw error;
  }
}

function connected(socket: Socket, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve();
    });
    socket.once('error', (error) => reject(upstreamSocketError(error, address, 'connect')));
  });
}

/** Sends SSLRequest and upgrades, or falls back to plaintext in prefer mode. */
async function negotiateTls(socket: Socket, target: UpstreamTarget): Promise<Socket> {
  socket.write(encodeSSLRequest());
  const answer = await readEncryptionAnswer(socket, target.address);
  if (answer === ENCRYPTION_ACCEPTED) return upgrade(socket, target);
  if (target.tls.mode === 'prefer') return socket;
  throw new GatehouseError('GH_ERR_PG_UPSTREAM_TLS_REFUSED', { address: target.address, mode: target.tls.mode });
}

/**
 * The server's one-byte answer. Anything after that byte arrived before the TLS handshake and could
 * only be an attacker's injection (CVE-2021-23222), so it is refused rather than read.
 */
function readEncryptionAnswer(socket: Socket, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      socket.pause();
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      cleanup();
      const answer = chunk[0];
      if (chunk.length !== 1) reject(protocolError(address, 'tls', 'the server sent data after its answer to SSLRequest'));
      else if (answer !== ENCRYPTION_ACCEPTED && answer !== ENCRYPTION_REFUSED) {
        reject(protocolError(address, 'tls', `unexpected answer 0x${answer.toString(16)} to SSLRequest`));
      } else resolve(answer);
    };
    const onError = (error: Error) => {
      cleanup();
      reject(upstreamSocketError(error, address, 'tls'));
    };
    const onClose = () => {
      cleanup();
      reject(new GatehouseError('GH_ERR_PG_UPSTREAM_CLOSED', { address, phase: 'tls' }));
    };
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('close', onClose);
  });
}

function upgrade(socket: Socket, target: UpstreamTarget): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const secured = connectTls(tlsOptions(socket, target));
    const onError = (error: Error) => {
      secured.destroy();
      reject(upstreamSocketError(error, target.address, 'tls'));
    };
    secured.once('error', onError);
    secured.once('secureConnect', () => {
      secured.off('error', onError);
      resolve(secured);
    });
  });
}

function tlsOptions(socket: Socket, target: UpstreamTarget): ConnectionOptions {
  const identity = target.tls.servername ?? target.host;
  const verify = target.tls.mode === 'verify-full';
  return {
    socket,
    // SNI carries DNS names only.
    servername: isIP(identity) === 0 ? identity : undefined,
    minVersion: 'TLSv1.2',
    rejectUnauthorized: verify,
    ca: verify && target.tls.caPem !== undefined ? [target.tls.caPem] : undefined,
    // Explicit, because with `socket` Node would otherwise check the name against "localhost".
    checkServerIdentity: verify ? (_host, certificate) => checkServerIdentity(identity, certificate) : () => undefined,
  };
}
