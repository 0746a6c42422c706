// Decoders for the typed messages a client sends after startup: everything a policy may need to
// look inside (Query, the extended protocol, FunctionCall, COPY, passwords). Validation is strict:
// a string without its NUL, a count the payload cannot hold or a trailing byte is a malformed
// message (GatehouseError), because a proxy that reads a frame differently from the server can be
// made to approve one statement while the server runs another.
import { GatehouseError } from '../../../api/errors.js';
import type { Frame, ReceivedFrame } from './frame-splitter.js';
import { FrontendType, describeTypeByte } from './message-types.js';
import { PayloadReader } from './payload-reader.js';

/** Whether a Describe or Close names a prepared statement or a portal. */
export type StatementOrPortal = 'statement' | 'portal';

export interface QueryMessage { readonly kind: 'Query'; readonly sql: string }
export interface ParseMessage {
  readonly kind: 'Parse';
  /** Empty for the unnamed statement. */
  readonly statement: string;
  readonly query: string;
  /** Parameter type OIDs; 0 leaves the type to the server. */
  readonly paramTypes: readonly number[];
}
export interface BindMessage {
  readonly kind: 'Bind';
  readonly portal: string;
  readonly statement: string;
  readonly paramFormats: readonly number[];
  /** Views into the frame; `null` is SQL NULL. */
  readonly params: readonly (Buffer | null)[];
  readonly resultFormats: readonly number[];
}
export interface ExecuteMessage { readonly kind: 'Execute'; readonly portal: string; readonly maxRows: number }
export interface DescribeMessage { readonly kind: 'Describe'; readonly target: StatementOrPortal; readonly name: string }
export interface CloseMessage { readonly kind: 'Close'; readonly target: StatementOrPortal; readonly name: string }
export interface SyncMessage { readonly kind: 'Sync' }
export interface FlushMessage { readonly kind: 'Flush' }
export interface TerminateMessage { readonly kind: 'Terminate' }
export interface FunctionCallMessage {
  readonly kind: 'FunctionCall';
  readonly functionOid: number;
  readonly argFormats: readonly number[];
  readonly args: readonly (Buffer | null)[];
  readonly resultFormat: number;
}
export interface CopyDataMessage { readonly kind: 'CopyData'; readonly data: Buffer }
export interface CopyDoneMessage { readonly kind: 'CopyDone' }
export interface CopyFailMessage { readonly kind: 'CopyFail'; readonly reason: string }
/**
 * A 'p' message. Its layout depends on the authentication exchange in progress, which only the
 * caller knows, so the body is kept raw; see decodePassword, decodeSASLInitialResponse.
 */
export interface PasswordMessage { readonly kind: 'PasswordMessage'; readonly data: Buffer }

export type FrontendMessage =
  | QueryMessage | ParseMessage | BindMessage | ExecuteMessage | DescribeMessage | CloseMessage
  | SyncMessage | FlushMessage | TerminateMessage | FunctionCallMessage
  | CopyDataMessage | CopyDoneMessage | CopyFailMessage | PasswordMessage;

export type FrontendMessageKind = FrontendMessage['kind'];

type FrameBody = Pick<Frame, 'type' | 'payload'>;
type Decoder = (reader: PayloadReader) => FrontendMessage;

const DECODERS = new Map<number, readonly [name: FrontendMessageKind, decode: Decoder]>([
  [FrontendType.Query, ['Query', decodeQuery]],
  [FrontendType.Parse, ['Parse', decodeParse]],
  [FrontendType.Bind, ['Bind', decodeBind]],
  [FrontendType.Execute, ['Execute', decodeExecute]],
  [FrontendType.Describe, ['Describe', (reader) => ({ kind: 'Describe', ...decodeTargetAndName(reader) })]],
  [FrontendType.Close, ['Close', (reader) => ({ kind: 'Close', ...decodeTargetAndName(reader) })]],
  [FrontendType.Sync, ['Sync', () => ({ kind: 'Sync' })]],
  [FrontendType.Flush, ['Flush', () => ({ kind: 'Flush' })]],
  [FrontendType.Terminate, ['Terminate', () => ({ kind: 'Terminate' })]],
  [FrontendType.FunctionCall, ['FunctionCall', decodeFunctionCall]],
  [FrontendType.CopyData, ['CopyData', (reader) => ({ kind: 'CopyData', data: reader.rest() })]],
  [FrontendType.CopyDone, ['CopyDone', () => ({ kind: 'CopyDone' })]],
  [FrontendType.CopyFail, ['CopyFail', (reader) => ({ kind: 'CopyFail', reason: reader.cstring('reason') })]],
  [FrontendType.Password, ['PasswordMessage', (reader) => ({ kind: 'PasswordMessage', data: reader.rest() })]],
]);

/** Decodes one typed client frame; throws GatehouseError (GH_ERR_PG_*) for anything but a well-formed message. */
export function decodeFrontendMessage(frame: FrameBody): FrontendMessage {
  const entry = DECODERS.get(frame.type);
  if (entry === undefined) {
    throw new GatehouseError('GH_ERR_PG_UNKNOWN_MESSAGE', { direction: 'client', type: describeTypeByte(frame.type) });
  }
  const [name, decode] = entry;
  const reader = new PayloadReader(frame.payload, name, 'strict');
  const message = decode(reader);
  reader.end();
  return message;
}

/** The kind a type byte would decode to, without decoding; `undefined` for unknown types. */
export function frontendMessageKind(type: number): FrontendMessageKind | undefined {
  return DECODERS.get(type)?.[0];
}

/**
 * The SQL text of a Query frame that is plain ASCII (the usual case), read in place: one pass over
 * the bytes instead of a payload view, a NUL search, a UTF-8 validation and a UTF-8 decode, each a
 * call into C++. Undefined for anything else (non-ASCII text, a misplaced or missing NUL, another
 * type), which decodeFrontendMessage then decodes or refuses as usual; when both answer, they agree.
 */
export function asciiQueryText(frame: ReceivedFrame): string | undefined {
  const source = frame.source;
  const nul = frame.end - 1;
  if (frame.type !== FrontendType.Query || nul < frame.start + 5 || source[nul] !== 0) return undefined;
  for (let index = frame.start + 5; index < nul; index += 1) {
    const byte = source[index]!;
    if (byte === 0 || byte > 0x7f) return undefined;
  }
  return source.toString('latin1', frame.start + 5, nul);
}

function decodeQuery(reader: PayloadReader): QueryMessage {
  return { kind: 'Query', sql: reader.cstring('query string') };
}

function decodeParse(reader: PayloadReader): ParseMessage {
  const statement = reader.cstring('statement name');
  const query = reader.cstring('query string');
  const count = reader.count16('parameter type', 4);
  const paramTypes = new Array<number>(count);
  for (let i = 0; i < count; i++) paramTypes[i] = reader.uint32();
  return { kind: 'Parse', statement, query, paramTypes };
}

function decodeBind(reader: PayloadReader): BindMessage {
  const portal = reader.cstring('portal name');
  const statement = reader.cstring('statement name');
  const paramFormats = reader.int16Array(reader.count16('parameter format', 2));
  const params = decodeValues(reader, 'parameter');
  const resultFormats = reader.int16Array(reader.count16('result format', 2));
  return { kind: 'Bind', portal, statement, paramFormats, params, resultFormats };
}

function decodeExecute(reader: PayloadReader): ExecuteMessage {
  return { kind: 'Execute', portal: reader.cstring('portal name'), maxRows: reader.int32() };
}

function decodeTargetAndName(reader: PayloadReader): { target: StatementOrPortal; name: string } {
  const code = reader.uint8();
  if (code !== 0x53 && code !== 0x50) reader.fail(`target ${describeTypeByte(code)} is neither 'S' nor 'P'`);
  return { target: code === 0x53 ? 'statement' : 'portal', name: reader.cstring('name') };
}

function decodeFunctionCall(reader: PayloadReader): FunctionCallMessage {
  const functionOid = reader.uint32();
  const argFormats = reader.int16Array(reader.count16('argument format', 2));
  const args = decodeValues(reader, 'argument');
  const resultFormat = reader.int16();
  return { kind: 'FunctionCall', functionOid, argFormats, args, resultFormat };
}

/** An Int16 count then that many length-prefixed values (length -1 is NULL). */
function decodeValues(reader: PayloadReader, what: string): (Buffer | null)[] {
  const count = reader.count16(what, 4);
  const values = new Array<Buffer | null>(count);
  for (let i = 0; i < count; i++) values[i] = reader.nullableBytes(`${what} ${i + 1}`);
  return values;
}

/** The body of a PasswordMessage answering a cleartext or MD5 request. */
export function decodePassword(data: Buffer): string {
  const reader = new PayloadReader(data, 'PasswordMessage', 'strict');
  const password = reader.cstring('password');
  reader.end();
  return password;
}

export interface SASLInitialResponse {
  readonly mechanism: string;
  /** `null` when the client sent no initial response (length -1). */
  readonly response: Buffer | null;
}

/** The body of a 'p' message that answers AuthenticationSASL. (A SASLResponse body is the data itself.) */
export function decodeSASLInitialResponse(data: Buffer): SASLInitialResponse {
  const reader = new PayloadReader(data, 'SASLInitialResponse', 'strict');
  const mechanism = reader.cstring('mechanism');
  const response = reader.nullableBytes('initial response');
  reader.end();
  return { mechanism, response };
}
