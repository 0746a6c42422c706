// DataRowCells and encodeEditedDataRow, the in-place path masking takes through DataRows, against
// the general decoder and encoder: the same cells, the same refusals, the same bytes out.
import fc from 'fast-check';
import { isGatehouseError } from '../../../api/errors.js';
import { encodeDataRow, encodeEditedDataRow } from './backend-encoders.js';
import { DataRowCells, decodeBackendMessage } from './backend-messages.js';
import { DataRowEdits } from './data-row-edits.js';
import { FrameBatch } from './frame-batch.js';
import { ReceivedFrame } from './frame-splitter.js';

const cell = fc.option(fc.uint8Array({ maxLength: 80 }).map((bytes) => Buffer.from(bytes)), { nil: null, freq: 5 });
const row = fc.array(cell, { maxLength: 30 });

function outcome(action: () => unknown): string {
  try {
    action();
    return 'ok';
  } catch (error) {
    return isGatehouseError(error) ? error.code : 'other';
  }
}

describe('DataRowCells', () => {
  test('finds every cell where the decoder finds it', () => {
    fc.assert(
      fc.property(row, (columns) => {
        const payload = encodeDataRow(columns).subarray(5);
        const cells = new DataRowCells();
        cells.read(payload);
        expect(cells.count).toBe(columns.length);
        columns.forEach((column, index) => {
          const length = cells.lengths[index]!;
          expect(length).toBe(column === null ? -1 : column.length);
          if (column !== null) expect(payload.subarray(cells.starts[index], cells.starts[index]! + length)).toEqual(column);
        });
      }),
    );
  });

  test('refuses exactly the payloads the decoder refuses', () => {
    const mangled = fc.tuple(row, fc.nat(), fc.integer({ min: -3, max: 300 }), fc.integer({ min: -2, max: 2 })).map(([columns, at, value, trim]) => {
      const payload = Buffer.from(encodeDataRow(columns).subarray(5));
      if (payload.length > 0) payload[at % payload.length] = value & 0xff;
      return trim >= 0 ? payload.subarray(0, Math.max(0, payload.length - trim)) : Buffer.concat([payload, Buffer.alloc(-trim)]);
    });
    fc.assert(
      fc.property(mangled, (payload) => {
        const cells = new DataRowCells();
        expect(outcome(() => cells.read(payload))).toBe(outcome(() => decodeBackendMessage({ type: 0x44, payload })));
      }),
    );
  });
});

describe('encodeEditedDataRow', () => {
  test('writes the row the general encoder writes with those cells replaced', () => {
    const edited = fc.tuple(row, fc.array(fc.tuple(fc.nat(), cell))).map(([columns, replacements]) => {
      const byColumn = new Map(columns.length === 0 ? [] : replacements.map(([at, value]) => [at % columns.length, value] as const));
      return { columns, byColumn };
    });
    fc.assert(
      fc.property(edited, fc.boolean(), ({ columns, byColumn }, batched) => {
        const payload = encodeDataRow(columns).subarray(5);
        const cells = new DataRowCells();
        cells.read(payload);
        const edits = new DataRowEdits();
        for (const [column, value] of [...byColumn].sort(([a], [b]) => a - b)) edits.add(column, value);
        const expected = encodeDataRow(columns.map((column, index) => (byColumn.has(index) ? byColumn.get(index)! : column)));
        const batch = new FrameBatch();
        expect(encodeEditedDataRow(payload, cells, edits, batched ? batch : undefined)).toEqual(expected);
      }),
    );
  });
});

describe('FrameBatch', () => {
  test('hands back the received chunk itself when every frame in it passed through', () => {
    const chunk = Buffer.concat([encodeDataRow([Buffer.from('a')]), encodeDataRow([null])]);
    const batch = new FrameBatch(chunk);
    batch.addFrame(new ReceivedFrame(0x44, chunk, 0, 12, 5));
    batch.addFrame(new ReceivedFrame(0x44, chunk, 12, chunk.length, 5));
    expect(batch.take()).toBe(chunk);
    expect(batch.take()).toBeUndefined();
  });

  test('a frame left out, or one added from other memory, makes a copy of what was added, in order', () => {
    const chunk = Buffer.concat([encodeDataRow([Buffer.from('a')]), encodeDataRow([null])]);
    const skipping = new FrameBatch(chunk);
    skipping.addFrame(new ReceivedFrame(0x44, chunk, 12, chunk.length, 5));
    expect(skipping.take()).toEqual(chunk.subarray(12));
    const mixed = new FrameBatch(chunk);
    mixed.addFrame(new ReceivedFrame(0x44, chunk, 0, 12, 5));
    mixed.add(Buffer.from('xyz'));
    mixed.addFrame(new ReceivedFrame(0x44, chunk, 12, chunk.length, 5));
    expect(mixed.take()).toEqual(Buffer.concat([chunk.subarray(0, 12), Buffer.from('xyz'), chunk.subarray(12)]));
  });

  test('joins what is not adjacent, in order, and merges frames allocated one after another', () => {
    const chunk = Buffer.from('abcdefgh');
    const batch = new FrameBatch(chunk);
    batch.add(chunk.subarray(0, 2));
    const first = batch.allocate(3);
    first.write('123');
    batch.add(first);
    const second = batch.allocate(2);
    second.write('45');
    batch.add(second);
    batch.add(chunk.subarray(5));
    const all = batch.take()!;
    expect(all.toString()).toBe('ab12345fgh');
  });
});
