import fc from 'fast-check';
import { GatehouseError, isGatehouseError } from '../../../api/errors.js';
import { FrameSplitter, ReceivedFrame, type Frame } from './frame-splitter.js';
import {
  encodeBind, encodeFrontendMessage, encodeParse, encodeQuery, encodeSASLInitialResponse, encodePasswordMessage,
} from './frontend-encoders.js';
import {
  asciiQueryText, decodeFrontendMessage, decodePassword, decodeSASLInitialResponse, frontendMessageKind, type FrontendMessage,
} from './frontend-messages.js';

/** A frame with the given type byte and payload, length computed. */
function frame(type: string, ...parts: (string | number[] | Buffer)[]): Frame {
  const payload = Buffer.concat(parts.map((part) =>
    typeof part === 'string' ? Buffer.from(part, 'utf8') : Buffer.from(part)));
  const raw = Buffer.alloc(5 + payload.length);
  raw[0] = type.charCodeAt(0);
  raw.writeInt32BE(4 + payload.length, 1);
  payload.copy(raw, 5);
  return { type: raw[0], payload: raw.subarray(5), raw };
}

function decodeRaw(raw: Buffer): FrontendMessage {
  return decodeFrontendMessage({ type: raw[0], payload: raw.subarray(5) });
}

function malformed(detail: RegExp, value: Frame): void {
  let error: unknown;
  try {
    decodeFrontendMessage(value);
  } catch (caught) {
    error = caught;
  }
  expect(isGatehouseError(error, 'GH_ERR_PG_MALFORMED_MESSAGE')).toBe(true);
  expect((error as GatehouseError).details.detail).toMatch(detail);
}

describe('decodeFrontendMessage', () => {
  test('decodes a simple Query', () => {
    expect(decodeRaw(encodeQuery('SELECT 1'))).toEqual({ kind: 'Query', sql: 'SELECT 1' });
  });

  test('decodes Parse with parameter type OIDs, including ones above 2^31', () => {
    const raw = encodeParse({ statement: 's1', query: 'SELECT $1, $2', paramTypes: [23, 0xfffffffe] });
    expect(decodeRaw(raw)).toEqual({ kind: 'Parse', statement: 's1', query: 'SELECT $1, $2', paramTypes: [23, 0xfffffffe] });
  });

  test('decodes Bind parameters as views into the frame, with NULLs', () => {
    const raw = encodeBind({ portal: '', statement: 's1', paramFormats: [0, 1], params: [Buffer.from('42'), null], resultFormats: [1] });
    const message = decodeRaw(raw);
    expect(message).toEqual({
      kind: 'Bind', portal: '', statement: 's1', paramFormats: [0, 1], params: [Buffer.from('42'), null], resultFormats: [1],
    });
    if (message.kind !== 'Bind') throw new Error(`decoded ${message.kind}`);
    expect(message.params[0]?.buffer).toBe(raw.buffer);
  });

  test('decodes the remaining messages from hand-written bytes', () => {
    expect(decodeFrontendMessage(frame('E', 'p1\0', [0, 0, 0, 10]))).toEqual({ kind: 'Execute', portal: 'p1', maxRows: 10 });
    expect(decodeFrontendMessage(frame('D', 'S', 's1\0'))).toEqual({ kind: 'Describe', target: 'statement', name: 's1' });
    expect(decodeFrontendMessage(frame('C', 'P', '\0'))).toEqual({ kind: 'Close', target: 'portal', name: '' });
    expect(decodeFrontendMessage(frame('S'))).toEqual({ kind: 'Sync' });
    expect(decodeFrontendMessage(frame('H'))).toEqual({ kind: 'Flush' });
    expect(decodeFrontendMessage(frame('X'))).toEqual({ kind: 'Terminate' });
    expect(decodeFrontendMessage(frame('c'))).toEqual({ kind: 'CopyDone' });
    expect(decodeFrontendMessage(frame('d', 'x\ty\n'))).toEqual({ kind: 'CopyData', data: Buffer.from('x\ty\n') });
    expect(decodeFrontendMessage(frame('f', 'gave up\0'))).toEqual({ kind: 'CopyFail', reason: 'gave up' });
    expect(decodeFrontendMessage(frame('F', [0, 0, 4, 0], [0, 1, 0, 1], [0, 2], [0, 0, 0, 1], 'a', [255, 255, 255, 255], [0, 0])))
      .toEqual({ kind: 'FunctionCall', functionOid: 1024, argFormats: [1], args: [Buffer.from('a'), null], resultFormat: 0 });
  });

  test('keeps password bodies raw and decodes them on request', () => {
    const cleartext = decodeRaw(encodePasswordMessage('s3cret'));
    expect(cleartext.kind).toBe('PasswordMessage');
    expect(decodePassword((cleartext as { data: Buffer }).data)).toBe('s3cret');
    const sasl = decodeRaw(encodeSASLInitialResponse('SCRAM-SHA-256', Buffer.from('n,,n=,r=abc')));
    expect(decodeSASLInitialResponse((sasl as { data: Buffer }).data)).toEqual({
      mechanism: 'SCRAM-SHA-256', response: Buffer.from('n,,n=,r=abc'),
    });
  });

  test('names message kinds without decoding', () => {
    expect(frontendMessageKind(0x51)).toBe('Query');
    expect(frontendMessageKind(0x5a)).toBeUndefined();
  });
});

describe('decodeFrontendMessage strictness', () => {
  test('refuses strings without their NUL', () => {
    malformed(/query string is not NUL-terminated/, frame('Q', 'SELECT 1'));
    malformed(/portal name is not NUL-terminated/, frame('E', 'p1'));
  });

  test('refuses trailing bytes, including after a Query\'s NUL (a second statement the server would not see)', () => {
    malformed(/trailing/, frame('Q', 'SELECT 1\0DROP TABLE x\0'));
    malformed(/trailing/, frame('S', [0]));
    malformed(/trailing/, frame('E', 'p\0', [0, 0, 0, 0], [1]));
  });

  test('refuses negative and oversized counts', () => {
    malformed(/negative parameter type count/, frame('P', '\0SELECT 1\0', [0xff, 0xff]));
    malformed(/parameter type count 2 does not fit/, frame('P', '\0SELECT 1\0', [0, 2], [0, 0, 0, 23]));
    malformed(/negative parameter format count/, frame('B', '\0\0', [0x80, 0]));
    malformed(/parameter count 1 does not fit/, frame('B', '\0\0', [0, 0], [0, 1]));
  });

  test('refuses value lengths below -1 and beyond the payload', () => {
    malformed(/negative parameter 1 length/, frame('B', '\0\0', [0, 0], [0, 1], [0xff, 0xff, 0xff, 0xfe], [0, 0]));
    malformed(/truncated/, frame('B', '\0\0', [0, 0], [0, 1], [0, 0, 0, 9], 'abc', [0, 0]));
  });

  test('refuses unknown Describe/Close targets', () => {
    malformed(/neither 'S' nor 'P'/, frame('D', 'X', 'name\0'));
  });

  test('refuses strings that are not UTF-8, so the policy sees exactly what the server runs', () => {
    malformed(/not valid UTF-8/, frame('Q', [0x53, 0xc0, 0xaf, 0x00]));
  });

  test('refuses unknown message types with their own code', () => {
    expect(() => decodeFrontendMessage(frame('Z'))).toThrow(expect.objectContaining({ code: 'GH_ERR_PG_UNKNOWN_MESSAGE' }));
  });
});

// ---- property tests ----

const text = fc.string({ unit: 'binary', maxLength: 24 }).map((value) => value.replaceAll('\0', ''));
const bytes = fc.uint8Array({ maxLength: 48 }).map((value) => Buffer.from(value));
const nullableBytes = fc.option(bytes, { nil: null, freq: 4 });
const int16 = fc.integer({ min: -0x8000, max: 0x7fff });
const uint32 = fc.integer({ min: 0, max: 0xffffffff });
const target = fc.constantFrom('statement' as const, 'portal' as const);

const frontendMessage: fc.Arbitrary<FrontendMessage> = fc.oneof(
  fc.record({ kind: fc.constant('Query' as const), sql: text }),
  fc.record({ kind: fc.constant('Parse' as const), statement: text, query: text, paramTypes: fc.array(uint32, { maxLength: 6 }) }),
  fc.record({
    kind: fc.constant('Bind' as const), portal: text, statement: text, paramFormats: fc.array(int16, { maxLength: 4 }),
    params: fc.array(nullableBytes, { maxLength: 6 }), resultFormats: fc.array(int16, { maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant('Execute' as const), portal: text, maxRows: fc.integer({ min: -0x80000000, max: 0x7fffffff }) }),
  fc.record({ kind: fc.constant('Describe' as const), target, name: text }),
  fc.record({ kind: fc.constant('Close' as const), target, name: text }),
  fc.constantFrom<FrontendMessage>({ kind: 'Sync' }, { kind: 'Flush' }, { kind: 'Terminate' }, { kind: 'CopyDone' }),
  fc.record({
    kind: fc.constant('FunctionCall' as const), functionOid: uint32, argFormats: fc.array(int16, { maxLength: 4 }),
    args: fc.array(nullableBytes, { maxLength: 4 }), resultFormat: int16,
  }),
  fc.record({ kind: fc.constant('CopyData' as const), data: bytes }),
  fc.record({ kind: fc.constant('CopyFail' as const), reason: text }),
  fc.record({ kind: fc.constant('PasswordMessage' as const), data: bytes }),
);

/** Cut points that split `length` bytes into chunks; often 1-byte chunks. */
const chunking = fc.oneof(
  fc.constant('bytewise' as const),
  fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
);

function chunksOf(bytes: Buffer, sizes: 'bytewise' | number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0, i = 0; offset < bytes.length; i++) {
    const size = sizes === 'bytewise' ? 1 : sizes[i % sizes.length];
    chunks.push(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

/**
 * Splits and decodes a client stream the way the proxy does. Returns the messages and whether the
 * stream ended cleanly; any exception other than a GatehouseError escapes and fails the property.
 */
function decodeStream(chunks: readonly Buffer[]): { messages: FrontendMessage[]; rawFrames: Buffer[]; error?: GatehouseError } {
  const splitter = new FrameSplitter({ source: 'client', maxFrameBytes: 1024 * 1024 });
  const messages: FrontendMessage[] = [];
  const rawFrames: Buffer[] = [];
  try {
    for (const chunk of chunks) {
      splitter.push(chunk);
      for (let next = splitter.next(); next; next = splitter.next()) {
        rawFrames.push(next.raw);
        messages.push(decodeFrontendMessage(next));
      }
    }
  } catch (error) {
    if (!(error instanceof GatehouseError)) throw error;
    return { messages, rawFrames, error };
  }
  return { messages, rawFrames };
}

describe('frontend codec properties', () => {
  test('decode(encode(message)) equals the message', () => {
    fc.assert(fc.property(frontendMessage, (message) => {
      expect(decodeRaw(encodeFrontendMessage(message))).toEqual(message);
    }), { numRuns: 3000 });
  });

  test('valid frames under random chunking decode to exactly what was encoded', () => {
    fc.assert(fc.property(fc.array(frontendMessage, { maxLength: 12 }), chunking, (messages, sizes) => {
      const stream = Buffer.concat(messages.map(encodeFrontendMessage));
      const decoded = decodeStream(chunksOf(stream, sizes));
      expect(decoded.error).toBeUndefined();
      expect(decoded.messages).toEqual(messages);
    }), { numRuns: 2000 });
  });
});

describe('frontend decoder fuzzing', () => {
  test('random bytes yield frames or a GatehouseError, never another exception', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), chunking, (random, sizes) => {
      decodeStream(chunksOf(Buffer.from(random), sizes));
    }), { numRuns: 5000 });
  });

  test('random bytes behind a plausible header yield a message or a GatehouseError', () => {
    const types = [...'BCcdDEfFHPpQSX'].map((letter) => letter.charCodeAt(0));
    fc.assert(fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 64 }), (type, payload) => {
      const raw = frame(String.fromCharCode(type), Buffer.from(payload));
      const { messages, error } = decodeStream([raw.raw]);
      // Whatever is accepted must re-encode to the very same bytes: the proxy and the server read it alike.
      if (error === undefined) expect(encodeFrontendMessage(messages[0]).equals(raw.raw)).toBe(true);
    }), { numRuns: 5000 });
  });

  test('truncated valid frames (length fixed up) are refused or re-encode byte for byte', () => {
    fc.assert(fc.property(frontendMessage, fc.nat(), (message, cut) => {
      const raw = encodeFrontendMessage(message);
      const payload = raw.subarray(5, 5 + (cut % (raw.length - 4)));
      const truncated = frame(String.fromCharCode(raw[0]), payload);
      const { messages, error } = decodeStream([truncated.raw]);
      if (error === undefined) expect(encodeFrontendMessage(messages[0]).equals(truncated.raw)).toBe(true);
    }), { numRuns: 3000 });
  });

  test('truncated streams wait for more bytes instead of failing or hanging', () => {
    fc.assert(fc.property(fc.array(frontendMessage, { minLength: 1, maxLength: 6 }), fc.nat(), (messages, cut) => {
      const stream = Buffer.concat(messages.map(encodeFrontendMessage));
      const truncated = stream.subarray(0, cut % stream.length);
      const decoded = decodeStream([truncated]);
      expect(decoded.error).toBeUndefined();
      expect(decoded.messages).toEqual(messages.slice(0, decoded.messages.length));
    }), { numRuns: 2000 });
  });

  test('garbled streams (bytes flipped anywhere, header included) never raise anything but GatehouseError', () => {
    const flips = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 });
    fc.assert(fc.property(fc.array(frontendMessage, { minLength: 1, maxLength: 6 }), flips, chunking, (messages, changes, sizes) => {
      const stream = Buffer.from(Buffer.concat(messages.map(encodeFrontendMessage)));
      for (const [position, mask] of changes) stream[position % stream.length] ^= mask;
      const { messages: decoded, rawFrames } = decodeStream(chunksOf(stream, sizes));
      decoded.forEach((message, i) => expect(encodeFrontendMessage(message).equals(rawFrames[i])).toBe(true));
    }), { numRuns: 3000 });
  });
});

describe('asciiQueryText', () => {
  /** The frame as the splitter cuts it, `before` bytes into the received buffer. */
  function received(type: number, payload: Buffer, before: number): ReceivedFrame {
    const raw = Buffer.alloc(5 + payload.length);
    raw[0] = type;
    raw.writeInt32BE(4 + payload.length, 1);
    payload.copy(raw, 5);
    const source = Buffer.concat([Buffer.alloc(before, 0x51), raw]);
    return new ReceivedFrame(type, source, before, source.length, 5);
  }

  function decodedSql(value: ReceivedFrame): string | undefined {
    try {
      const message = decodeFrontendMessage(value);
      return message.kind === 'Query' ? message.sql : undefined;
    } catch {
      return undefined;
    }
  }

  test('agrees with decodeFrontendMessage whenever it answers, for any payload', () => {
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
      fc.string().map((text) => Buffer.from(`${text}\0`, 'utf8')),
      fc.string({ unit: 'binary' }).map((text) => Buffer.from(`${text}\0`, 'utf8')),
    );
    fc.assert(
      fc.property(fc.constantFrom(0x51, 0x50), payload, fc.nat(6), (type, body, before) => {
        const value = received(type, body, before);
        const fast = asciiQueryText(value);
        return fast === undefined || fast === decodedSql(value);
      }),
      { numRuns: 3_000 },
    );
  });

  test('reads every printable-ASCII Query, the empty one included', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.integer({ min: 1, max: 0x7f }).map((code) => String.fromCharCode(code)) }), fc.nat(6), (sql, before) =>
        asciiQueryText(received(0x51, Buffer.from(`${sql}\0`, 'latin1'), before)) === sql),
      { numRuns: 1_000 },
    );
  });

  test('leaves non-ASCII, NUL-less and NUL-inside texts to the general decoder', () => {
    expect(asciiQueryText(received(0x51, Buffer.from('SELECT \'é\'\0', 'utf8'), 0))).toBeUndefined();
    expect(asciiQueryText(received(0x51, Buffer.from('SELECT 1', 'latin1'), 0))).toBeUndefined();
    expect(asciiQueryText(received(0x51, Buffer.from('SELECT 1\0; DROP TABLE t\0', 'latin1'), 2))).toBeUndefined();
    expect(asciiQueryText(received(0x51, Buffer.alloc(0), 0))).toBeUndefined();
  });
});

