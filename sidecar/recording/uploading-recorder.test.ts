import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createLogger, silentLogger, type Logger } from '../../api/logging/logger.js';
import { loadDiscoveryProto } from '../../api/proto/discovery-proto.js';
import { generateCheckpointSigner, parseCheckpointKeys, type CheckpointKeys, type CheckpointSigner } from '../../api/recordings/checkpoint.js';
import type { EventLine } from '../../api/recordings/recording-format.js';
import { verifyRecording } from '../../api/recordings/verify-recording.js';
import { eventually, metricValue } from '../../operator/control-plane/testing/discovery-fixture.js';
import { FakeAuthenticator } from '../../operator/control-plane/testing/fake-authenticator.js';
import { reportEvents, startRecordingServer, statementMessages, type RecordingServer } from '../../operator/recordings/testing/recording-server.js';
import { eventTimestamp, type SessionInfo } from './session-recorder.js';
import { UploadingRecorder, type UploadingRecorderOptions } from './uploading-recorder.js';

const NODE = 'payments/app-0';
const INFO: SessionInfo = { session: 'sess-1', identity: 'ci-runner', resource: 'orders-db', protocol: 'postgres' };
const proto = loadDiscoveryProto();

let root: string;
let signer: CheckpointSigner;
let keys: CheckpointKeys;
const servers: RecordingServer[] = [];
const recorders: UploadingRecorder[] = [];

beforeAll(async () => {
  signer = await generateCheckpointSigner();
  keys = await parseCheckpointKeys(JSON.stringify({ keys: [signer.publicJwk] }));
});

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'gatehouse-upload-'));
});

afterEach(async () => {
  for (const recorder of recorders.splice(0)) await recorder.close();
  for (const server of servers.splice(0)) await server.close();
  await rm(root, { recursive: true, force: true });
});

async function operator(port = 0): Promise<RecordingServer> {
  const server = await startRecordingServer({ dir: join(root, 'recordings'), signer, port });
  servers.push(server);
  return server;
}

/** A port nothing listens on any more: an operator that is down. */
async function downOperatorPort(): Promise<number> {
  const server = await operator();
  servers.splice(servers.indexOf(server), 1);
  await server.close();
  return server.port;
}

async function recorder(port: number, options: Partial<UploadingRecorderOptions> = {}): Promise<UploadingRecorder> {
  const started = await UploadingRecorder.start({
    proto, address: `127.0.0.1:${port}`, transport: { kind: 'plaintext-local-mode' }, nodeId: NODE, token: () => FakeAuthenticator.tokenFor(NODE),
    spoolDir: join(root, 'spool'), flushIntervalMs: 10, uploadIntervalMs: 10, backoff: { initialMs: 20, maxMs: 100 }, callTimeoutMs: 2_000,
    logger: silentLogger(), registry: new Registry(), ...options,
  });
  recorders.push(started);
  return started;
}

async function storedEvents(session = INFO.session, file = `${session}.jsonl`): Promise<EventLine[]> {
  const day = new Date().toISOString().slice(0, 10);
  const text = await readFile(join(root, 'recordings', day, file), 'utf8');
  const result = await verifyRecording(text.split('\n'), undefined, keys);
  if (result.status !== 'intact') throw new Error(`recording not intact: ${JSON.stringify(result)}`);
  return text.trim().split('\n').slice(1, -1).map((line) => JSON.parse(line) as EventLine);
}

/** The spool folder's files once they are `expected` or 500 ms passed (files change just after the backlog empties). */
async function spoolFilesSoon(expected: readonly string[]): Promise<string[]> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const files = await readdir(join(root, 'spool'));
    if (files.join() === expected.join()) return files;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return readdir(join(root, 'spool'));
}

function statements(count: number): { type: 'statement'; at: string; text: string; operation: string; decision: string }[] {
  return Array.from({ length: count }, (_, index) => ({ type: 'statement', at: eventTimestamp(), text: `SELECT ${index + 1}`, operation: 'read', decision: 'allow' }));
}

describe('UploadingRecorder', () => {
  test('operator down: events wait in the spool, recording is unhealthy; operator up: uploaded in order, sealed, spool emptied', async () => {
    const port = await downOperatorPort();
    const uploader = await recorder(port);
    const changes: boolean[] = [];
    uploader.onHealthChange((healthy) => changes.push(healthy));
    const recording = uploader.open(INFO);
    recording.write({ type: 'connect', at: eventTimestamp(), client: { application_name: 'psql' } });
    for (const event of statements(5)) recording.write(event);
    await recording.end();
    await eventually('an upload to fail', () => !uploader.recordingHealthy());
    expect(changes).toEqual([false]);
    expect(uploader.unhealthySince()).toBeLessThanOrEqual(Date.now());
    expect(uploader.backlog()).toBe(7);
    expect((await readFile(join(root, 'spool', 'sess-1.spool'), 'utf8')).trim().split('\n')).toHaveLength(8);
    await operator(port);
    await eventually('the backlog to be uploaded', () => uploader.backlog() === 0, 10_000);
    expect(uploader.recordingHealthy()).toBe(true);
    expect(changes).toEqual([false, true]);
    expect(uploader.unhealthySince()).toBeUndefined();
    const events = await storedEvents();
    expect(events.map((event) => [event.seq, event.type, event.payload.text])).toEqual([
      [1, 'connect', undefined], [2, 'statement', 'SELECT 1'], [3, 'statement', 'SELECT 2'], [4, 'statement', 'SELECT 3'],
      [5, 'statement', 'SELECT 4'], [6, 'statement', 'SELECT 5'], [7, 'end', undefined],
    ]);
    expect(events[0]!.payload).toEqual({ client: { application_name: 'psql' } });
    expect(await spoolFilesSoon([])).toEqual([]);
  });

  test('a sidecar restart with a spool: the new process uploads it and ends the cut-off session', async () => {
    const port = await downOperatorPort();
    const first = await recorder(port);
    const recording = first.open(INFO);
    for (const event of statements(3)) recording.write(event);
    await first.close();
    recorders.splice(0);
    await operator(port);
    const second = await recorder(port);
    await eventually('the recovered spool to be uploaded', () => second.backlog() === 0, 10_000);
    const events = await storedEvents();
    expect(events.map((event) => event.type)).toEqual(['statement', 'statement', 'statement', 'end']);
    expect(events[3]!.payload).toEqual({ reason: 'sidecar restarted' });
  });

  test('events re-sent after a lost acknowledgement are stored once', async () => {
    const server = await operator();
    const first = await recorder(server.port);
    const recording = first.open(INFO);
    for (const event of statements(3)) recording.write(event);
    await eventually('the events to be acknowledged', () => first.backlog() === 0, 10_000);
    // A crash after the operator stored the events but before the spool was compacted: the copy still holds them.
    await cp(join(root, 'spool'), join(root, 'spool-copy'), { recursive: true });
    await first.close();
    recorders.splice(0);
    const second = await recorder(server.port, { spoolDir: join(root, 'spool-copy'), registry: new Registry() });
    await eventually('the re-sent spool to be acknowledged', () => second.backlog() === 0, 10_000);
    expect(await metricValue(server.registry, 'gatehouse_recording_duplicate_events_total')).toBe(3);
    const events = await storedEvents();
    expect(events.map((event) => `${event.seq}:${event.type}`)).toEqual(['1:statement', '2:statement', '3:statement', '4:end']);
  });

  test('a full spool drops new events loudly, and the operator later gets a gap event in their place', async () => {
    const port = await downOperatorPort();
    const lines: string[] = [];
    const logger: Logger = createLogger({ destination: { write: (line: string) => void lines.push(line) } });
    const registry = new Registry();
    const uploader = await recorder(port, { maxSpoolBytes: 700, logger, registry });
    const recording = uploader.open(INFO);
    for (const event of statements(10)) recording.write(event);
    const dropped = await metricValue(registry, 'gatehouse_recording_dropped_events_total');
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBeLessThan(10);
    expect(uploader.recordingHealthy()).toBe(false);
    expect(lines.filter((line) => line.includes('RECORDING SPOOL FULL'))).toHaveLength(1);
    const spooled = await metricValue(registry, 'gatehouse_recording_spool_bytes');
    expect(spooled).toBeGreaterThan(0);
    expect(spooled).toBeLessThanOrEqual(700);
    expect(await metricValue(registry, 'gatehouse_recording_upload_backlog_events')).toBe(10 - dropped);
    expect(await metricValue(registry, 'gatehouse_recording_healthy')).toBe(0);
    await operator(port);
    await eventually('the spool to drain', () => uploader.backlog() === 0, 10_000);
    recording.write(statements(1)[0]!);
    await recording.end();
    await eventually('the rest to be uploaded', () => uploader.backlog() === 0, 10_000);
    const events = await storedEvents();
    const gap = events.find((event) => event.type === 'gap');
    expect(gap?.payload).toEqual({ lost: dropped });
    expect(events.filter((event) => event.type === 'statement')).toHaveLength(10 - dropped + 1);
    expect(uploader.recordingHealthy()).toBe(true);
    expect(await metricValue(registry, 'gatehouse_recording_upload_backlog_events')).toBe(0);
    expect(await metricValue(registry, 'gatehouse_recording_uploaded_events_total')).toBe(10 - dropped + 3);
  });

  test('events travel in batches: one message per session per call, not one per event', async () => {
    const server = await operator();
    const uploader = await recorder(server.port);
    const a = uploader.open(INFO);
    const b = uploader.open({ ...INFO, session: 'sess-2' });
    // Written in one turn of the event loop, as a busy proxy does: they are spooled and uploaded together.
    for (const event of statements(100)) {
      a.write(event);
      b.write({ ...event, text: `${event.text} -- b` });
    }
    await eventually('the events to be acknowledged', () => uploader.backlog() === 0, 10_000);
    expect(server.received).toEqual({ calls: 1, messages: 2, events: 200 });
    await a.end();
    await b.end();
    await eventually('the ends to be acknowledged', () => uploader.backlog() === 0, 10_000);
    expect((await storedEvents()).map((event) => event.seq)).toEqual(Array.from({ length: 101 }, (_, index) => index + 1));
    const other = await storedEvents('sess-2');
    expect(other.slice(0, 2).map((event) => event.payload.text)).toEqual(['SELECT 1 -- b', 'SELECT 2 -- b']);
    expect(other.at(-1)?.type).toBe('end');
    expect(await spoolFilesSoon([])).toEqual([]);
  });

  test('a backlog larger than a call is cut at event lines by count and bytes, and uploaded in order', async () => {
    const port = await downOperatorPort();
    const uploader = await recorder(port, { batchEvents: 4, batchBytes: 400 });
    const recording = uploader.open(INFO);
    for (const event of statements(9)) recording.write(event);
    recording.write({ type: 'statement', at: eventTimestamp(), text: `SELECT '${'x'.repeat(1_000)}'`, operation: 'read', decision: 'allow' });
    await recording.end();
    await eventually('an upload to fail', () => !uploader.recordingHealthy());
    const server = await operator(port);
    await eventually('the backlog to be uploaded', () => uploader.backlog() === 0, 10_000);
    // 400 bytes hold 2-3 statement lines; the 1 kB statement goes alone: it is never held back for being big.
    expect(server.received.calls).toBeGreaterThanOrEqual(5);
    expect(server.received.events).toBe(11);
    const events = await storedEvents();
    expect(events.map((event) => `${event.seq}:${event.type}`)).toEqual([...Array.from({ length: 10 }, (_, index) => `${index + 1}:statement`), '11:end']);
    expect(String(events[9]!.payload.text)).toHaveLength(1_009);
  });

  test('a session the operator refuses for good (another node\'s) is set aside, not retried forever', async () => {
    const server = await operator();
    await reportEvents(proto, server.address, statementMessages('payments/other-pod', INFO.session, 1, 1));
    const registry = new Registry();
    const uploader = await recorder(server.port, { registry });
    const recording = uploader.open(INFO);
    for (const event of statements(2)) recording.write(event);
    await eventually('the refusal', () => uploader.backlog() === 0, 10_000);
    expect(await metricValue(registry, 'gatehouse_recording_upload_failures_total', { reason: 'refused' })).toBe(1);
    expect(await spoolFilesSoon(['sess-1.spool.refused'])).toEqual(['sess-1.spool.refused']);
  });

  test('an operator outage mid-session: part 1 sealed interrupted, the rest continues in a linked part 2', async () => {
    const first = await operator();
    const uploader = await recorder(first.port);
    const recording = uploader.open(INFO);
    for (const event of statements(2)) recording.write(event);
    await eventually('the first events to be acknowledged', () => uploader.backlog() === 0, 10_000);
    servers.splice(servers.indexOf(first), 1);
    await first.close();
    for (const event of statements(2)) recording.write(event);
    await recording.end();
    await eventually('uploads to fail', () => !uploader.recordingHealthy(), 10_000);
    await operator(first.port);
    await eventually('the rest to be uploaded', () => uploader.backlog() === 0, 10_000);
    const part1 = await storedEvents();
    const part2 = await storedEvents(INFO.session, `${INFO.session}.part2.jsonl`);
    expect(part1.map((event) => event.seq)).toEqual([1, 2]);
    expect(part2.map((event) => `${event.seq}:${event.type}`)).toEqual(['3:statement', '4:statement', '5:end']);
    expect(part2[0]!.prev).not.toBe(part1[1]!.hash);
    const day = new Date().toISOString().slice(0, 10);
    const header = JSON.parse((await readFile(join(root, 'recordings', day, `${INFO.session}.part2.jsonl`), 'utf8')).split('\n')[0]!) as { previousPartHash: string; firstSeq: number };
    expect(header).toMatchObject({ previousPartHash: part1[1]!.hash, firstSeq: 3 });
  });
});
