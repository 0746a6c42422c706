import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { silentLogger } from '../../api/logging/logger.js';
import { generateCheckpointSigner, type CheckpointSigner } from '../../api/recordings/checkpoint.js';
import { RecordingChain, toLine } from '../../api/recordings/recording-format.js';
import { createRecordingMetrics } from '../../operator/recordings/recording-metrics.js';
import { RecordingStore, type IncomingEvent } from '../../operator/recordings/recording-store.js';
import { bufferedIO } from '../io.js';
import { runCli } from '../main.js';

const DAY = '2026-11-20';
const STARTED = `${DAY}T09:00:00.000Z`;
let dir: string;
let signer: CheckpointSigner;

function at(ms: number): string {
  return new Date(Date.parse(STARTED) + ms).toISOString();
}

function event(seq: number, ms: number, type: string, payload: Record<string, unknown> = {}): IncomingEvent {
  return { seq, at: at(ms), type, payload };
}

/** A folder as the operator leaves it: "orders" sealed, "batch" interrupted then continued in part 2 and sealed, "live" still open. */
beforeAll(async () => {
  signer = await generateCheckpointSigner();
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-sessions-'));
  const recordings = join(dir, 'recordings');
  const open = () => RecordingStore.open({ dir: recordings, signer, metrics: createRecordingMetrics(new Registry()), logger: silentLogger() });
  const start = (identity: string) => ({ identity, resource: 'orders-db', protocol: 'postgres', startedAt: STARTED });
  const first = await open();
  await first.append({ node: 'payments/app-0', session: 'orders-1111', start: start('ci-runner'), events: [
    event(1, 0, 'connect', { client: { application_name: 'psql' } }),
    event(2, 100, 'statement', { text: 'SELECT count(*) FROM orders', operation: 'read', decision: 'allow', rule: 'ci-read-only/read' }),
    event(3, 120, 'complete', { command: 'SELECT', rows: 1, durationMs: 3 }),
    event(4, 300, 'statement', { text: 'DROP TABLE orders', operation: 'ddl', decision: 'deny', rule: 'ci-read-only/no-ddl' }),
    event(5, 301, 'error', { code: '42501', message: 'schema changes go through migrations' }),
    event(6, 400, 'disconnect', { reason: 'client', durationMs: 400 }),
    event(7, 400, 'end'),
  ] });
  await first.append({ node: 'payments/app-0', session: 'batch-2222', start: start('backup-agent'), events: [event(1, 0, 'statement', { text: 'SELECT 1', operation: 'read', decision: 'allow' })] });
  await first.close();
  const second = await open();
  await second.append({ node: 'payments/app-0', session: 'batch-2222', start: start('backup-agent'), events: [event(2, 60_000, 'statement', { text: 'SELECT 2', operation: 'read', decision: 'allow' }), event(3, 61_000, 'end')] });
  await second.close();
  const chain = RecordingChain.start({ kind: 'header', version: 1, session: 'live-3333', node: 'payments/app-1', identity: 'ci-runner', resource: 'orders-db', protocol: 'postgres', startedAt: at(5_000), part: 1, firstSeq: 1 });
  await writeFile(join(recordings, DAY, 'live-3333.jsonl'), toLine(chain.header) + toLine(chain.append({ seq: 1, at: at(5_000), type: 'connect', payload: { client: {} } })));
  await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [signer.publicJwk] }));
  await writeFile(join(dir, 'other.jwks.json'), JSON.stringify({ keys: [(await generateCheckpointSigner()).publicJwk] }));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function sessions(...args: string[]) {
  const io = bufferedIO(dir);
  const code = await runCli(['sessions', ...args], io);
  return { code, out: io.out(), err: io.err() };
}

describe('gatehouse sessions', () => {
  test('list: one line per session with identity, resource, start, duration, events and status', async () => {
    const { code, out, err } = await sessions('list', '--dir', 'recordings');
    expect({ code, err }).toEqual({ code: 0, err: '' });
    expect(out.split('\n')).toEqual([
      'SESSION      IDENTITY      RESOURCE   STARTED                   DURATION  EVENTS  STATUS',
      'batch-2222   backup-agent  orders-db  2026-11-20T09:00:00.000Z  1m1s      3       sealed (2 parts)',
      'orders-1111  ci-runner     orders-db  2026-11-20T09:00:00.000Z  400ms     7       sealed',
      'live-3333    ci-runner     orders-db  2026-11-20T09:00:05.000Z  0ms       1       open',
      '',
    ]);
  });

  test('show: the events as a table, found by a unique id prefix', async () => {
    const { code, out } = await sessions('show', 'orders', '--dir', 'recordings');
    expect(code).toBe(0);
    const lines = out.split('\n');
    expect(lines[0]).toBe('session orders-1111: ci-runner on orders-db from payments/app-0, started 2026-11-20T09:00:00.000Z, 7 events, sealed');
    expect(lines[2]).toMatch(/^SEQ +TIME +OFFSET +TYPE +DETAIL$/);
    expect(lines[3]).toMatch(/^1 +2026-11-20T09:00:00\.000Z +\+0\.000s +connect +application_name=psql$/);
    expect(lines[6]).toMatch(/^4 +2026-11-20T09:00:00\.300Z +\+0\.300s +statement +\[deny ddl rule=ci-read-only\/no-ddl\] DROP TABLE orders$/);
    expect(lines[7]).toMatch(/error +42501 schema changes go through migrations$/);
  });

  test('replay: the session as it happened, with its original timing scaled by --speed', async () => {
    const started = Date.now();
    const { code, out } = await sessions('replay', 'orders-1111', '--dir', 'recordings', '--speed', '2');
    const elapsed = Date.now() - started;
    expect(code).toBe(0);
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(2_000);
    expect(out.split('\n').slice(1, 5)).toEqual([
      '   +0.000s -- connect    application_name=psql',
      '   +0.100s => statement  [allow read rule=ci-read-only/read] SELECT count(*) FROM orders',
      '   +0.120s <= complete   SELECT rows=1 3ms',
      '   +0.300s => statement  [deny ddl rule=ci-read-only/no-ddl] DROP TABLE orders',
    ]);
    expect(out.trimEnd().split('\n').at(-1)).toBe('end of recording (sealed)');
    const quick = Date.now();
    expect((await sessions('replay', 'batch-2222', '--dir', 'recordings', '--no-wait')).out).toContain('+60.000s => statement  [allow read] SELECT 2');
    expect(Date.now() - quick).toBeLessThan(1_000);
  });

  test('verify: intact files pass with the key; an open one only with --allow-open', async () => {
    const strict = await sessions('verify', '--dir', 'recordings', '--key', 'jwks.json');
    expect(strict.code).toBe(1);
    expect(strict.out).toContain('ok  recordings/2026-11-20/orders-1111.jsonl: intact, sealed, 7 events');
    expect(strict.out).toContain('ok  recordings/2026-11-20/batch-2222.part2.jsonl: intact, sealed, 2 events');
    expect(strict.out).toContain('BAD recordings/2026-11-20/live-3333.jsonl: truncated: no seal');
    const lenient = await sessions('verify', '--dir', 'recordings', '--key', 'jwks.json', '--allow-open');
    expect(lenient.code).toBe(0);
    expect(lenient.out.trimEnd().split('\n').at(-1)).toBe('4 file(s) intact, 0 problem(s)');
    const one = await sessions('verify', 'orders-1111', '--dir', 'recordings', '--key', 'jwks.json');
    expect(one.code).toBe(0);
  });

  test('verify: each problem named with file, line, seq and what; a wrong key is refused', async () => {
    const copy = join(dir, 'tampered');
    await mkdir(join(copy, DAY), { recursive: true });
    const original = await readFile(join(dir, 'recordings', DAY, 'orders-1111.jsonl'), 'utf8');
    await writeFile(join(copy, DAY, 'orders-1111.jsonl'), original.replace('DROP TABLE orders', 'SELECT 1'));
    await writeFile(join(copy, DAY, 'notes.txt'), 'hello');
    const { code, out } = await sessions('verify', '--dir', 'tampered', '--key', 'jwks.json');
    expect(code).toBe(1);
    expect(out).toContain('BAD tampered/2026-11-20/orders-1111.jsonl:5 seq 4: edited: the event was edited');
    expect(out).toContain('BAD tampered/2026-11-20/notes.txt: malformed: not a recording file');
    const wrongKey = await sessions('verify', 'orders-1111', '--dir', 'recordings', '--key', 'other.jwks.json');
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.out).toContain('unknown-key');
  });

  test('clear errors: no key, a key that is not one, a missing folder, an unknown session, an unknown action, garbage files', async () => {
    expect(await sessions('verify', '--dir', 'recordings')).toMatchObject({ code: 1, err: expect.stringContaining('GH_ERR_RECORDING_NO_KEY') });
    expect(await sessions('verify', '--dir', 'recordings', '--key', 'recordings/2026-11-20/live-3333.jsonl')).toMatchObject({ code: 1, err: expect.stringContaining('GH_ERR_RECORDING_KEY') });
    expect(await sessions('list', '--dir', 'nowhere')).toMatchObject({ code: 1, err: expect.stringContaining('GH_ERR_RECORDING_DIR') });
    expect(await sessions('show', 'nobody', '--dir', 'recordings')).toMatchObject({ code: 1, err: expect.stringContaining('GH_ERR_RECORDING_UNKNOWN_SESSION') });
    expect(await sessions('dance', '--dir', 'recordings')).toMatchObject({ code: 2, err: expect.stringContaining('unknown sessions action "dance"') });
    expect(await sessions('list')).toMatchObject({ code: 2, err: expect.stringContaining('--dir DIR') });
    const garbage = join(dir, 'garbage');
    await mkdir(join(garbage, DAY), { recursive: true });
    await writeFile(join(garbage, DAY, 'junk-1.jsonl'), 'this is not json\n');
    const listed = await sessions('list', '--dir', 'garbage');
    expect(listed).toMatchObject({ code: 0, out: 'no recordings under garbage\n' });
    expect(listed.err).toContain('warning: skipped garbage/2026-11-20/junk-1.jsonl: Recording');
  });
});
