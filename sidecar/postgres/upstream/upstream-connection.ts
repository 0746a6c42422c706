// Opens an authenticated session to the real PostgreSQL behind a ProtectedResource: transport and
// TLS, StartupMessage, authentication with the sidecar's short-lived credential, then the session
// parameters and cancel key up to the first ReadyForQuery. The socket is then handed to the proxy.
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { GatehouseError } from '../../../api/errors.js';
import { decodeBackendMessage, isAuthenticationMessage } from '../protocol/backend-messages.js';
import { encodeTerminate } from '../protocol/frontend-encoders.js';
import { encodeStartupMessage, type BackendKey } from '../protocol/startup-messages.js';
import { withDeadline } from './deadline.js';
import { md5PasswordHash } from './md5-password.js';
import { ALL_UPSTREAM_AUTH_METHODS, UpstreamAuthenticator, type UpstreamAuthMethod } from './upstream-authenticator.js';
import {
  closedError, formatAddress, protocolError, rejectedError, upstreamSocketError, type RejectionContext, type UpstreamPhase,
} from './upstream-errors.js';
import { UpstreamFrameReader } from './upstream-frame-reader.js';
import { openUpstreamTransport, type UpstreamTlsOptions } from './upstream-transport.js';

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_AUTH_TIMEOUT_MS = 10_000;
/** Startup parameters set from dedicated options, which `parameters` may not override. */
const RESERVED_PARAMETERS = ['user', 'database'];

export interface UpstreamConnectionOptions {
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  readonly tls: UpstreamTlsOptions;
  readonly applicationName?: string;
  /** Further startup parameters from the client, already filtered to a safe set by the caller. */
  readonly parameters?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
  /** TCP connect plus TLS negotiation. */
  readonly connectTimeoutMs?: number;
  /** StartupMessage to ReadyForQuery. */
  readonly authTimeoutMs?: number;
  /** Methods the server may ask for; all by default (as libpq). Narrow it to refuse e.g. cleartext. */
  readonly acceptedAuthMethods?: readonly UpstreamAuthMethod[];
  readonly signal?: AbortSignal;
}

export interface UpstreamConnection {
  /**
   * Past authentication and the first ReadyForQuery, paused and detached: attach 'data', 'error'
   * and 'close' listeners, then resume(). Until then a guard swallows socket errors so that one
   * failing upstream cannot crash the process.
   */
  readonly socket: Socket | TLSSocket;
  /** Server bytes already read after ReadyForQuery; the proxy must process them before the socket's. */
  readonly leftover: Buffer;
  /** ParameterStatus values from the session start, by name. */
  readonly parameters: ReadonlyMap<string, string>;
  /** For CancelRequest; `undefined` if the server sent no BackendKeyData. */
  readonly backendKey: BackendKey | undefined;
  /** The server_version parameter, e.g. "15.8 (Debian 15.8-1)". */
  readonly serverVersion: string;
  readonly encrypted: boolean;
  readonly authMethod: UpstreamAuthMethod;
  /** Sends Terminate and closes; resolves once the socket is closed. */
  close(): Promise<void>;
}

interface SessionStart {
  readonly parameters: Map<string, string>;
  backendKey: BackendKey | undefined;
}

export async function connectUpstream(options: UpstreamConnectionOptions): Promise<UpstreamConnection> {
  const startup = encodeStartupMessage(startupParameters(options));
  const address = formatAddress(options.host, options.port);
  let socket: Socket | undefined;
  const deadline = (phase: UpstreamPhase, timeoutMs: number) => ({
    timeoutMs,
    signal: options.signal,
    onExpire: () => socket?.destroy(),
    timeoutError: () => new GatehouseError('GH_ERR_PG_UPSTREAM_TIMEOUT', { address, phase, timeoutMs }),
  });
  const transport = await withDeadline(
    openUpstreamTransport({ host: options.host, port: options.port, address, tls: options.tls }, (opened) => { socket = opened; }),
    deadline('connect', options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
  );
  try {
    return await withDeadline(startSession(transport, startup, options, address), deadline('authentication', options.authTimeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS));
  } catch (error) {
    transport.destroy();
    throw error;
  }
}

function startupParameters(options: UpstreamConnectionOptions): Map<string, string> {
  const parameters = new Map<string, string>([['user', options.user], ['database', options.database]]);
  if (options.applicationName !== undefined) parameters.set('application_name', options.applicationName);
  const extra = options.parameters instanceof Map ? [...options.parameters] : Object.entries(options.parameters ?? {});
  for (const [name, value] of extra) {
    if (parameters.has(name) || RESERVED_PARAMETERS.includes(name)) {
      throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail: `startup parameter ${name} is set by a dedicated option and may not be passed again` });
    }
    parameters.set(name, value);
  }
  return parameters;
}

async function startSession(socket: Socket, startup: Buffer, options: UpstreamConnectionOptions, address: string): Promise<UpstreamConnection> {
  let phase: UpstreamPhase = 'authentication';
  const reader = new UpstreamFrameReader(socket, () => closedError(address, phase));
  const context: RejectionContext = {
    address, user: options.user, secrets: [options.password, md5PasswordHash(options.user, options.password)],
  };
  try {
    socket.write(startup);
    const authMethod = await authenticate(reader, socket, options, context);
    phase = 'session start';
    const session = await readSessionStart(reader, context);
    const leftover = reader.release();
    return handOver(socket, session, leftover, authMethod);
  } catch (error) {
    reader.release();
    throw upstreamSocketError(error, address, phase);
  }
}

async function authenticate(
  reader: UpstreamFrameReader, socket: Socket, options: UpstreamConnectionOptions, context: RejectionContext,
): Promise<UpstreamAuthMethod> {
  const authenticator = new UpstreamAuthenticator(
    { user: options.user, password: options.password, accepted: options.acceptedAuthMethods ?? ALL_UPSTREAM_AUTH_METHODS, address: context.address },
    (frame) => socket.write(frame),
  );
  for (;;) {
    const message = decodeBackendMessage(await reader.next());
    if (message.kind === 'ErrorResponse') throw rejectedError(message.fields, context);
    // A notice, or the server declining protocol options we never send: nothing to act on.
    if (message.kind === 'NoticeResponse' || message.kind === 'NegotiateProtocolVersion') continue;
    if (!isAuthenticationMessage(message)) {
      throw protocolError(context.address, 'authentication', `${message.kind} before authentication completed`);
    }
    const method = await authenticator.handle(message);
    if (method !== undefined) return method;
  }
}

async function readSessionStart(reader: UpstreamFrameReader, context: RejectionContext): Promise<SessionStart> {
  const session: SessionStart = { parameters: new Map(), backendKey: undefined };
  for (;;) {
    const message = decodeBackendMessage(await reader.next());
    switch (message.kind) {
      case 'ParameterStatus':
        session.parameters.set(message.name, message.value);
        break;
      case 'BackendKeyData':
        session.backendKey = { processId: message.processId, secretKey: message.secretKey };
        break;
      case 'NoticeResponse':
        break;
      case 'ErrorResponse':
        throw rejectedError(message.fields, context);
      case 'ReadyForQuery':
        if (message.status !== 'I') throw protocolError(context.address, 'session start', `ReadyForQuery status ${message.status}, expected I`);
        return session;
      default:
        throw protocolError(context.address, 'session start', `unexpected ${message.kind}`);
    }
  }
}

function handOver(socket: Socket, session: SessionStart, leftover: Buffer, authMethod: UpstreamAuthMethod): UpstreamConnection {
  socket.on('error', ignoreError);
  return {
    socket,
    leftover,
    parameters: session.parameters,
    backendKey: session.backendKey,
    serverVersion: session.parameters.get('server_version') ?? '',
    encrypted: socket instanceof TLSSocket,
    authMethod,
    close: () => closeGracefully(socket),
  };
}

function ignoreError(): void {
  // See UpstreamConnection.socket: the owner's own listeners report errors.
}

/** Terminate, then wait for the server to close; destroy if it takes longer than a second. */
function closeGracefully(socket: Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => socket.destroy(), 1000);
    timer.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    // Drain whatever the server still sends, or the end of stream is never seen.
    socket.resume();
    socket.end(encodeTerminate());
  });
}
