import fc from 'fast-check';
import { CommandTagReader, rowsOfTag } from './command-tags.js';
import { ReceivedFrame } from './frame-splitter.js';

/** A CommandComplete frame for `tag`, `before` bytes into a buffer. */
function commandComplete(tag: string | Buffer, before = 0): ReceivedFrame {
  const body = Buffer.concat([typeof tag === 'string' ? Buffer.from(tag, 'utf8') : tag, Buffer.from([0])]);
  const frame = Buffer.alloc(5 + body.length);
  frame[0] = 0x43;
  frame.writeInt32BE(4 + body.length, 1);
  body.copy(frame, 5);
  const source = Buffer.concat([Buffer.alloc(before, 0x5a), frame]);
  return new ReceivedFrame(0x43, source, before, source.length, 5);
}

describe('rowsOfTag', () => {
  test.each([
    ['SELECT 1', 1],
    ['INSERT 0 25', 25],
    ['UPDATE 0', 0],
    ['CREATE TABLE', 0],
    ['SELECT ', 0],
    ['', 0],
    ['FETCH 12a', 0],
    ['COPY 007', 7],
  ])('%j → %d', (tag, rows) => {
    expect(rowsOfTag(tag)).toBe(rows);
  });
});

describe('CommandTagReader', () => {
  test('reads every tag of a sequence as a fresh decode would, repeated or not', () => {
    const tag = fc.oneof(fc.constantFrom('SELECT 1', 'SELECT 10', 'SELECT 1 ', 'INSERT 0 1', 'PREPARE', 'BEGIN', ''), fc.string(), fc.string({ unit: 'binary' }));
    fc.assert(
      fc.property(fc.array(fc.tuple(tag, fc.nat(8)), { maxLength: 30 }), (tags) => {
        const reader = new CommandTagReader();
        return tags.every(([text, before]) => {
          const expected = text.includes('\0') ? undefined : Buffer.from(text, 'utf8').toString('utf8');
          const read = reader.read(commandComplete(text, before));
          return expected === undefined || (read.tag === expected && read.rows === rowsOfTag(expected));
        });
      }),
      { numRuns: 1_000 },
    );
  });

  test('a tag is not mistaken for the previous one with the same length', () => {
    const reader = new CommandTagReader();
    expect(reader.read(commandComplete('SELECT 1'))).toEqual({ tag: 'SELECT 1', rows: 1 });
    expect(reader.read(commandComplete('SELECT 2'))).toEqual({ tag: 'SELECT 2', rows: 2 });
    expect(reader.read(commandComplete('SELECT 2', 3))).toEqual({ tag: 'SELECT 2', rows: 2 });
  });

  test('non-ASCII bytes that read as the previous tag\'s replacement characters are decoded anew', () => {
    const reader = new CommandTagReader();
    const invalid = Buffer.from([0xff]);
    expect(reader.read(commandComplete(invalid)).tag).toBe('\ufffd');
    expect(reader.read(commandComplete(Buffer.from([0xfe]))).tag).toBe('\ufffd');
    expect(reader.read(commandComplete('é')).tag).toBe('é');
  });

  test('a frame without a terminating NUL has no tag', () => {
    const source = Buffer.from([0x43, 0, 0, 0, 6, 0x41, 0x42]);
    expect(new CommandTagReader().read(new ReceivedFrame(0x43, source, 0, source.length, 5))).toEqual({ tag: '', rows: 0 });
  });
});
