// The hand-made JSON lines and timestamps must be exactly what JSON.stringify and Date#toISOString
// make, for any strings (quotes, control characters, lone surrogates) and any clock readings.
import fc from 'fast-check';
import { canonicalJsonWithOrder } from '../../api/recordings/canonical-json.js';
import { eventLine, jsonString, spoolEventLine, spoolLine, TimestampFormatter } from './event-lines.js';
import type { SessionEvent } from './session-recorder.js';

const anyString = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('', '"', '\\', '\n', '\u2028', '\ud800', 'a\udc00b', 'ok'));

describe('jsonString', () => {
  test('equals JSON.stringify for any string', () => {
    fc.assert(fc.property(anyString, (value) => jsonString(value) === JSON.stringify(value)), { numRuns: 2_000 });
  });
});

/**
 * What spoolEventLine writes for an event: {seq, at, type, payload}, the payload being the event's
 * other fields with the keys of the two statement events in sorted (canonical) order.
 */
function spoolJson(seq: number, event: { readonly type: string; readonly at: string }): string {
  const { type, at, ...fields } = event;
  const sorted = type === 'statement' || type === 'complete';
  const payload = sorted ? Object.fromEntries(Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : 1))) : fields;
  return JSON.stringify({ seq, at, type, payload });
}

describe('eventLine', () => {
  const statement = fc.record(
    {
      type: fc.constant('statement' as const),
      at: anyString,
      text: anyString,
      parameters: fc.array(fc.option(anyString, { nil: null })),
      operation: anyString,
      decision: anyString,
      rule: anyString,
    },
    { requiredKeys: ['type', 'at', 'text', 'operation', 'decision'] },
  );
  const complete = fc.record({
    type: fc.constant('complete' as const),
    at: anyString,
    command: anyString,
    rows: fc.oneof(fc.integer(), fc.double()),
    durationMs: fc.double(),
  });
  const other = fc.oneof(
    fc.record({ type: fc.constant('error' as const), at: anyString, code: anyString, message: anyString }),
    fc.record({ type: fc.constant('disconnect' as const), at: anyString, reason: anyString, durationMs: fc.double() }),
  );

  test('equals JSON.stringify of the event, field order included', () => {
    fc.assert(
      fc.property(fc.oneof(statement, complete, other), (event) => eventLine(event as SessionEvent) === JSON.stringify(event)),
      { numRuns: 2_000 },
    );
  });

  test('spoolEventLine equals JSON.stringify of {seq, at, type, payload: the other fields}, statement and complete payloads in key order', () => {
    fc.assert(
      fc.property(fc.nat(), fc.oneof(statement, complete, other), (seq, event) => spoolEventLine(seq, event as SessionEvent) === spoolJson(seq, event)),
      { numRuns: 2_000 },
    );
  });

  test('spoolLine equals JSON.stringify for the uploader\'s own events', () => {
    fc.assert(
      fc.property(fc.nat(), anyString, anyString, fc.dictionary(anyString, fc.oneof(anyString, fc.integer())), (seq, at, type, payload) =>
        spoolLine(seq, at, type, payload) === JSON.stringify({ seq, at, type, payload })),
      { numRuns: 1_000 },
    );
  });

  test('lines stay exact over sequences that repeat and change operation, decision, rule and command', () => {
    // Few distinct values, so consecutive events often share them (the remembered tail and command)
    // and often do not (the memo must not leak one event's fields into the next line).
    const few = fc.constantFrom('read', 'write', 'allow', 'deny', 'p/read', 'p/"x"', 'SELECT 1', 'SELECT 2', 'é');
    const repeating = fc.oneof(
      fc.record(
        { type: fc.constant('statement' as const), at: few, text: anyString, parameters: fc.array(fc.option(few, { nil: null })), operation: few, decision: few, rule: few },
        { requiredKeys: ['type', 'at', 'text', 'operation', 'decision'] },
      ),
      fc.record({ type: fc.constant('complete' as const), at: few, command: few, rows: fc.nat(), durationMs: fc.double() }),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), repeating), { maxLength: 20 }), (events) =>
        events.every(([seq, event]) => eventLine(event as SessionEvent) === JSON.stringify(event) && spoolEventLine(seq, event as SessionEvent) === spoolJson(seq, event))),
      { numRuns: 1_000 },
    );
  });

  test('lines with the timestamp just formatted, and with other strings as `at`, are exact', () => {
    const formatter = new TimestampFormatter();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_102_444_800_000 }), anyString, fc.boolean(), fc.nat(), (ms, other, useFormatted, seq) => {
        const formatted = formatter.format(ms);
        const at = useFormatted ? formatted : other;
        const statement: SessionEvent = { type: 'statement', at, text: 'SELECT 1', operation: 'read', decision: 'allow' };
        const complete: SessionEvent = { type: 'complete', at, command: 'SELECT 1', rows: 1, durationMs: 0.25 };
        return [statement, complete].every((event) => eventLine(event) === JSON.stringify(event) && spoolEventLine(seq, event) === spoolJson(seq, event));
      }),
      { numRuns: 2_000 },
    );
  });

  test('a typical statement line', () => {
    const line = eventLine({ type: 'statement', at: '2026-11-22T18:54:01.002Z', text: 'SELECT 1', operation: 'read', decision: 'allow', rule: 'p/read' });
    expect(JSON.parse(line)).toEqual({ type: 'statement', at: '2026-11-22T18:54:01.002Z', text: 'SELECT 1', operation: 'read', decision: 'allow', rule: 'p/read' });
  });
});

describe('TimestampFormatter', () => {
  test('equals Date#toISOString for clock readings moving forward, back, and across minutes, days and years', () => {
    const reading = fc.oneof(
      fc.integer({ min: -62_198_755_200_000, max: 253_402_300_799_999 }), // years 0000 to 9999
      fc.integer({ min: -8_640_000_000_000_000, max: 8_640_000_000_000_000 }), // the whole Date range
    );
    const steps = fc.array(fc.oneof(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 120_000 }), fc.integer({ min: -120_000, max: 0 })), { maxLength: 50 });
    fc.assert(
      fc.property(reading, steps, (start, deltas) => {
        const formatter = new TimestampFormatter();
        let ms = start;
        for (const delta of [0, ...deltas]) {
          ms = Math.max(-8_640_000_000_000_000, Math.min(8_640_000_000_000_000, ms + delta));
          if (formatter.format(ms) !== new Date(ms).toISOString()) return false;
        }
        return true;
      }),
      { numRuns: 2_000 },
    );
  });

  test('the end of a minute and the next one', () => {
    const formatter = new TimestampFormatter();
    const minute = Date.UTC(2026, 10, 22, 18, 59);
    expect(formatter.format(minute - 1)).toBe('2026-11-22T18:58:59.999Z');
    expect(formatter.format(minute)).toBe('2026-11-22T18:59:00.000Z');
    expect(formatter.format(minute + 9_009)).toBe('2026-11-22T18:59:09.009Z');
    expect(formatter.format(minute + 59_999)).toBe('2026-11-22T18:59:59.999Z');
    expect(formatter.format(minute + 60_000)).toBe('2026-11-22T19:00:00.000Z');
    // A reading with a fraction of a millisecond is truncated, as toISOString does.
    expect(formatter.format(minute + 60_010.7)).toBe('2026-11-22T19:00:00.010Z');
    expect(formatter.format(minute + 60_011)).toBe('2026-11-22T19:00:00.011Z');
  });
});
