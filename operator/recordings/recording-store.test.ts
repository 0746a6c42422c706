import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { silentLogger } from '../../api/logging/logger.js';
import { generateCheckpointSigner, parseCheckpointKeys, type CheckpointKeys, type CheckpointSigner } from '../../api/recordings/checkpoint.js';
import { RecordingChain, toLine } from '../../api/recordings/recording-format.js';
import { parseEventLines } from '../../api/recordings/report-events-proto.js';
import { verifyRecording, type RecordingVerification } from '../../api/recordings/verify-recording.js';
import { metricValue } from '../control-plane/testing/discovery-fixture.js';
import { createRecordingMetrics, type RecordingMetrics } from './recording-metrics.js';
import { RecordingStore, type IncomingEvent, type RetentionOptions, type SessionStart } from './recording-store.js';

const START: SessionStart = { identity: 'ci-runner', resource: 'orders-db', protocol: 'postgres', startedAt: '2026-11-20T09:00:00.000Z' };
const NODE = 'payments/app-0';

let dir: string;
let signer: CheckpointSigner;
let keys: CheckpointKeys;
let registry: Registry;
let metrics: RecordingMetrics;
const stores: RecordingStore[] = [];

beforeAll(async () => {
  signer = await generateCheckpointSigner();
  keys = await parseCheckpointKeys(JSON.stringify(signer.publicJwk));
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-store-'));
  registry = new Registry();
  metrics = createRecordingMetrics(registry);
});

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function openStore(retention?: RetentionOptions, clock?: () => number, idleSealMs?: number): Promise<RecordingStore> {
  const store = await RecordingStore.open({
    dir, signer, metrics, logger: silentLogger(), ...(retention ? { retention } : {}), ...(clock ? { clock } : {}), ...(idleSealMs ? { idleSealMs } : {}),
  });
  stores.push(store);
  return store;
}

function events(from: number, to: number, last?: string): IncomingEvent[] {
  const list: IncomingEvent[] = [];
  for (let seq = from; seq <= to; seq += 1) {
    const type = seq === to && last !== undefined ? last : 'statement';
    list.push({ seq, at: new Date(Date.parse(START.startedAt) + seq * 100).toISOString(), type, payload: type === 'statement' ? { text: `SELECT ${seq}`, decision: 'allow' } : {} });
  }
  return list;
}

async function verifyFile(path: string): Promise<RecordingVerification> {
  return verifyRecording((await readFile(path, 'utf8')).split('\n'), undefined, keys);
}

const DAY = '2026-11-20';

describe('RecordingStore', () => {
  test('appends a session in its day folder and seals it on end with a checkpoint that verifies', async () => {
    const store = await openStore();
    expect(await store.append({ node: NODE, session: 's1', start: START, events: events(1, 2) })).toEqual({ storedThrough: 2 });
    expect(store.openSessions).toBe(1);
    expect(await metricValue(registry, 'gatehouse_recording_sessions_open')).toBe(1);
    expect(await store.append({ node: NODE, session: 's1', events: events(3, 4, 'end') })).toEqual({ storedThrough: 4 });
    const path = join(dir, DAY, 's1.jsonl');
    const result = await verifyFile(path);
    expect(result.status).toBe('intact');
    if (result.status === 'intact') expect(result.checkpoint).toMatchObject({ session: 's1', events: 4, status: 'sealed', node: NODE, firstAt: '2026-11-20T09:00:00.100Z', lastAt: '2026-11-20T09:00:00.400Z' });
    expect(await metricValue(registry, 'gatehouse_recording_sessions_open')).toBe(0);
    expect(await metricValue(registry, 'gatehouse_recording_sessions_sealed_total', { status: 'sealed' })).toBe(1);
    expect(await metricValue(registry, 'gatehouse_recording_events_total', { type: 'statement' })).toBe(3);
    expect(await metricValue(registry, 'gatehouse_recording_events_total', { type: 'end' })).toBe(1);
    expect(await metricValue(registry, 'gatehouse_recording_bytes_written_total')).toBe((await readFile(path)).length);
  });

  test('re-sent events are acknowledged once and not written twice; a gap is refused', async () => {
    const store = await openStore();
    await store.append({ node: NODE, session: 's1', start: START, events: events(1, 3) });
    expect(await store.append({ node: NODE, session: 's1', start: START, events: events(2, 5) })).toEqual({ storedThrough: 5 });
    expect(await metricValue(registry, 'gatehouse_recording_duplicate_events_total')).toBe(2);
    const gap = await store.append({ node: NODE, session: 's1', events: events(7, 8) });
    expect(gap.storedThrough).toBe(5);
    expect(gap.error?.code).toBe('GH_ERR_RECORDING_SEQ_GAP');
    await store.close();
    const result = await verifyFile(join(dir, DAY, 's1.jsonl'));
    expect(result.status === 'intact' && result.checkpoint).toMatchObject({ events: 5, lastSeq: 5, status: 'interrupted' });
  });

  test('a node cannot write another node\'s session, nor one it never described, nor a path-like id', async () => {
    const store = await openStore();
    await store.append({ node: NODE, session: 's1', start: START, events: events(1, 1) });
    const foreign = await store.append({ node: 'payments/intruder', session: 's1', start: START, events: events(2, 2) });
    expect(foreign).toMatchObject({ storedThrough: 0, error: { code: 'GH_ERR_RECORDING_NOT_OWNER' } });
    expect((await store.append({ node: NODE, session: 'unknown', events: events(1, 1) })).error?.code).toBe('GH_ERR_RECORDING_NO_SESSION_INFO');
    expect((await store.append({ node: NODE, session: '../../etc/x', start: START, events: events(1, 1) })).error?.code).toBe('GH_ERR_RECORDING_BAD_EVENT');
    expect((await store.append({ node: NODE, session: 's2', start: START, events: [{ seq: 1, at: 'yesterday', type: 'x', payload: {} }] })).error?.code).toBe('GH_ERR_RECORDING_BAD_EVENT');
    expect(await metricValue(registry, 'gatehouse_recording_refused_events_total', { reason: 'not-owner' })).toBe(1);
  });

  test('a payload nested too deeply to hash is refused as malformed after the events before it; the session goes on', async () => {
    const store = await openStore();
    let deep: unknown = 'x';
    for (let level = 0; level < 200_000; level += 1) deep = [deep];
    const [first, , third] = events(1, 3);
    const result = await store.append({ node: NODE, session: 's1', start: START, events: [first!, { seq: 2, at: first!.at, type: 'statement', payload: { deep } }, third!] });
    expect(result.storedThrough).toBe(1);
    expect(result.error?.code).toBe('GH_ERR_RECORDING_BAD_EVENT');
    expect(result.error?.message).toContain('nested more than 256 levels deep');
    expect(await metricValue(registry, 'gatehouse_recording_refused_events_total', { reason: 'malformed' })).toBe(2);
    // Nothing was lost or torn: the session continues from where it was stored.
    expect(await store.append({ node: NODE, session: 's1', events: events(2, 3, 'end') })).toEqual({ storedThrough: 3 });
    expect((await verifyFile(join(dir, DAY, 's1.jsonl'))).status).toBe('intact');
  });

  test('the owner check holds across a restart: ownership comes from the file', async () => {
    const first = await openStore();
    await first.append({ node: NODE, session: 's1', start: START, events: events(1, 2, 'end') });
    const second = await openStore();
    expect((await second.append({ node: 'payments/intruder', session: 's1', start: START, events: events(3, 3) })).error?.code).toBe('GH_ERR_RECORDING_NOT_OWNER');
    expect(await second.append({ node: NODE, session: 's1', start: START, events: events(1, 2) })).toEqual({ storedThrough: 2 });
  });

  test('shutdown seals open sessions as interrupted; the session continues in a linked part 2', async () => {
    const first = await openStore();
    await first.append({ node: NODE, session: 's1', start: START, events: events(1, 3) });
    await first.close();
    expect(await metricValue(registry, 'gatehouse_recording_sessions_sealed_total', { status: 'interrupted' })).toBe(1);
    const part1 = await verifyFile(join(dir, DAY, 's1.jsonl'));
    expect(part1.status === 'intact' && part1.checkpoint.status).toBe('interrupted');
    const second = await openStore();
    expect(await second.append({ node: NODE, session: 's1', start: START, events: events(2, 5, 'end') })).toEqual({ storedThrough: 5 });
    const part2 = await verifyFile(join(dir, DAY, 's1.part2.jsonl'));
    expect(part2.status).toBe('intact');
    if (part1.status !== 'intact' || part2.status !== 'intact') return;
    expect(part2.header).toMatchObject({ part: 2, firstSeq: 4, previousPartHash: part1.checkpoint.lastHash });
    expect(part2.checkpoint).toMatchObject({ events: 2, firstSeq: 4, lastSeq: 5, status: 'sealed' });
  });

  test('a file a crash left open is sealed interrupted at start, its torn last line dropped', async () => {
    await mkdir(join(dir, DAY), { recursive: true });
    const chain = RecordingChain.start({ kind: 'header', version: 1, session: 'crashed', node: NODE, ...START, part: 1, firstSeq: 1 });
    let text = toLine(chain.header);
    for (const event of events(1, 3)) text += toLine(chain.append({ ...event, payload: event.payload as Record<string, string> }));
    const path = join(dir, DAY, 'crashed.jsonl');
    await writeFile(path, `${text}{"seq":4,"at":"2026-11-20T09:0`);
    await openStore();
    const result = await verifyFile(path);
    expect(result.status === 'intact' && result.checkpoint).toMatchObject({ events: 3, status: 'interrupted' });
  });

  test('an unsealed file that fails verification at start is counted and left unsealed', async () => {
    await mkdir(join(dir, DAY), { recursive: true });
    const chain = RecordingChain.start({ kind: 'header', version: 1, session: 'bad', node: NODE, ...START, part: 1, firstSeq: 1 });
    const lines = [toLine(chain.header), ...events(1, 2).map((event) => toLine(chain.append({ ...event, payload: event.payload as Record<string, string> })))];
    lines[1] = lines[1]!.replace('SELECT 1', 'SELECT 666');
    const path = join(dir, DAY, 'bad.jsonl');
    await writeFile(path, lines.join(''));
    await openStore();
    expect(await metricValue(registry, 'gatehouse_recording_verification_failures_total')).toBe(1);
    expect(await readFile(path, 'utf8')).toBe(lines.join(''));
  });

  test('retention by age deletes old sealed files but never an open one', async () => {
    const store = await openStore();
    await store.append({ node: NODE, session: 'old', start: START, events: events(1, 2, 'end') });
    await store.append({ node: NODE, session: 'open', start: START, events: events(1, 2) });
    await store.append({ node: NODE, session: 'new', start: { ...START, startedAt: '2026-11-21T09:00:00.000Z' }, events: events(1, 2, 'end') });
    const longAgo = new Date(Date.now() - 10 * 86_400_000);
    await utimes(join(dir, DAY, 'old.jsonl'), longAgo, longAgo);
    await utimes(join(dir, DAY, 'open.jsonl'), longAgo, longAgo);
    await store.close();
    stores.splice(0);
    const aged = await openStore({ maxAgeDays: 7 });
    // The sealed-at-shutdown file of "open" was written just now, so it stays.
    expect((await readdir(join(dir, DAY))).sort()).toEqual(['open.jsonl']);
    expect(await readdir(join(dir, '2026-11-21'))).toEqual(['new.jsonl']);
    expect(await metricValue(registry, 'gatehouse_recording_retention_deletions_total', { reason: 'age' })).toBe(1);
    await aged.append({ node: NODE, session: 'live', start: START, events: events(1, 1) });
    const live = join(dir, DAY, 'live.jsonl');
    await utimes(live, longAgo, longAgo);
    expect((await aged.enforceRetention()).deletedForAge).toBe(0);
    expect((await readdir(join(dir, DAY))).sort()).toEqual(['live.jsonl', 'open.jsonl']);
  });

  test('retention by size deletes the oldest sealed files until the rest fit', async () => {
    const store = await openStore();
    for (const [index, session] of ['a', 'b', 'c'].entries()) {
      await store.append({ node: NODE, session, start: START, events: events(1, 3, 'end') });
      const when = new Date(Date.now() - (3 - index) * 60_000);
      await utimes(join(dir, DAY, `${session}.jsonl`), when, when);
    }
    const sizes = await Promise.all(['a', 'b', 'c'].map(async (session) => (await readFile(join(dir, DAY, `${session}.jsonl`))).length));
    stores.splice(0);
    await store.close();
    const capped = await openStore({ maxTotalBytes: sizes[2]! + 10 });
    expect(await readdir(join(dir, DAY))).toEqual(['c.jsonl']);
    expect(await metricValue(registry, 'gatehouse_recording_retention_deletions_total', { reason: 'size' })).toBe(2);
    expect(await metricValue(registry, 'gatehouse_recording_stored_bytes')).toBe(sizes[2]);
    await appendFile(join(dir, DAY, 'c.jsonl'), '');
    expect((await capped.enforceRetention()).remainingBytes).toBe(sizes[2]);
  });

  test('a session whose sidecar went quiet is sealed interrupted; later events continue it in part 2', async () => {
    let now = Date.parse('2026-11-22T12:00:00.000Z');
    const store = await openStore(undefined, () => now, 3_600_000);
    await store.append({ node: NODE, session: 'quiet', start: START, events: events(1, 2) });
    await store.append({ node: NODE, session: 'busy', start: START, events: events(1, 1) });
    now += 3_000_000;
    await store.append({ node: NODE, session: 'busy', events: events(2, 2) });
    now += 700_000;
    expect(await store.sealIdle(3_600_000)).toBe(1);
    expect(store.openSessions).toBe(1);
    const part1 = await verifyFile(join(dir, DAY, 'quiet.jsonl'));
    expect(part1.status === 'intact' && part1.checkpoint.status).toBe('interrupted');
    expect(await store.append({ node: NODE, session: 'quiet', events: events(3, 3, 'end') })).toEqual({ storedThrough: 3 });
    expect((await verifyFile(join(dir, DAY, 'quiet.part2.jsonl'))).status).toBe('intact');
  });

  test('verifySealed counts sealed files that fail verification', async () => {
    const store = await openStore();
    await store.append({ node: NODE, session: 'good', start: START, events: events(1, 2, 'end') });
    await store.append({ node: NODE, session: 'bad', start: START, events: events(1, 2, 'end') });
    const path = join(dir, DAY, 'bad.jsonl');
    await writeFile(path, (await readFile(path, 'utf8')).replace('SELECT 1', 'SELECT 2'));
    expect(await store.verifySealed(keys)).toEqual([path]);
    expect(await metricValue(registry, 'gatehouse_recording_verification_failures_total')).toBe(1);
  });
});

describe('RecordingStore under arbitrary sidecar input', () => {
  /** One line of an upload batch, and what the store must make of it. */
  type Line = { readonly text: string; readonly kind: 'next' | 'resend' | 'bad' | 'gap' };

  const payload = fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('10', '9', '__proto__', 'é')), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 });
  const eventType = fc.constantFrom('statement', 'complete', 'error', 'disconnect');
  const at = (seq: number) => new Date(Date.parse(START.startedAt) + seq * 10).toISOString();
  /** Lines the store must refuse as malformed (seq stands for the expected next one). */
  const badLine = (seq: number) => fc.oneof(
    fc.string().map((text) => `x${text.replace(/\n/g, ' ')}`),
    fc.jsonValue().filter((value) => typeof value !== 'object' || value === null || Array.isArray(value)).map((value) => JSON.stringify(value)),
    fc.constantFrom(
      JSON.stringify({ seq, at: 'yesterday', type: 'statement', payload: {} }),
      JSON.stringify({ seq, at: at(seq), type: '', payload: {} }),
      JSON.stringify({ seq, at: at(seq), type: 'statement', payload: [] }),
      JSON.stringify({ seq, at: at(seq), type: 'statement' }),
      JSON.stringify({ seq: seq + 0.5, at: at(seq), type: 'statement', payload: {} }),
      `{"seq":${seq},"at":"${at(seq)}","type":"statement","payload":{"deep":${'['.repeat(5_000)}${']'.repeat(5_000)}}}`,
    ),
  );
  /** What the generator chose for each position, turned into lines once the expected seq is known. */
  const step = fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('next' as const), type: eventType, payload }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('resend' as const), back: fc.nat(3) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('bad' as const), pick: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('gap' as const), ahead: fc.integer({ min: 2, max: 5 }) }) },
  );

  test('never throws, stores exactly the in-order prefix of each batch, and leaves a file that verifies', async () => {
    let run = 0;
    await fc.assert(fc.asyncProperty(fc.array(fc.array(step, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 5 }), fc.nat(), async (batches, badSeed) => {
      run += 1;
      const store = await RecordingStore.open({ dir: join(dir, `run-${run}`), signer, metrics: createRecordingMetrics(new Registry()), logger: silentLogger() });
      const sent = new Map<number, string>();
      let stored = 0;
      let count = 0;
      try {
        for (const steps of batches) {
          // The model: the store takes events in order, skips what it has, and stops at the first bad or
          // out-of-order line; a session it has no file of yet starts at its first event, whatever its seq.
          let expected = stored;
          let stopped = false;
          const lines: Line[] = [];
          for (const [index, chosen] of steps.entries()) {
            const next = expected + 1;
            const known = [...sent.keys()];
            let line: Line;
            if (chosen.kind === 'next') line = { kind: 'next', text: JSON.stringify({ seq: next, at: at(next), type: chosen.type, payload: chosen.payload }) };
            else if (chosen.kind === 'resend' && known.length > 0) line = { kind: 'resend', text: sent.get(known[chosen.back % known.length]!)! };
            else if (chosen.kind === 'gap') line = { kind: 'gap', text: JSON.stringify({ seq: next + chosen.ahead, at: at(next), type: 'statement', payload: {} }) };
            else line = { kind: 'bad', text: fc.sample(badLine(next), { numRuns: 1, seed: badSeed + index })[0]! };
            lines.push(line);
            if (stopped || line.kind === 'resend') continue;
            if (line.kind === 'gap' && count === 0 && expected === 0) {
              const seq = next + (chosen as { ahead: number }).ahead;
              sent.set(seq, line.text);
              expected = seq;
              count += 1;
            } else if (line.kind === 'next') {
              sent.set(next, line.text);
              expected = next;
              count += 1;
            } else {
              stopped = true;
            }
          }
          const result = await store.append({ node: NODE, session: 'fuzzed', start: START, events: parseEventLines(Buffer.from(`${lines.map((line) => line.text).join('\n')}\n`)) });
          expect(result.storedThrough).toBe(expected);
          expect(result.error !== undefined).toBe(stopped);
          stored = expected;
        }
      } finally {
        await store.close();
      }
      const files = (await readdir(join(dir, `run-${run}`), { recursive: true })).filter((name) => String(name).endsWith('.jsonl'));
      if (count === 0) return;
      expect(files).toHaveLength(1);
      const verification = await verifyRecording((await readFile(join(dir, `run-${run}`, String(files[0])), 'utf8')).split('\n'), undefined, keys);
      expect(verification.status).toBe('intact');
      if (verification.status === 'intact') expect(verification.checkpoint).toMatchObject({ events: count, lastSeq: stored });
    }), {
      numRuns: 100,
      // Found by a CI run: a first event too deep to hash had left an empty file pinning where the session starts.
      examples: [[[[{ kind: 'resend', back: 0 }, { kind: 'next', type: 'statement', payload: {} }], [{ kind: 'gap', ahead: 2 }]], 610441503]],
    });
  }, 60_000);
});
