import { isGatehouseError } from '../../../api/errors.js';
import { encodeCopyData, encodeQuery, encodeSync } from './frontend-encoders.js';
import { FrameSplitter, STARTUP_FRAME_TYPE, type Frame, type FrameSplitterOptions } from './frame-splitter.js';
import { encodeSSLRequest, encodeStartupMessage } from './startup-messages.js';
import { encodeDataRow } from './backend-encoders.js';

function splitAll(splitter: FrameSplitter): Frame[] {
  const frames: Frame[] = [];
  for (let frame = splitter.next(); frame; frame = splitter.next()) frames.push(frame);
  return frames;
}

function feedInChunks(bytes: Buffer, chunkSize: number, options: FrameSplitterOptions = { source: 'client' }): Frame[] {
  const splitter = new FrameSplitter(options);
  const frames: Frame[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) {
    splitter.push(bytes.subarray(i, i + chunkSize));
    frames.push(...splitAll(splitter));
  }
  expect(splitter.bufferedBytes).toBe(0);
  return frames;
}

function expectCode(action: () => unknown, code: string): void {
  try {
    action();
  } catch (error) {
    expect(isGatehouseError(error)).toBe(true);
    expect((error as { code: string }).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe('FrameSplitter', () => {
  const stream = Buffer.concat([encodeQuery('SELECT 1'), encodeCopyData(Buffer.from('a\tb\n')), encodeSync()]);

  test('returns whole frames with type, payload and raw views, for any chunk size', () => {
    for (const chunkSize of [1, 2, 3, 5, 7, 13, stream.length]) {
      const frames = feedInChunks(stream, chunkSize);
      expect(frames.map((frame) => String.fromCharCode(frame.type))).toEqual(['Q', 'd', 'S']);
      expect(frames[0].payload.toString()).toBe('SELECT 1\0');
      expect(frames[1].payload.toString()).toBe('a\tb\n');
      expect(frames[2].payload.length).toBe(0);
      expect(Buffer.concat(frames.map((frame) => frame.raw))).toEqual(stream);
    }
  });

  test('does not copy when a read holds whole frames', () => {
    const splitter = new FrameSplitter({ source: 'client' });
    splitter.push(stream);
    const frame = splitter.next() as Frame;
    expect(frame.raw.buffer).toBe(stream.buffer);
    expect(frame.raw.byteOffset).toBe(stream.byteOffset);
  });

  test('splits startup-phase frames without a type byte, then typed frames after the phase changes', () => {
    const splitter = new FrameSplitter({ source: 'client', phase: 'startup' });
    const startup = encodeStartupMessage({ user: 'app', database: 'orders' });
    splitter.push(Buffer.concat([encodeSSLRequest(), startup, encodeQuery('SELECT 1')]));
    const ssl = splitter.next() as Frame;
    expect(ssl.type).toBe(STARTUP_FRAME_TYPE);
    expect(ssl.payload.readInt32BE(0)).toBe(80877103);
    expect((splitter.next() as Frame).raw).toEqual(startup);
    splitter.phase = 'regular';
    expect(String.fromCharCode((splitter.next() as Frame).type)).toBe('Q');
    expect(splitter.next()).toBeUndefined();
  });

  test('hands back unconsumed bytes (e.g. a TLS ClientHello after SSLRequest)', () => {
    const splitter = new FrameSplitter({ source: 'client', phase: 'startup' });
    splitter.push(Buffer.concat([encodeSSLRequest(), Buffer.from([0x16, 0x03])]));
    splitter.push(Buffer.from([0x01]));
    expect(splitter.next()).toBeDefined();
    expect(splitter.bufferedBytes).toBe(3);
    expect(splitter.takeRemaining()).toEqual(Buffer.from([0x16, 0x03, 0x01]));
    expect(splitter.bufferedBytes).toBe(0);
    expect(splitter.next()).toBeUndefined();
  });

  test('refuses a length below 4 with a typed error, and stays failed', () => {
    const splitter = new FrameSplitter({ source: 'client' });
    splitter.push(Buffer.from([0x51, 0, 0, 0, 3]));
    expectCode(() => splitter.next(), 'GH_ERR_PG_FRAME_LENGTH');
    splitter.push(encodeSync());
    expectCode(() => splitter.next(), 'GH_ERR_PG_FRAME_LENGTH');
  });

  test('refuses negative lengths', () => {
    const splitter = new FrameSplitter({ source: 'server' });
    splitter.push(Buffer.from([0x44, 0xff, 0xff, 0xff, 0xff]));
    expectCode(() => splitter.next(), 'GH_ERR_PG_FRAME_LENGTH');
  });

  test('refuses a frame above the limit as soon as its header arrives', () => {
    const splitter = new FrameSplitter({ source: 'client', maxFrameBytes: 1024 });
    const header = Buffer.alloc(5);
    header[0] = 0x64;
    header.writeInt32BE(1024, 1); // 1025 bytes with the type byte
    splitter.push(header);
    expectCode(() => splitter.next(), 'GH_ERR_PG_FRAME_TOO_LARGE');
    const atLimit = new FrameSplitter({ source: 'client', maxFrameBytes: 1024 });
    atLimit.push(encodeCopyData(Buffer.alloc(1019)));
    expect(atLimit.next()?.raw.length).toBe(1024);
  });

  test('defaults the limit by source: 64 MiB for clients, 1 GiB for servers', () => {
    const header = (length: number) => {
      const bytes = Buffer.alloc(5);
      bytes[0] = 0x64;
      bytes.writeInt32BE(length, 1);
      return bytes;
    };
    const client = new FrameSplitter({ source: 'client' });
    client.push(header(64 * 1024 ** 2));
    expectCode(() => client.next(), 'GH_ERR_PG_FRAME_TOO_LARGE');
    const server = new FrameSplitter({ source: 'server' });
    server.push(header(64 * 1024 ** 2));
    expect(server.next()).toBeUndefined();
    const huge = new FrameSplitter({ source: 'server' });
    huge.push(header(1024 ** 3));
    expectCode(() => huge.next(), 'GH_ERR_PG_FRAME_TOO_LARGE');
  });

  test('limits startup frames to PostgreSQL\'s 10000 bytes and at least 8', () => {
    const big = Buffer.alloc(4);
    big.writeInt32BE(10_001);
    const tooBig = new FrameSplitter({ source: 'client', phase: 'startup' });
    tooBig.push(big);
    expectCode(() => tooBig.next(), 'GH_ERR_PG_FRAME_LENGTH');
    const tooSmall = new FrameSplitter({ source: 'client', phase: 'startup' });
    tooSmall.push(Buffer.from([0, 0, 0, 7, 0, 0, 0]));
    expectCode(() => tooSmall.next(), 'GH_ERR_PG_FRAME_LENGTH');
  });

  test('splits a 1 MB buffer of small frames quickly', () => {
    const row = encodeDataRow([Buffer.from('42'), null, Buffer.from('alice@example.com')]);
    const bytes = Buffer.concat(new Array(Math.ceil(1024 ** 2 / row.length)).fill(row));
    const started = performance.now();
    const frames = feedInChunks(bytes, 64 * 1024, { source: 'server' });
    const elapsed = performance.now() - started;
    expect(frames.length).toBe(bytes.length / row.length);
    expect(frames.every((frame) => frame.raw.length === row.length)).toBe(true);
    expect(elapsed).toBeLessThan(250);
  });

  test('copies a large frame arriving in many reads about once, not once per read', () => {
    const frame = encodeCopyData(Buffer.alloc(16 * 1024 ** 2, 7));
    const started = performance.now();
    const frames = feedInChunks(frame, 16 * 1024, { source: 'server' });
    expect(performance.now() - started).toBeLessThan(500);
    expect(frames).toHaveLength(1);
    expect(frames[0].raw.equals(frame)).toBe(true);
  });

  test('copies only the frame that straddles two reads, not the frames after it', () => {
    const rows = Array.from({ length: 50 }, (_, index) => encodeDataRow([Buffer.from(`row ${index}`)]));
    const bytes = Buffer.concat(rows);
    const cut = rows[0]!.length + 3;
    const splitter = new FrameSplitter({ source: 'server' });
    // Reads get memory of their own (Buffer.alloc is never pooled).
    const read = (part: Buffer) => {
      const copy = Buffer.alloc(part.length);
      part.copy(copy);
      return copy;
    };
    const first = read(bytes.subarray(0, cut));
    const second = read(bytes.subarray(cut));
    splitter.push(first);
    splitter.push(second);
    const frames = splitAll(splitter);
    expect(frames.map((frame) => frame.raw)).toEqual(rows);
    // The second row straddles the reads and is copied; the rest are views of the second read.
    expect(frames[1]!.raw.buffer).not.toBe(second.buffer);
    expect(frames.slice(2).every((frame) => frame.raw.buffer === second.buffer)).toBe(true);
  });

  test('handles 1-byte reads of many frames', () => {
    const bytes = Buffer.concat(new Array(2000).fill(stream));
    const frames = feedInChunks(bytes, 1);
    expect(frames).toHaveLength(6000);
    expect(Buffer.concat(frames.map((frame) => frame.raw)).equals(bytes)).toBe(true);
  });
});
