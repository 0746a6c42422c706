import fc from 'fast-check';
import { GatehouseError, isGatehouseError } from '../../../api/errors.js';
import { FrameSplitter, type Frame } from './frame-splitter.js';
import {
  decodeStartupPhaseMessage, encodeCancelRequest, encodeEncryptionRefused, encodeGSSENCRequest, encodeSSLRequest,
  encodeStartupMessage, replicationMode,
} from './startup-messages.js';

function decodeRaw(raw: Buffer) {
  return decodeStartupPhaseMessage(raw.subarray(4));
}

/** A startup frame from a version/code and the raw parameter bytes. */
function startupFrame(code: number, body: string): Buffer {
  const payload = Buffer.from(body, 'latin1');
  const raw = Buffer.alloc(8 + payload.length);
  raw.writeInt32BE(raw.length, 0);
  raw.writeInt32BE(code, 4);
  payload.copy(raw, 8);
  return raw;
}

function errorOf(action: () => unknown): GatehouseError {
  try {
    action();
  } catch (error) {
    if (isGatehouseError(error)) return error;
    throw error;
  }
  throw new Error('expected a GatehouseError');
}

describe('startup-phase messages', () => {
  test('decodes a StartupMessage with its parameters in order', () => {
    const message = decodeRaw(encodeStartupMessage({ user: 'app', database: 'orders', application_name: 'psql' }));
    expect(message).toEqual({
      kind: 'StartupMessage',
      protocolVersion: 196608,
      parameters: new Map([['user', 'app'], ['database', 'orders'], ['application_name', 'psql']]),
      replication: 'none',
    });
  });

  test('decodes SSLRequest, GSSENCRequest and CancelRequest', () => {
    expect(decodeRaw(encodeSSLRequest())).toEqual({ kind: 'SSLRequest' });
    expect(decodeRaw(encodeGSSENCRequest())).toEqual({ kind: 'GSSENCRequest' });
    expect(decodeRaw(encodeCancelRequest({ processId: 4242, secretKey: 0xdeadbeef })))
      .toEqual({ kind: 'CancelRequest', processId: 4242, secretKey: 0xdeadbeef });
    expect(encodeSSLRequest()).toEqual(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]));
    expect(encodeEncryptionRefused()).toEqual(Buffer.from('N'));
  });

  test('refuses protocol versions other than 3.0, naming the version asked for', () => {
    const error = errorOf(() => decodeRaw(startupFrame((3 << 16) | 2, 'user\0app\0\0')));
    expect(error.code).toBe('GH_ERR_PG_UNSUPPORTED_PROTOCOL');
    expect(error.details.version).toBe('3.2');
    expect(errorOf(() => decodeRaw(startupFrame(2 << 16, 'user\0app\0\0'))).details.version).toBe('2.0');
    expect(errorOf(() => decodeRaw(startupFrame(80877199, ''))).code).toBe('GH_ERR_PG_UNSUPPORTED_PROTOCOL');
  });

  test('refuses malformed parameter lists', () => {
    const cases = [
      startupFrame(196608, 'user\0app\0'), // missing the terminating NUL
      startupFrame(196608, 'user\0app'), // value not terminated
      startupFrame(196608, 'user\0app\0\0x'), // trailing byte
      startupFrame(196608, 'user\0a\0user\0b\0\0'), // duplicate: which user would the server pick?
      startupFrame(80877103, 'x'), // SSLRequest with a body
      startupFrame(80877102, '\0\0\0\x01'), // CancelRequest missing the key
    ];
    for (const raw of cases) expect(errorOf(() => decodeRaw(raw)).code).toBe('GH_ERR_PG_MALFORMED_MESSAGE');
  });

  test('detects replication requests the way PostgreSQL reads them', () => {
    expect(replicationMode(undefined)).toBe('none');
    for (const off of ['false', 'f', 'FALSE', 'no', 'n', 'off', 'OFF', '0']) expect(replicationMode(off)).toBe('none');
    for (const on of ['true', 't', 'yes', 'on', '1', 'TRUE']) expect(replicationMode(on)).toBe('physical');
    expect(replicationMode('database')).toBe('logical');
    // Values PostgreSQL rejects must not read as "no replication".
    for (const odd of ['of', 'o', '', 'DATABASE', 'maybe', ' 0']) expect(replicationMode(odd)).not.toBe('none');
    const message = decodeRaw(encodeStartupMessage({ user: 'app', replication: 'database' }));
    expect(message).toMatchObject({ replication: 'logical' });
  });

  test('encoding refuses NUL inside names and values', () => {
    expect(errorOf(() => encodeStartupMessage({ user: 'app\0database' })).code).toBe('GH_ERR_PG_ENCODE_INVALID');
    expect(errorOf(() => encodeStartupMessage({ '': 'x' })).code).toBe('GH_ERR_PG_ENCODE_INVALID');
  });

  const parameterName = fc.string({ unit: 'binary', minLength: 1, maxLength: 16 }).map((value) => value.replaceAll('\0', 'x'));
  const parameterValue = fc.string({ unit: 'binary', maxLength: 24 }).map((value) => value.replaceAll('\0', ''));

  test('round-trips random parameter sets through the splitter', () => {
    fc.assert(fc.property(fc.dictionary(parameterName, parameterValue, { maxKeys: 8 }), fc.integer({ min: 1, max: 9 }), (parameters, chunk) => {
      const raw = encodeStartupMessage(parameters);
      const splitter = new FrameSplitter({ source: 'client', phase: 'startup' });
      let frame: Frame | undefined;
      for (let i = 0; i < raw.length; i += chunk) {
        splitter.push(raw.subarray(i, i + chunk));
        frame = frame ?? splitter.next();
      }
      expect(frame).toBeDefined();
      const message = decodeStartupPhaseMessage((frame as Frame).payload);
      expect(message.kind === 'StartupMessage' && Object.fromEntries(message.parameters)).toEqual(parameters);
    }), { numRuns: 1000 });
  });

  test('random startup bytes yield a message or a GatehouseError, never another exception', () => {
    const plausible = fc.tuple(fc.constantFrom(196608, 80877102, 80877103, 80877104, 1 << 16), fc.uint8Array({ maxLength: 40 }))
      .map(([code, body]) => startupFrame(code, Buffer.from(body).toString('latin1')));
    fc.assert(fc.property(fc.oneof(plausible, fc.uint8Array({ maxLength: 64 }).map((value) => Buffer.from(value))), (raw) => {
      const splitter = new FrameSplitter({ source: 'client', phase: 'startup' });
      try {
        splitter.push(raw);
        for (let frame = splitter.next(); frame; frame = splitter.next()) decodeStartupPhaseMessage(frame.payload);
      } catch (error) {
        expect(error).toBeInstanceOf(GatehouseError);
      }
    }), { numRuns: 3000 });
  });
});
