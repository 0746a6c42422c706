import fc from 'fast-check';
import { GatehouseError } from '../../../api/errors.js';
import {
  encodeAuthentication, encodeBackendMessage, encodeDataRow, encodeErrorResponse, encodeNoticeResponse, encodeReadyForQuery,
  encodeRowDescription,
} from './backend-encoders.js';
import { decodeBackendMessage, type BackendMessage, type RowField } from './backend-messages.js';
import { FrameSplitter } from './frame-splitter.js';
import { noticeFromFields } from './notice-fields.js';

function decodeRaw(raw: Buffer): BackendMessage {
  return decodeBackendMessage({ type: raw[0], payload: raw.subarray(5) });
}

function typed(type: string, ...parts: (string | number[])[]): Buffer {
  const payload = Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : Buffer.from(part))));
  const raw = Buffer.alloc(5 + payload.length);
  raw[0] = type.charCodeAt(0);
  raw.writeInt32BE(4 + payload.length, 1);
  payload.copy(raw, 5);
  return raw;
}

describe('decodeBackendMessage', () => {
  test('decodes each authentication request', () => {
    expect(decodeRaw(typed('R', [0, 0, 0, 0]))).toEqual({ kind: 'AuthenticationOk' });
    expect(decodeRaw(typed('R', [0, 0, 0, 3]))).toEqual({ kind: 'AuthenticationCleartextPassword' });
    expect(decodeRaw(typed('R', [0, 0, 0, 5], [1, 2, 3, 4]))).toEqual({ kind: 'AuthenticationMD5Password', salt: Buffer.from([1, 2, 3, 4]) });
    expect(decodeRaw(typed('R', [0, 0, 0, 10], 'SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0')))
      .toEqual({ kind: 'AuthenticationSASL', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] });
    expect(decodeRaw(typed('R', [0, 0, 0, 11], 'r=abc'))).toEqual({ kind: 'AuthenticationSASLContinue', data: Buffer.from('r=abc') });
    expect(decodeRaw(typed('R', [0, 0, 0, 12], 'v=xyz'))).toEqual({ kind: 'AuthenticationSASLFinal', data: Buffer.from('v=xyz') });
    expect(decodeRaw(typed('R', [0, 0, 0, 7]))).toEqual({ kind: 'AuthenticationOther', code: 7, data: Buffer.alloc(0) });
    expect(() => decodeRaw(typed('R', [0, 0, 0, 5], [1, 2, 3]))).toThrow(GatehouseError);
    expect(() => decodeRaw(typed('R', [0, 0, 0, 0], [0]))).toThrow(GatehouseError);
    expect(() => decodeRaw(typed('R', [0, 0, 0, 99]))).toThrow(GatehouseError);
  });

  test('decodes session start messages', () => {
    expect(decodeRaw(typed('S', 'server_version\x0015.8\0'))).toEqual({ kind: 'ParameterStatus', name: 'server_version', value: '15.8' });
    expect(decodeRaw(typed('K', [0, 0, 0x10, 0], [0xff, 0xff, 0xff, 0xff]))).toEqual({ kind: 'BackendKeyData', processId: 4096, secretKey: 0xffffffff });
    expect(decodeRaw(typed('Z', 'T'))).toEqual({ kind: 'ReadyForQuery', status: 'T' });
    expect(() => decodeRaw(typed('Z', 'Q'))).toThrow(GatehouseError);
  });

  test('decodes result sets', () => {
    const fields: RowField[] = [
      { name: 'id', tableOid: 16384, columnAttr: 1, typeOid: 23, typeLen: 4, typeMod: -1, format: 0 },
      { name: 'email', tableOid: 16384, columnAttr: 2, typeOid: 25, typeLen: -1, typeMod: -1, format: 0 },
    ];
    expect(decodeRaw(encodeRowDescription(fields))).toEqual({ kind: 'RowDescription', fields });
    expect(decodeRaw(encodeDataRow([Buffer.from('1'), null, Buffer.alloc(0)])))
      .toEqual({ kind: 'DataRow', columns: [Buffer.from('1'), null, Buffer.alloc(0)] });
    expect(decodeRaw(typed('C', 'SELECT 2\0'))).toEqual({ kind: 'CommandComplete', tag: 'SELECT 2' });
    for (const [letter, kind] of [['1', 'ParseComplete'], ['2', 'BindComplete'], ['3', 'CloseComplete'], ['n', 'NoData'], ['I', 'EmptyQueryResponse']]) {
      expect(decodeRaw(typed(letter))).toEqual({ kind });
    }
    expect(decodeRaw(typed('H', [0], [0, 2], [0, 0, 0, 1]))).toEqual({ kind: 'CopyOutResponse', format: 0, columnFormats: [0, 1] });
    expect(decodeRaw(typed('G', [1], [0, 0]))).toEqual({ kind: 'CopyInResponse', format: 1, columnFormats: [] });
    expect(decodeRaw(typed('W', [0], [0, 0]))).toEqual({ kind: 'CopyBothResponse', format: 0, columnFormats: [] });
    expect(() => decodeRaw(typed('D', [0, 1], [0, 0, 0, 5], 'abc'))).toThrow(GatehouseError);
  });

  test('encodes an ErrorResponse with S, V, C, M, D, H fields, and decodes it back by name', () => {
    const raw = encodeErrorResponse({
      severity: 'ERROR', code: '42501', message: 'DELETE on orders is denied', detail: 'policy orders-readers', hint: 'ask a DBA',
    });
    const decoded = decodeRaw(raw);
    if (decoded.kind !== 'ErrorResponse') throw new Error(`decoded ${decoded.kind}`);
    const fields = decoded.fields;
    expect([...fields.keys()]).toEqual(['S', 'V', 'C', 'M', 'D', 'H']);
    expect(noticeFromFields(fields)).toEqual({
      severity: 'ERROR', severityNonLocalized: 'ERROR', code: '42501', message: 'DELETE on orders is denied',
      detail: 'policy orders-readers', hint: 'ask a DBA',
    });
    expect(decodeRaw(encodeNoticeResponse({ severity: 'WARNING', code: '01000', message: 'masked' })).kind).toBe('NoticeResponse');
  });

  test('refuses to encode values that would corrupt the stream', () => {
    expect(() => encodeErrorResponse({ severity: 'ERROR', code: '42501', message: 'a\0Zinjected' }))
      .toThrow(expect.objectContaining({ code: 'GH_ERR_PG_ENCODE_INVALID' }));
    expect(() => encodeErrorResponse({ severity: 'ERROR', code: 'nope', message: 'x' })).toThrow(GatehouseError);
    expect(() => encodeAuthentication({ kind: 'AuthenticationMD5Password', salt: Buffer.alloc(3) })).toThrow(GatehouseError);
    expect(() => encodeDataRow(new Array(40_000).fill(null))).toThrow(GatehouseError);
  });

  test('ReadyForQuery frames are the exact protocol bytes', () => {
    expect(encodeReadyForQuery('I')).toEqual(Buffer.from([0x5a, 0, 0, 0, 5, 0x49]));
  });
});

const text = fc.string({ unit: 'binary', maxLength: 20 }).map((value) => value.replaceAll('\0', ''));
const nonEmptyText = text.filter((value) => value !== '');
const bytes = fc.uint8Array({ maxLength: 40 }).map((value) => Buffer.from(value));
const int16 = fc.integer({ min: -0x8000, max: 0x7fff });
const int32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const uint32 = fc.integer({ min: 0, max: 0xffffffff });
const fieldCode = fc.integer({ min: 1, max: 127 }).map((code) => String.fromCharCode(code));

const rowField: fc.Arbitrary<RowField> = fc.record({
  name: text, tableOid: uint32, columnAttr: int16, typeOid: uint32, typeLen: int16, typeMod: int32, format: int16,
});

const backendMessage: fc.Arbitrary<BackendMessage> = fc.oneof(
  fc.constantFrom<BackendMessage>(
    { kind: 'AuthenticationOk' }, { kind: 'AuthenticationCleartextPassword' }, { kind: 'ParseComplete' }, { kind: 'BindComplete' },
    { kind: 'CloseComplete' }, { kind: 'NoData' }, { kind: 'EmptyQueryResponse' }, { kind: 'PortalSuspended' }, { kind: 'CopyDone' },
  ),
  fc.record({ kind: fc.constant('AuthenticationMD5Password' as const), salt: fc.uint8Array({ minLength: 4, maxLength: 4 }).map((v) => Buffer.from(v)) }),
  fc.record({ kind: fc.constant('AuthenticationSASL' as const), mechanisms: fc.array(nonEmptyText, { maxLength: 3 }) }),
  fc.record({ kind: fc.constantFrom('AuthenticationSASLContinue' as const, 'AuthenticationSASLFinal' as const), data: bytes }),
  fc.record({ kind: fc.constant('ParameterStatus' as const), name: text, value: text }),
  fc.record({ kind: fc.constant('BackendKeyData' as const), processId: int32, secretKey: uint32 }),
  fc.record({ kind: fc.constant('ReadyForQuery' as const), status: fc.constantFrom('I' as const, 'T' as const, 'E' as const) }),
  fc.record({ kind: fc.constant('RowDescription' as const), fields: fc.array(rowField, { maxLength: 5 }) }),
  fc.record({ kind: fc.constant('DataRow' as const), columns: fc.array(fc.option(bytes, { nil: null }), { maxLength: 8 }) }),
  fc.record({ kind: fc.constant('CommandComplete' as const), tag: text }),
  fc.record({ kind: fc.constantFrom('ErrorResponse' as const, 'NoticeResponse' as const), fields: fc.array(fc.tuple(fieldCode, text), { maxLength: 6 }).map((entries) => new Map(entries)) }),
  fc.record({
    kind: fc.constantFrom('CopyInResponse' as const, 'CopyOutResponse' as const, 'CopyBothResponse' as const),
    format: fc.integer({ min: 0, max: 255 }), columnFormats: fc.array(int16, { maxLength: 5 }),
  }),
  fc.record({ kind: fc.constant('CopyData' as const), data: bytes }),
  fc.record({ kind: fc.constant('ParameterDescription' as const), paramTypes: fc.array(uint32, { maxLength: 5 }) }),
  fc.record({ kind: fc.constant('NotificationResponse' as const), processId: int32, channel: text, payload: text }),
  fc.record({ kind: fc.constant('NegotiateProtocolVersion' as const), newestMinorVersion: int32, unrecognizedOptions: fc.array(text, { maxLength: 3 }) }),
  fc.record({ kind: fc.constant('FunctionCallResponse' as const), result: fc.option(bytes, { nil: null }) }),
);

describe('backend codec properties', () => {
  test('decode(encode(message)) equals the message', () => {
    fc.assert(fc.property(backendMessage, (message) => {
      expect(decodeRaw(encodeBackendMessage(message))).toEqual(message);
    }), { numRuns: 3000 });
  });

  test('garbled server streams yield messages or a GatehouseError, never another exception', () => {
    fc.assert(fc.property(fc.array(backendMessage, { minLength: 1, maxLength: 5 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 3 }), (messages, flips) => {
      const stream = Buffer.from(Buffer.concat(messages.map(encodeBackendMessage)));
      for (const [position, mask] of flips) stream[position % stream.length] ^= mask;
      const splitter = new FrameSplitter({ source: 'server', maxFrameBytes: 1024 * 1024 });
      try {
        splitter.push(stream);
        for (let frame = splitter.next(); frame; frame = splitter.next()) decodeBackendMessage(frame);
      } catch (error) {
        expect(error).toBeInstanceOf(GatehouseError);
      }
    }), { numRuns: 3000 });
  });
});
