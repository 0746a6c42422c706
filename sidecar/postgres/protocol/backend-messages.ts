// Decoders for the server messages the proxy inspects: authentication, session parameters and keys,
// result-set metadata and rows (for masking), completion, errors and COPY responses. Strings are
// decoded leniently (see StringDecoding); structure is checked as strictly as for client messages.
import { GatehouseError } from '../../../api/errors.js';
import type { Frame } from './frame-splitter.js';
import { AuthenticationCode, BackendType, describeTypeByte } from './message-types.js';
import { PayloadReader } from './payload-reader.js';

export type AuthenticationMessage =
  | { readonly kind: 'AuthenticationOk' }
  | { readonly kind: 'AuthenticationCleartextPassword' }
  | { readonly kind: 'AuthenticationMD5Password'; readonly salt: Buffer }
  | { readonly kind: 'AuthenticationSASL'; readonly mechanisms: readonly string[] }
  | { readonly kind: 'AuthenticationSASLContinue'; readonly data: Buffer }
  | { readonly kind: 'AuthenticationSASLFinal'; readonly data: Buffer }
  /** Kerberos, GSSAPI, SSPI: recognised so they can be refused by name, not decoded further. */
  | { readonly kind: 'AuthenticationOther'; readonly code: number; readonly data: Buffer };

/** I idle, T in a transaction block, E in a failed transaction block. */
export type TransactionStatus = 'I' | 'T' | 'E';

export interface RowField {
  readonly name: string;
  /** 0 when the column is not a plain table column. */
  readonly tableOid: number;
  readonly columnAttr: number;
  readonly typeOid: number;
  readonly typeLen: number;
  readonly typeMod: number;
  /** 0 text, 1 binary. */
  readonly format: number;
}

export interface CopyResponse {
  /** 0 textual, 1 binary, for the whole copy. */
  readonly format: number;
  readonly columnFormats: readonly number[];
}

export type BackendMessage =
  | AuthenticationMessage
  | { readonly kind: 'ParameterStatus'; readonly name: string; readonly value: string }
  | { readonly kind: 'BackendKeyData'; readonly processId: number; readonly secretKey: number }
  | { readonly kind: 'ReadyForQuery'; readonly status: TransactionStatus }
  | { readonly kind: 'RowDescription'; readonly fields: readonly RowField[] }
  /** Columns are views into the frame; `null` is SQL NULL. */
  | { readonly kind: 'DataRow'; readonly columns: readonly (Buffer | null)[] }
  | { readonly kind: 'CommandComplete'; readonly tag: string }
  /** Fields keyed by their one-letter code (see NoticeField, noticeFromFields). */
  | { readonly kind: 'ErrorResponse'; readonly fields: ReadonlyMap<string, string> }
  | { readonly kind: 'NoticeResponse'; readonly fields: ReadonlyMap<string, string> }
  | { readonly kind: 'ParseComplete' | 'BindComplete' | 'CloseComplete' | 'NoData' | 'EmptyQueryResponse' | 'PortalSuspended' | 'CopyDone' }
  | ({ readonly kind: 'CopyInResponse' | 'CopyOutResponse' | 'CopyBothResponse' } & CopyResponse)
  | { readonly kind: 'CopyData'; readonly data: Buffer }
  | { readonly kind: 'ParameterDescription'; readonly paramTypes: readonly number[] }
  | { readonly kind: 'NotificationResponse'; readonly processId: number; readonly channel: string; readonly payload: string }
  | { readonly kind: 'NegotiateProtocolVersion'; readonly newestMinorVersion: number; readonly unrecognizedOptions: readonly string[] }
  | { readonly kind: 'FunctionCallResponse'; readonly result: Buffer | null };

export type BackendMessageKind = BackendMessage['kind'];

export function isAuthenticationMessage(message: BackendMessage): message is AuthenticationMessage {
  return message.kind.startsWith('Authentication');
}

type FrameBody = Pick<Frame, 'type' | 'payload'>;
type Decoder = (reader: PayloadReader) => BackendMessage;

const empty = (kind: 'ParseComplete' | 'BindComplete' | 'CloseComplete' | 'NoData' | 'EmptyQueryResponse' | 'PortalSuspended' | 'CopyDone'): Decoder =>
  () => ({ kind });

const DECODERS = new Map<number, readonly [name: string, decode: Decoder]>([
  [BackendType.Authentication, ['Authentication', decodeAuthentication]],
  [BackendType.ParameterStatus, ['ParameterStatus', (r) => ({ kind: 'ParameterStatus', name: r.cstring('name'), value: r.cstring('value') })]],
  [BackendType.BackendKeyData, ['BackendKeyData', (r) => ({ kind: 'BackendKeyData', processId: r.int32(), secretKey: r.uint32() })]],
  [BackendType.ReadyForQuery, ['ReadyForQuery', decodeReadyForQuery]],
  [BackendType.RowDescription, ['RowDescription', decodeRowDescription]],
  [BackendType.DataRow, ['DataRow', decodeDataRow]],
  [BackendType.CommandComplete, ['CommandComplete', (r) => ({ kind: 'CommandComplete', tag: r.cstring('command tag') })]],
  [BackendType.ErrorResponse, ['ErrorResponse', (r) => ({ kind: 'ErrorResponse', fields: decodeNoticeFields(r) })]],
  [BackendType.NoticeResponse, ['NoticeResponse', (r) => ({ kind: 'NoticeResponse', fields: decodeNoticeFields(r) })]],
  [BackendType.ParseComplete, ['ParseComplete', empty('ParseComplete')]],
  [BackendType.BindComplete, ['BindComplete', empty('BindComplete')]],
  [BackendType.CloseComplete, ['CloseComplete', empty('CloseComplete')]],
  [BackendType.NoData, ['NoData', empty('NoData')]],
  [BackendType.EmptyQueryResponse, ['EmptyQueryResponse', empty('EmptyQueryResponse')]],
  [BackendType.PortalSuspended, ['PortalSuspended', empty('PortalSuspended')]],
  [BackendType.CopyDone, ['CopyDone', empty('CopyDone')]],
  [BackendType.CopyInResponse, ['CopyInResponse', (r) => ({ kind: 'CopyInResponse', ...decodeCopyResponse(r) })]],
  [BackendType.CopyOutResponse, ['CopyOutResponse', (r) => ({ kind: 'CopyOutResponse', ...decodeCopyResponse(r) })]],
  [BackendType.CopyBothResponse, ['CopyBothResponse', (r) => ({ kind: 'CopyBothResponse', ...decodeCopyResponse(r) })]],
  [BackendType.CopyData, ['CopyData', (r) => ({ kind: 'CopyData', data: r.rest() })]],
  [BackendType.ParameterDescription, ['ParameterDescription', decodeParameterDescription]],
  [BackendType.NotificationResponse, ['NotificationResponse', decodeNotification]],
  [BackendType.NegotiateProtocolVersion, ['NegotiateProtocolVersion', decodeNegotiateProtocolVersion]],
  [BackendType.FunctionCallResponse, ['FunctionCallResponse', (r) => ({ kind: 'FunctionCallResponse', result: r.nullableBytes('result') })]],
]);

/** Decodes one server frame; throws GatehouseError (GH_ERR_PG_*) for anything but a well-formed message. */
export function decodeBackendMessage(frame: FrameBody): BackendMessage {
  const entry = DECODERS.get(frame.type);
  if (entry === undefined) {
    throw new GatehouseError('GH_ERR_PG_UNKNOWN_MESSAGE', { direction: 'server', type: describeTypeByte(frame.type) });
  }
  const [name, decode] = entry;
  const reader = new PayloadReader(frame.payload, name, 'lenient');
  const message = decode(reader);
  reader.end();
  return message;
}

function decodeAuthentication(reader: PayloadReader): AuthenticationMessage {
  const code = reader.int32();
  switch (code) {
    case AuthenticationCode.Ok: return { kind: 'AuthenticationOk' };
    case AuthenticationCode.CleartextPassword: return { kind: 'AuthenticationCleartextPassword' };
    case AuthenticationCode.MD5Password: return { kind: 'AuthenticationMD5Password', salt: reader.bytes(4, 'salt') };
    case AuthenticationCode.SASL: return { kind: 'AuthenticationSASL', mechanisms: decodeMechanisms(reader) };
    case AuthenticationCode.SASLContinue: return { kind: 'AuthenticationSASLContinue', data: reader.rest() };
    case AuthenticationCode.SASLFinal: return { kind: 'AuthenticationSASLFinal', data: reader.rest() };
    case AuthenticationCode.KerberosV5:
    case AuthenticationCode.GSS:
    case AuthenticationCode.GSSContinue:
    case AuthenticationCode.SSPI:
      return { kind: 'AuthenticationOther', code, data: reader.rest() };
    default:
      return reader.fail(`unknown authentication request ${code}`);
  }
}

function decodeMechanisms(reader: PayloadReader): string[] {
  const mechanisms: string[] = [];
  for (let name = reader.cstring('mechanism'); name !== ''; name = reader.cstring('mechanism')) mechanisms.push(name);
  return mechanisms;
}

function decodeReadyForQuery(reader: PayloadReader): BackendMessage {
  const status = String.fromCharCode(reader.uint8());
  if (status !== 'I' && status !== 'T' && status !== 'E') reader.fail(`unknown transaction status ${JSON.stringify(status)}`);
  return { kind: 'ReadyForQuery', status };
}

function decodeRowDescription(reader: PayloadReader): BackendMessage {
  const count = reader.count16('field', 19);
  const fields = new Array<RowField>(count);
  for (let i = 0; i < count; i++) {
    fields[i] = {
      name: reader.cstring('field name'),
      tableOid: reader.uint32(),
      columnAttr: reader.int16(),
      typeOid: reader.uint32(),
      typeLen: reader.int16(),
      typeMod: reader.int32(),
      format: reader.int16(),
    };
  }
  return { kind: 'RowDescription', fields };
}

function decodeDataRow(reader: PayloadReader): BackendMessage {
  const count = reader.count16('column', 4);
  const columns = new Array<Buffer | null>(count);
  for (let i = 0; i < count; i++) columns[i] = reader.nullableBytes(`column ${i + 1}`);
  return { kind: 'DataRow', columns };
}

/**
 * Where each cell of a DataRow lies in its payload, read without making a view of any cell: the
 * masking path reads a row and looks at a few cells of it. Reused row after row.
 */
export class DataRowCells {
  count = 0;
  /** Per cell: offset of its bytes in the payload, and their length (-1 for SQL NULL). */
  starts = new Int32Array(0);
  lengths = new Int32Array(0);

  /**
   * Reads `payload` (a DataRow's) into this; throws GatehouseError (GH_ERR_PG_MALFORMED_MESSAGE)
   * for exactly what decodeBackendMessage refuses in a DataRow.
   */
  read(payload: Buffer): void {
    // Rows come by the thousand: a bare walk first, and only a row it finds wrong is read again
    // through PayloadReader, for the error (the same checks, with their messages).
    if (!this.readWellFormed(payload)) this.readChecked(payload);
  }

  /** Fills this from a well-formed row and returns true; returns false at the first thing wrong. */
  private readWellFormed(payload: Buffer): boolean {
    const end = payload.length;
    if (end < 2) return false;
    const count = (payload[0]! << 8) | payload[1]!;
    // A negative Int16 count has its top bit set; each cell takes at least its 4-byte length.
    if (count > 0x7fff || count * 4 > end - 2) return false;
    this.reserve(count);
    let offset = 2;
    for (let i = 0; i < count; i++) {
      if (offset + 4 > end) return false;
      const length = (payload[offset]! << 24) | (payload[offset + 1]! << 16) | (payload[offset + 2]! << 8) | payload[offset + 3]!;
      offset += 4;
      if (length < -1 || offset + length > end) return false;
      this.starts[i] = offset;
      this.lengths[i] = length;
      if (length > 0) offset += length;
    }
    if (offset !== end) return false;
    this.count = count;
    return true;
  }

  private readChecked(payload: Buffer): void {
    const reader = new PayloadReader(payload, 'DataRow', 'lenient');
    const count = reader.count16('column', 4);
    this.reserve(count);
    for (let i = 0; i < count; i++) {
      const length = reader.skipNullableBytes('column', i + 1);
      this.lengths[i] = length;
      this.starts[i] = reader.position - Math.max(length, 0);
    }
    reader.end();
    this.count = count;
  }

  private reserve(count: number): void {
    if (this.starts.length >= count) return;
    this.starts = new Int32Array(count);
    this.lengths = new Int32Array(count);
  }
}

function decodeNoticeFields(reader: PayloadReader): Map<string, string> {
  const fields = new Map<string, string>();
  for (let code = reader.uint8(); code !== 0; code = reader.uint8()) {
    fields.set(String.fromCharCode(code), reader.cstring('field'));
  }
  return fields;
}

function decodeCopyResponse(reader: PayloadReader): CopyResponse {
  const format = reader.uint8();
  const columnFormats = reader.int16Array(reader.count16('column format', 2));
  return { format, columnFormats };
}

function decodeParameterDescription(reader: PayloadReader): BackendMessage {
  const count = reader.count16('parameter', 4);
  const paramTypes = new Array<number>(count);
  for (let i = 0; i < count; i++) paramTypes[i] = reader.uint32();
  return { kind: 'ParameterDescription', paramTypes };
}

function decodeNotification(reader: PayloadReader): BackendMessage {
  return { kind: 'NotificationResponse', processId: reader.int32(), channel: reader.cstring('channel'), payload: reader.cstring('payload') };
}

function decodeNegotiateProtocolVersion(reader: PayloadReader): BackendMessage {
  const newestMinorVersion = reader.int32();
  const count = reader.int32();
  if (count < 0 || count > reader.remaining) reader.fail(`option count ${count} does not fit in the message`);
  const unrecognizedOptions: string[] = [];
  for (let i = 0; i < count; i++) unrecognizedOptions.push(reader.cstring('option name'));
  return { kind: 'NegotiateProtocolVersion', newestMinorVersion, unrecognizedOptions };
}
