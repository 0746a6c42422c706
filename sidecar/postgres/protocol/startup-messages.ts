// The startup phase: the untyped messages a client opens a connection with (StartupMessage,
// SSLRequest, GSSENCRequest, CancelRequest) and the one-byte answer to an encryption request.
import { GatehouseError } from '../../../api/errors.js';
import { FrameWriter } from './frame-writer.js';
import {
  CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, PROTOCOL_VERSION_3_0, SSL_REQUEST_CODE,
} from './message-types.js';
import { PayloadReader } from './payload-reader.js';

/**
 * What a `replication` startup parameter asks for: `physical` for a boolean true, `logical` for
 * `database`. A value PostgreSQL would reject also counts as `physical`, so a policy never sees
 * "no replication" for a connection that asked for something it does not understand.
 */
export type ReplicationMode = 'none' | 'physical' | 'logical';

export interface StartupMessage {
  readonly kind: 'StartupMessage';
  readonly protocolVersion: number;
  /** In the order sent; names are unique (duplicates are refused as ambiguous). */
  readonly parameters: ReadonlyMap<string, string>;
  readonly replication: ReplicationMode;
}
export interface SSLRequest { readonly kind: 'SSLRequest' }
export interface GSSENCRequest { readonly kind: 'GSSENCRequest' }
export interface CancelRequest {
  readonly kind: 'CancelRequest';
  readonly processId: number;
  /** Unsigned: the key is 32 random bits, not a quantity. */
  readonly secretKey: number;
}
export type StartupPhaseMessage = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest;

export interface BackendKey {
  readonly processId: number;
  readonly secretKey: number;
}

/** The server's answers to SSLRequest / GSSENCRequest. */
export const ENCRYPTION_ACCEPTED = 0x53; // S for SSL, G for GSS
export const ENCRYPTION_REFUSED = 0x4e; // N

/** Decodes the payload of a startup-phase frame (after the length word). */
export function decodeStartupPhaseMessage(payload: Buffer): StartupPhaseMessage {
  const reader = new PayloadReader(payload, 'startup', 'strict');
  const code = reader.int32();
  switch (code) {
    case SSL_REQUEST_CODE:
      reader.end();
      return { kind: 'SSLRequest' };
    case GSSENC_REQUEST_CODE:
      reader.end();
      return { kind: 'GSSENCRequest' };
    case CANCEL_REQUEST_CODE:
      return decodeCancelRequest(reader);
    case PROTOCOL_VERSION_3_0:
      return decodeStartupParameters(reader, code);
    default:
      throw new GatehouseError('GH_ERR_PG_UNSUPPORTED_PROTOCOL', { version: formatProtocolVersion(code) });
  }
}

function decodeCancelRequest(reader: PayloadReader): CancelRequest {
  const processId = reader.int32();
  const secretKey = reader.uint32();
  reader.end();
  return { kind: 'CancelRequest', processId, secretKey };
}

function decodeStartupParameters(reader: PayloadReader, protocolVersion: number): StartupMessage {
  const parameters = new Map<string, string>();
  for (;;) {
    const name = reader.cstring('parameter name');
    if (name === '') break;
    if (parameters.has(name)) reader.fail(`parameter ${JSON.stringify(name)} appears twice`);
    parameters.set(name, reader.cstring(`value of parameter ${JSON.stringify(name)}`));
  }
  reader.end();
  return { kind: 'StartupMessage', protocolVersion, parameters, replication: replicationMode(parameters.get('replication')) };
}

/** Mirrors how PostgreSQL reads `replication`: exactly `database`, else parse_bool's case-insensitive prefixes. */
export function replicationMode(value: string | undefined): ReplicationMode {
  if (value === undefined) return 'none';
  if (value === 'database') return 'logical';
  const lower = value.toLowerCase();
  const isPrefixOf = (word: string, minimum: number) => lower.length >= minimum && word.startsWith(lower);
  if (isPrefixOf('false', 1) || isPrefixOf('no', 1) || isPrefixOf('off', 3) || lower === '0') return 'none';
  return 'physical';
}

function formatProtocolVersion(code: number): string {
  return `${code >>> 16}.${code & 0xffff}`;
}

/** A protocol 3.0 StartupMessage; `user` is required by every server, so callers pass it here. */
export function encodeStartupMessage(parameters: ReadonlyMap<string, string> | Readonly<Record<string, string>>): Buffer {
  const entries = parameters instanceof Map ? [...parameters] : Object.entries(parameters);
  const writer = new FrameWriter(undefined, 'StartupMessage', 256).int32(PROTOCOL_VERSION_3_0, 'protocol version');
  for (const [name, value] of entries) {
    if (name === '') throw new GatehouseError('GH_ERR_PG_ENCODE_INVALID', { message: 'StartupMessage', detail: 'empty parameter name' });
    writer.cstring(name, 'parameter name').cstring(value, `parameter ${name}`);
  }
  return writer.uint8(0, 'terminator').finish();
}

export function encodeSSLRequest(): Buffer {
  return new FrameWriter(undefined, 'SSLRequest', 8).int32(SSL_REQUEST_CODE, 'code').finish();
}

export function encodeGSSENCRequest(): Buffer {
  return new FrameWriter(undefined, 'GSSENCRequest', 8).int32(GSSENC_REQUEST_CODE, 'code').finish();
}

export function encodeCancelRequest(key: BackendKey): Buffer {
  return new FrameWriter(undefined, 'CancelRequest', 16)
    .int32(CANCEL_REQUEST_CODE, 'code')
    .int32(key.processId, 'processId')
    .uint32(key.secretKey, 'secretKey')
    .finish();
}

/** The one-byte "no encryption here" answer to SSLRequest / GSSENCRequest; the client then continues in plaintext. */
export function encodeEncryptionRefused(): Buffer {
  return Buffer.from([ENCRYPTION_REFUSED]);
}
