// Encoders for server messages the sidecar originates: its own errors and notices (a denied
// statement is an ErrorResponse plus ReadyForQuery, which keeps the client's session usable), the
// session start it replays to a client, and rewritten result rows for masking.
import { GatehouseError } from '../../../api/errors.js';
import type { AuthenticationMessage, BackendMessage, CopyResponse, DataRowCells, RowField, TransactionStatus } from './backend-messages.js';
import type { DataRowEdits } from './data-row-edits.js';
import type { FrameAllocator } from './frame-batch.js';
import { FrameWriter } from './frame-writer.js';
import { AuthenticationCode, BackendType } from './message-types.js';
import { fieldsFromNotice, type PgNotice } from './notice-fields.js';
import type { BackendKey } from './startup-messages.js';

const SQLSTATE = /^[0-9A-Z]{5}$/;
/** The largest message length word the protocol allows. */
const MAX_MESSAGE_LENGTH = 0x7fffffff;

/** An ErrorResponse with S, V, C, M and whichever optional fields are set (detail, hint, ...). */
export function encodeErrorResponse(notice: PgNotice): Buffer {
  return encodeNotice(BackendType.ErrorResponse, 'ErrorResponse', notice);
}

export function encodeNoticeResponse(notice: PgNotice): Buffer {
  return encodeNotice(BackendType.NoticeResponse, 'NoticeResponse', notice);
}

function encodeNotice(type: number, name: string, notice: PgNotice): Buffer {
  if (!SQLSTATE.test(notice.code)) {
    throw new GatehouseError('GH_ERR_PG_ENCODE_INVALID', { message: name, detail: `SQLSTATE ${JSON.stringify(notice.code)} is not 5 digits or capital letters` });
  }
  return encodeNoticeFields(type, name, fieldsFromNotice(notice));
}

/** ErrorResponse/NoticeResponse from raw one-letter fields, e.g. to re-encode a decoded message. */
export function encodeNoticeFields(type: number, name: string, fields: ReadonlyMap<string, string>): Buffer {
  const writer = new FrameWriter(type, name, 256);
  for (const [code, value] of fields) {
    if (code.length !== 1 || code === '\0') {
      throw new GatehouseError('GH_ERR_PG_ENCODE_INVALID', { message: name, detail: `field code ${JSON.stringify(code)} is not one character` });
    }
    writer.uint8(code.charCodeAt(0), 'field code').cstring(value, `field ${code}`);
  }
  return writer.uint8(0, 'terminator').finish();
}

const READY = {
  I: new FrameWriter(BackendType.ReadyForQuery, 'ReadyForQuery', 6).uint8(0x49, 'status').finish(),
  T: new FrameWriter(BackendType.ReadyForQuery, 'ReadyForQuery', 6).uint8(0x54, 'status').finish(),
  E: new FrameWriter(BackendType.ReadyForQuery, 'ReadyForQuery', 6).uint8(0x45, 'status').finish(),
} as const satisfies Record<TransactionStatus, Buffer>;

/** Shared, immutable frames: callers must not modify them. */
export function encodeReadyForQuery(status: TransactionStatus): Buffer {
  return READY[status];
}

export function encodeAuthenticationOk(): Buffer {
  return encodeAuthentication({ kind: 'AuthenticationOk' });
}

/** Any Authentication (R) request; the sidecar uses it to authenticate its own clients and in test servers. */
export function encodeAuthentication(message: AuthenticationMessage): Buffer {
  const writer = new FrameWriter(BackendType.Authentication, message.kind, 64);
  switch (message.kind) {
    case 'AuthenticationOk': return writer.int32(AuthenticationCode.Ok, 'code').finish();
    case 'AuthenticationCleartextPassword': return writer.int32(AuthenticationCode.CleartextPassword, 'code').finish();
    case 'AuthenticationMD5Password': return writer.int32(AuthenticationCode.MD5Password, 'code').bytes(checkedSalt(message.salt)).finish();
    case 'AuthenticationSASL':
      writer.int32(AuthenticationCode.SASL, 'code');
      for (const mechanism of message.mechanisms) writer.cstring(nonEmpty(mechanism, 'mechanism'), 'mechanism');
      return writer.uint8(0, 'terminator').finish();
    case 'AuthenticationSASLContinue': return writer.int32(AuthenticationCode.SASLContinue, 'code').bytes(message.data).finish();
    case 'AuthenticationSASLFinal': return writer.int32(AuthenticationCode.SASLFinal, 'code').bytes(message.data).finish();
    case 'AuthenticationOther': return writer.int32(message.code, 'code').bytes(message.data).finish();
  }
}

function checkedSalt(salt: Buffer): Buffer {
  if (salt.length !== 4) throw new GatehouseError('GH_ERR_PG_ENCODE_INVALID', { message: 'AuthenticationMD5Password', detail: 'salt must be 4 bytes' });
  return salt;
}

function nonEmpty(value: string, field: string): string {
  if (value === '') throw new GatehouseError('GH_ERR_PG_ENCODE_INVALID', { message: 'AuthenticationSASL', detail: `empty ${field}` });
  return value;
}

export function encodeParameterStatus(name: string, value: string): Buffer {
  return new FrameWriter(BackendType.ParameterStatus, 'ParameterStatus').cstring(name, 'name').cstring(value, 'value').finish();
}

export function encodeBackendKeyData(key: BackendKey): Buffer {
  return new FrameWriter(BackendType.BackendKeyData, 'BackendKeyData', 13)
    .int32(key.processId, 'processId')
    .uint32(key.secretKey, 'secretKey')
    .finish();
}

export function encodeRowDescription(fields: readonly RowField[]): Buffer {
  const writer = new FrameWriter(BackendType.RowDescription, 'RowDescription', 7 + fields.length * 40)
    .int16(fields.length, 'field count');
  for (const field of fields) {
    writer.cstring(field.name, 'field name')
      .uint32(field.tableOid, 'table OID')
      .int16(field.columnAttr, 'column attribute')
      .uint32(field.typeOid, 'type OID')
      .int16(field.typeLen, 'type length')
      .int32(field.typeMod, 'type modifier')
      .int16(field.format, 'format');
  }
  return writer.finish();
}

/** A DataRow sized exactly up front: this is the per-row cost of masking. */
export function encodeDataRow(columns: readonly (Uint8Array | null)[]): Buffer {
  let size = 7;
  for (const column of columns) size += 4 + (column?.length ?? 0);
  const writer = new FrameWriter(BackendType.DataRow, 'DataRow', size).int16(columns.length, 'column count');
  for (const column of columns) writer.nullableBytes(column);
  return writer.finish();
}

/**
 * The DataRow `payload` holds (read into `cells`) with `edits` applied, written into memory from
 * `into` (or a buffer of its own); the cells kept are copied in runs.
 */
export function encodeEditedDataRow(payload: Buffer, cells: DataRowCells, edits: DataRowEdits, into?: FrameAllocator): Buffer {
  let size = 5 + payload.length;
  for (let i = 0; i < edits.count; i++) {
    size += (edits.values[i]?.length ?? 0) - Math.max(cells.lengths[edits.columns[i]!]!, 0);
  }
  if (size - 1 > MAX_MESSAGE_LENGTH) {
    throw new GatehouseError('GH_ERR_PG_ENCODE_INVALID', { message: 'DataRow', detail: `message of ${size - 1} bytes exceeds the protocol maximum` });
  }
  const frame = into ? into.allocate(size) : Buffer.allocUnsafe(size);
  frame[0] = BackendType.DataRow;
  frame.writeInt32BE(size - 1, 1);
  let written = 5;
  let copied = 0;
  for (let i = 0; i < edits.count; i++) {
    const column = edits.columns[i]!;
    const value = edits.values[i]!;
    const start = cells.starts[column]!;
    // Everything up to this cell's length word is kept as it is (nothing between adjacent cells).
    written = copyRange(payload, copied, start - 4, frame, written);
    written = writeLength(frame, written, value === null ? -1 : value.length);
    if (value !== null) written = copyRange(value, 0, value.length, frame, written);
    copied = start + Math.max(cells.lengths[column]!, 0);
  }
  copyRange(payload, copied, payload.length, frame, written);
  return frame;
}

/** Below this many bytes a byte loop beats making the view that a bulk copy needs. */
const SMALL_COPY_BYTES = 64;

/** A cell's Int32 length at `at` (big-endian, -1 for NULL); returns the offset after it. */
function writeLength(target: Buffer, at: number, length: number): number {
  target[at] = length >>> 24;
  target[at + 1] = (length >>> 16) & 0xff;
  target[at + 2] = (length >>> 8) & 0xff;
  target[at + 3] = length & 0xff;
  return at + 4;
}

/**
 * Copies source[from, to) to target at `at`; returns where the copy ends in `target`. Not
 * Buffer#copy: it validates its arguments and makes a view on every call, and a row takes a few
 * copies, most of them a handful of bytes (a masking marker, the cells between two masked ones).
 */
function copyRange(source: Uint8Array, from: number, to: number, target: Buffer, at: number): number {
  const length = to - from;
  if (length <= 0) return at;
  if (length < SMALL_COPY_BYTES) {
    for (let i = 0; i < length; i++) target[at + i] = source[from + i]!;
  } else {
    target.set(new Uint8Array(source.buffer, source.byteOffset + from, length), at);
  }
  return at + length;
}

export function encodeCommandComplete(tag: string): Buffer {
  return new FrameWriter(BackendType.CommandComplete, 'CommandComplete').cstring(tag, 'command tag').finish();
}

function encodeCopyResponse(type: number, name: string, response: CopyResponse): Buffer {
  return new FrameWriter(type, name)
    .uint8(response.format, 'format')
    .int16Array(response.columnFormats, 'column format')
    .finish();
}

function encodeEmpty(type: number, name: string): Buffer {
  return new FrameWriter(type, name, 5).finish();
}

/** Encodes any decoded backend message; `decodeBackendMessage(encodeBackendMessage(m))` equals `m`. */
export function encodeBackendMessage(message: BackendMessage): Buffer {
  switch (message.kind) {
    case 'ParameterStatus': return encodeParameterStatus(message.name, message.value);
    case 'BackendKeyData': return encodeBackendKeyData(message);
    case 'ReadyForQuery': return encodeReadyForQuery(message.status);
    case 'RowDescription': return encodeRowDescription(message.fields);
    case 'DataRow': return encodeDataRow(message.columns);
    case 'CommandComplete': return encodeCommandComplete(message.tag);
    case 'ErrorResponse': return encodeNoticeFields(BackendType.ErrorResponse, message.kind, message.fields);
    case 'NoticeResponse': return encodeNoticeFields(BackendType.NoticeResponse, message.kind, message.fields);
    case 'ParseComplete':
    case 'BindComplete':
    case 'CloseComplete':
    case 'NoData':
    case 'EmptyQueryResponse':
    case 'PortalSuspended':
    case 'CopyDone':
      return encodeEmpty(BackendType[message.kind], message.kind);
    case 'CopyInResponse':
    case 'CopyOutResponse':
    case 'CopyBothResponse':
      return encodeCopyResponse(BackendType[message.kind], message.kind, message);
    case 'CopyData': return new FrameWriter(BackendType.CopyData, 'CopyData', message.data.length + 5).bytes(message.data).finish();
    case 'ParameterDescription':
    case 'NotificationResponse':
    case 'NegotiateProtocolVersion':
    case 'FunctionCallResponse':
      return encodeRareBackendMessage(message);
    default: return encodeAuthentication(message);
  }
}

type RareBackendMessage = Extract<BackendMessage, { kind: 'ParameterDescription' | 'NotificationResponse' | 'NegotiateProtocolVersion' | 'FunctionCallResponse' }>;

/** Messages the sidecar never originates itself; encoded for completeness and round-trip tests. */
function encodeRareBackendMessage(message: RareBackendMessage): Buffer {
  switch (message.kind) {
    case 'ParameterDescription': {
      const writer = new FrameWriter(BackendType.ParameterDescription, message.kind).int16(message.paramTypes.length, 'parameter count');
      for (const oid of message.paramTypes) writer.uint32(oid, 'parameter type');
      return writer.finish();
    }
    case 'NotificationResponse':
      return new FrameWriter(BackendType.NotificationResponse, message.kind)
        .int32(message.processId, 'processId').cstring(message.channel, 'channel').cstring(message.payload, 'payload').finish();
    case 'NegotiateProtocolVersion': {
      const writer = new FrameWriter(BackendType.NegotiateProtocolVersion, message.kind)
        .int32(message.newestMinorVersion, 'minor version').int32(message.unrecognizedOptions.length, 'option count');
      for (const option of message.unrecognizedOptions) writer.cstring(option, 'option');
      return writer.finish();
    }
    case 'FunctionCallResponse':
      return new FrameWriter(BackendType.FunctionCallResponse, message.kind).nullableBytes(message.result).finish();
  }
}
