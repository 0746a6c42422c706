// Encoders for typed client messages: what the sidecar sends upstream on its own (Query, Terminate,
// authentication answers), plus the rest of the frontend set so a rewritten message can be
// re-encoded and so the decoders can be checked by round trip.
import { FrameWriter } from './frame-writer.js';
import type {
  BindMessage, CloseMessage, DescribeMessage, ExecuteMessage, FrontendMessage, FunctionCallMessage, ParseMessage,
  StatementOrPortal,
} from './frontend-messages.js';
import { FrontendType } from './message-types.js';

export function encodeQuery(sql: string): Buffer {
  return new FrameWriter(FrontendType.Query, 'Query', sql.length + 16).cstring(sql, 'query string').finish();
}

export function encodeParse(message: Omit<ParseMessage, 'kind'>): Buffer {
  const writer = new FrameWriter(FrontendType.Parse, 'Parse', message.query.length + 32)
    .cstring(message.statement, 'statement name')
    .cstring(message.query, 'query string')
    .int16(message.paramTypes.length, 'parameter type count');
  for (const oid of message.paramTypes) writer.uint32(oid, 'parameter type');
  return writer.finish();
}

export function encodeBind(message: Omit<BindMessage, 'kind'>): Buffer {
  const writer = new FrameWriter(FrontendType.Bind, 'Bind', 64 + valuesSize(message.params))
    .cstring(message.portal, 'portal name')
    .cstring(message.statement, 'statement name')
    .int16Array(message.paramFormats, 'parameter format');
  writeValues(writer, message.params, 'parameter');
  return writer.int16Array(message.resultFormats, 'result format').finish();
}

export function encodeExecute(message: Omit<ExecuteMessage, 'kind'>): Buffer {
  return new FrameWriter(FrontendType.Execute, 'Execute').cstring(message.portal, 'portal name').int32(message.maxRows, 'maxRows').finish();
}

export function encodeDescribe(message: Omit<DescribeMessage, 'kind'>): Buffer {
  return encodeTargetAndName(FrontendType.Describe, 'Describe', message.target, message.name);
}

export function encodeClose(message: Omit<CloseMessage, 'kind'>): Buffer {
  return encodeTargetAndName(FrontendType.Close, 'Close', message.target, message.name);
}

function encodeTargetAndName(type: number, name: string, target: StatementOrPortal, targetName: string): Buffer {
  return new FrameWriter(type, name)
    .uint8(target === 'statement' ? 0x53 : 0x50, 'target')
    .cstring(targetName, 'name')
    .finish();
}

export function encodeFunctionCall(message: Omit<FunctionCallMessage, 'kind'>): Buffer {
  const writer = new FrameWriter(FrontendType.FunctionCall, 'FunctionCall', 64 + valuesSize(message.args))
    .uint32(message.functionOid, 'function OID')
    .int16Array(message.argFormats, 'argument format');
  writeValues(writer, message.args, 'argument');
  return writer.int16(message.resultFormat, 'result format').finish();
}

export function encodeCopyData(data: Uint8Array): Buffer {
  return new FrameWriter(FrontendType.CopyData, 'CopyData', data.length + 5).bytes(data).finish();
}

export function encodeCopyFail(reason: string): Buffer {
  return new FrameWriter(FrontendType.CopyFail, 'CopyFail').cstring(reason, 'reason').finish();
}

/** Answer to AuthenticationCleartextPassword or AuthenticationMD5Password (then already hashed). */
export function encodePasswordMessage(password: string): Buffer {
  return new FrameWriter(FrontendType.Password, 'PasswordMessage').cstring(password, 'password').finish();
}

/** Answer to AuthenticationSASL: the chosen mechanism and the client-first message. */
export function encodeSASLInitialResponse(mechanism: string, response: Uint8Array | null): Buffer {
  return new FrameWriter(FrontendType.Password, 'SASLInitialResponse', 64 + (response?.length ?? 0))
    .cstring(mechanism, 'mechanism')
    .nullableBytes(response)
    .finish();
}

/** Answer to AuthenticationSASLContinue. */
export function encodeSASLResponse(data: Uint8Array): Buffer {
  return encodeRawPasswordMessage(data);
}

/** A 'p' message with the given body, as decoded into PasswordMessage.data. */
export function encodeRawPasswordMessage(data: Uint8Array): Buffer {
  return new FrameWriter(FrontendType.Password, 'PasswordMessage', data.length + 5).bytes(data).finish();
}

// Body-less messages never change, so they are built once and shared (callers must not mutate them).
const SYNC = new FrameWriter(FrontendType.Sync, 'Sync', 5).finish();
const FLUSH = new FrameWriter(FrontendType.Flush, 'Flush', 5).finish();
const TERMINATE = new FrameWriter(FrontendType.Terminate, 'Terminate', 5).finish();
const COPY_DONE = new FrameWriter(FrontendType.CopyDone, 'CopyDone', 5).finish();

export function encodeSync(): Buffer { return SYNC; }
export function encodeFlush(): Buffer { return FLUSH; }
export function encodeTerminate(): Buffer { return TERMINATE; }
export function encodeCopyDone(): Buffer { return COPY_DONE; }

/** Encodes any decoded frontend message; `decodeFrontendMessage(encodeFrontendMessage(m))` equals `m`. */
export function encodeFrontendMessage(message: FrontendMessage): Buffer {
  switch (message.kind) {
    case 'Query': return encodeQuery(message.sql);
    case 'Parse': return encodeParse(message);
    case 'Bind': return encodeBind(message);
    case 'Execute': return encodeExecute(message);
    case 'Describe': return encodeDescribe(message);
    case 'Close': return encodeClose(message);
    case 'Sync': return encodeSync();
    case 'Flush': return encodeFlush();
    case 'Terminate': return encodeTerminate();
    case 'FunctionCall': return encodeFunctionCall(message);
    case 'CopyData': return encodeCopyData(message.data);
    case 'CopyDone': return encodeCopyDone();
    case 'CopyFail': return encodeCopyFail(message.reason);
    case 'PasswordMessage': return encodeRawPasswordMessage(message.data);
  }
}

function valuesSize(values: readonly (Uint8Array | null)[]): number {
  let size = 2;
  for (const value of values) size += 4 + (value?.length ?? 0);
  return size;
}

function writeValues(writer: FrameWriter, values: readonly (Uint8Array | null)[], field: string): void {
  writer.int16(values.length, `${field} count`);
  for (const value of values) writer.nullableBytes(value);
}
