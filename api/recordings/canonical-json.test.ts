import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { canonicalJson, canonicalJsonWithOrder, MAX_CANONICAL_DEPTH, TooDeeplyNestedError } from './canonical-json.js';
import { eventHash, RecordingChain, toLine, type RecordedEvent, type RecordingHeader } from './recording-format.js';

/**
 * The definition, written the plain way (entries, filter, sort, map, join): what every recording
 * written so far was hashed with. The one-pass writer must agree with it on every value.
 */
function reference(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((item) => reference(item === undefined ? null : item)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${reference(item)}`).join(',')}}`;
}

/** Keys that exercise the orders objects keep: integer-like ones (which come first), __proto__, escapes, non-ASCII. */
const key = fc.oneof(
  fc.string({ maxLength: 6 }),
  fc.constantFrom('0', '1', '2', '9', '10', '01', '-1', '4294967295', '__proto__', 'toJSON', 'a"b', 'é', '\u2028', '\ud800'),
);

const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null), fc.boolean(), fc.double(), fc.integer(), fc.string(), fc.fullUnicodeString(),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(key, tie('value'), { maxKeys: 6 }),
  ),
})).value;

describe('canonicalJson', () => {
  it('writes what the plain definition writes, for any JSON value and for what JSON.parse makes of it', () => {
    fc.assert(fc.property(json, (value) => {
      expect(canonicalJson(value)).toBe(reference(value));
      const parsed: unknown = JSON.parse(JSON.stringify(value));
      expect(canonicalJson(parsed)).toBe(reference(parsed));
    }), { numRuns: 3000 });
  });

  it('sorts keys by UTF-16 code units, integer-like keys included, and drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: [undefined, 2], 10: 'x', 9: 'y', c: undefined })).toBe('{"10":"x","9":"y","a":[null,2],"b":1}');
    expect(canonicalJson(JSON.parse('{"__proto__":{"z":1,"y":2}}'))).toBe('{"__proto__":{"y":2,"z":1}}');
    expect(canonicalJson({ n: -0, inf: Infinity, nan: NaN })).toBe('{"inf":null,"n":0,"nan":null}');
  });

  it('refuses values nested more than MAX_CANONICAL_DEPTH levels with a clear error, never a stack overflow', () => {
    const nested = (levels: number): unknown => JSON.parse(`${'['.repeat(levels)}1${']'.repeat(levels)}`);
    expect(canonicalJson(nested(MAX_CANONICAL_DEPTH))).toBe(`${'['.repeat(MAX_CANONICAL_DEPTH)}1${']'.repeat(MAX_CANONICAL_DEPTH)}`);
    expect(() => canonicalJson(nested(MAX_CANONICAL_DEPTH + 1))).toThrow(TooDeeplyNestedError);
    expect(() => canonicalJsonWithOrder({ a: nested(1_000_000) })).toThrow('nested more than 256 levels deep');
  });

  it('ignores toJSON (the hash covers the data, not what an object says of itself)', () => {
    const value = { at: new Date(0), plain: { toJSON: () => 'x', y: 1 } };
    expect(canonicalJson(value)).toBe(reference(value));
  });

  it('says when JSON.stringify would write the same text, and only then', () => {
    fc.assert(fc.property(json, (value) => {
      const parsed: unknown = JSON.parse(JSON.stringify(value));
      const { text, sameAsStringify } = canonicalJsonWithOrder(parsed);
      expect(text).toBe(reference(parsed));
      if (sameAsStringify) expect(JSON.stringify(parsed)).toBe(text);
    }), { numRuns: 3000 });
    expect(canonicalJsonWithOrder({ a: 1, b: { c: [1, { d: 2, e: null }] } }).sameAsStringify).toBe(true);
    expect(canonicalJsonWithOrder({ b: 1, a: 2 }).sameAsStringify).toBe(false);
    expect(canonicalJsonWithOrder({ a: { 9: 1, 10: 2 } }).sameAsStringify).toBe(false);
    expect(canonicalJsonWithOrder({ a: new Date(0) }).sameAsStringify).toBe(false);
    expect(canonicalJsonWithOrder({ a: { toJSON: () => 1 } }).sameAsStringify).toBe(false);
    expect(canonicalJsonWithOrder({ a: () => 1 }).sameAsStringify).toBe(false);
    expect(canonicalJsonWithOrder([Symbol('s')]).sameAsStringify).toBe(false);
    // A call after an inexact one starts afresh.
    expect(canonicalJsonWithOrder({ a: 1 }).sameAsStringify).toBe(true);
  });
});

const HEADER: RecordingHeader = {
  kind: 'header', version: 1, session: 's-1', node: 'payments/app-0', identity: 'ci-runner', resource: 'orders-db',
  protocol: 'postgres', startedAt: '2026-11-22T10:00:00.000Z', part: 1, firstSeq: 1,
};

const payload = fc.dictionary(key, json, { maxKeys: 6 });
const event = fc.record({ at: fc.oneof(fc.constant('2026-11-22T10:00:01.000Z'), fc.string()), type: fc.oneof(fc.constantFrom('statement', 'complete'), fc.string()), payload });

describe('RecordingChain.appendLine', () => {
  it('writes the line and chains the hash exactly as toLine(append(event)) does', () => {
    fc.assert(fc.property(fc.array(event, { minLength: 1, maxLength: 8 }), (events) => {
      const lines = RecordingChain.start(HEADER);
      const objects = RecordingChain.start(HEADER);
      events.forEach((fields, index) => {
        const recorded: RecordedEvent = { seq: index + 1, ...JSON.parse(JSON.stringify(fields)) as Omit<RecordedEvent, 'seq'> };
        expect(lines.appendLine(recorded)).toBe(toLine(objects.append(recorded)));
      });
      expect(lines.lastHash).toBe(objects.lastHash);
      expect(lines.events).toBe(events.length);
      expect(lines.firstAt).toBe(objects.firstAt);
      expect(lines.lastAt).toBe(objects.lastAt);
    }), { numRuns: 1000 });
  });

  it('hashes SHA-256 over the previous hash, a newline and the canonical event, as docs/recordings.md says', () => {
    const recorded: RecordedEvent = { seq: 1, at: '2026-11-22T10:00:01.000Z', type: 'complete', payload: { rows: 1, command: 'SELECT 1', durationMs: 0.2 } };
    const chain = RecordingChain.start(HEADER);
    const line = JSON.parse(chain.appendLine(recorded)) as { prev: string; hash: string };
    const expected = createHash('sha256')
      .update(`${chain.header.hash}\n{"at":"2026-11-22T10:00:01.000Z","payload":{"command":"SELECT 1","durationMs":0.2,"rows":1},"seq":1,"type":"complete"}`)
      .digest('hex');
    expect(line).toMatchObject({ prev: chain.header.hash, hash: expected });
    expect(eventHash(line.prev, recorded)).toBe(expected);
  });

  it('refuses an event out of sequence and leaves the chain as it was', () => {
    const chain = RecordingChain.start(HEADER);
    expect(() => chain.appendLine({ seq: 2, at: HEADER.startedAt, type: 'statement', payload: {} })).toThrow(RangeError);
    expect(chain.expectedSeq).toBe(1);
    expect(chain.lastHash).toBe(chain.header.hash);
  });
});
