import { ChannelCredentials, status as GrpcStatus } from '@grpc/grpc-js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCheckpointSigner, parseCheckpointKeys, type CheckpointSigner } from '../../api/recordings/checkpoint.js';
import { verifyRecording } from '../../api/recordings/verify-recording.js';
import { metricValue, TEST_TLS } from '../control-plane/testing/discovery-fixture.js';
import { MAX_EVENTS_PER_CALL } from './report-events-handler.js';
import { reportEvents, startRecordingServer, statementMessages, type RecordingServer, type ReportOutcome } from './testing/recording-server.js';

const NODE = 'payments/app-0';
let dir: string;
let signer: CheckpointSigner;
let server: RecordingServer | undefined;

beforeAll(async () => {
  signer = await generateCheckpointSigner();
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-report-'));
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

function ackOf(outcome: ReportOutcome) {
  if ('error' in outcome) throw new Error(`call failed: ${outcome.error.details}`);
  return outcome.ack.sessions.map((progress) => ({ session: progress.session_id, through: progress.stored_through_seq, code: progress.error?.code }));
}

function errorOf(outcome: ReportOutcome) {
  if (!('error' in outcome)) throw new Error('the call was expected to fail');
  return { code: outcome.error.code, gatehouse: outcome.error.metadata.get('gatehouse-error-code')[0] };
}

describe('ReportEvents over gRPC', () => {
  test('stores a batch, acknowledges each session, seals on end; the file verifies', async () => {
    server = await startRecordingServer({ dir, signer });
    const messages = [...statementMessages(NODE, 's1', 1, 3, { end: true }), ...statementMessages(NODE, 's2', 1, 2).map((message, index) => (index === 0 ? { ...message, node: null } : message))];
    expect(ackOf(await reportEvents(server.proto, server.address, messages))).toEqual([
      { session: 's1', through: 3, code: undefined },
      { session: 's2', through: 2, code: undefined },
    ]);
    const keys = await parseCheckpointKeys(JSON.stringify({ keys: [signer.publicJwk] }));
    const result = await verifyRecording((await readFile(join(dir, '2026-11-20', 's1.jsonl'), 'utf8')).split('\n'), undefined, keys);
    expect(result.status === 'intact' && result.checkpoint).toMatchObject({ node: NODE, events: 3, status: 'sealed' });
    expect(await metricValue(server.registry, 'gatehouse_recording_sessions_open')).toBe(1);
  });

  test('re-sent events are acknowledged without being stored twice', async () => {
    server = await startRecordingServer({ dir, signer });
    ackOf(await reportEvents(server.proto, server.address, statementMessages(NODE, 's1', 1, 3)));
    expect(ackOf(await reportEvents(server.proto, server.address, statementMessages(NODE, 's1', 1, 4)))).toEqual([{ session: 's1', through: 4, code: undefined }]);
    expect(await metricValue(server.registry, 'gatehouse_recording_duplicate_events_total')).toBe(3);
    const lines = (await readFile(join(dir, '2026-11-20', 's1.jsonl'), 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(5);
  });

  test('a session\'s events may span several messages of a call; a message without events is ignored', async () => {
    server = await startRecordingServer({ dir, signer });
    const [first] = statementMessages(NODE, 's1', 1, 2);
    const [rest] = statementMessages(NODE, 's1', 3, 5, { end: true });
    const messages = [first!, { ...rest!, node: null, session: null }, { session_id: 's2', events: Buffer.alloc(0) }];
    expect(ackOf(await reportEvents(server.proto, server.address, messages))).toEqual([{ session: 's1', through: 5, code: undefined }]);
    const lines = (await readFile(join(dir, '2026-11-20', 's1.jsonl'), 'utf8')).trim().split('\n');
    expect(lines.slice(1, -1).map((line) => (JSON.parse(line) as { seq: number }).seq)).toEqual([1, 2, 3, 4, 5]);
  });

  test('a line that is not an event is refused as malformed; the events before it are stored', async () => {
    server = await startRecordingServer({ dir, signer });
    const [message] = statementMessages(NODE, 's1', 1, 2);
    for (const bad of ['{"seq":3,"at":"2026-11-20T09:00:00.030Z"', '[3]', '{"seq":"3","at":"2026-11-20T09:00:00.030Z","type":"statement","payload":{}}']) {
      const events = Buffer.concat([message!.events!, Buffer.from(`${bad}\n`)]);
      expect(ackOf(await reportEvents(server.proto, server.address, [{ ...message!, events }]))).toEqual([{ session: 's1', through: 2, code: 'GH_ERR_RECORDING_BAD_EVENT' }]);
    }
    expect(await metricValue(server.registry, 'gatehouse_recording_refused_events_total', { reason: 'malformed' })).toBe(3);
  });

  test('a call with more events than the bound is refused whole', async () => {
    server = await startRecordingServer({ dir, signer });
    const outcome = await reportEvents(server.proto, server.address, statementMessages(NODE, 's1', 1, MAX_EVENTS_PER_CALL + 1));
    expect(errorOf(outcome)).toEqual({ code: GrpcStatus.RESOURCE_EXHAUSTED, gatehouse: 'GH_ERR_INVALID_ARGUMENT' });
    expect(ackOf(await reportEvents(server.proto, server.address, statementMessages(NODE, 's1', 1, MAX_EVENTS_PER_CALL)))).toEqual([{ session: 's1', through: MAX_EVENTS_PER_CALL, code: undefined }]);
  });

  test('a node cannot write another node\'s session', async () => {
    server = await startRecordingServer({ dir, signer });
    ackOf(await reportEvents(server.proto, server.address, statementMessages(NODE, 's1', 1, 2)));
    const intruder = await reportEvents(server.proto, server.address, statementMessages('payments/intruder', 's1', 3, 3));
    expect(ackOf(intruder)).toEqual([{ session: 's1', through: 0, code: 'GH_ERR_RECORDING_NOT_OWNER' }]);
  });

  test('authenticated like the discovery stream: no node, a bad token, a token for another node, an identity outage', async () => {
    server = await startRecordingServer({ dir, signer });
    const [first, ...rest] = statementMessages(NODE, 's1', 1, 2);
    expect(errorOf(await reportEvents(server.proto, server.address, [{ ...first!, node: null }, ...rest]))).toEqual({ code: GrpcStatus.UNAUTHENTICATED, gatehouse: 'GH_ERR_CP_NO_NODE' });
    expect(errorOf(await reportEvents(server.proto, server.address, statementMessages(NODE, 's1', 1, 2, { token: 'stolen' })))).toEqual({ code: GrpcStatus.UNAUTHENTICATED, gatehouse: 'GH_ERR_TOKEN_EXPIRED' });
    expect(errorOf(await reportEvents(server.proto, server.address, statementMessages(NODE, 's1', 1, 2, { token: 'token-for:payments/other' })))).toEqual({ code: GrpcStatus.PERMISSION_DENIED, gatehouse: 'GH_ERR_CP_NODE_MISMATCH' });
    server.authenticator.outage = new Error('apiserver down');
    expect(errorOf(await reportEvents(server.proto, server.address, statementMessages(NODE, 's1', 1, 2)))).toEqual({ code: GrpcStatus.UNAVAILABLE, gatehouse: 'GH_ERR_CP_AUTH_UNAVAILABLE' });
    expect(await metricValue(server.registry, 'gatehouse_recording_events_total', { type: 'statement' })).toBe(0);
  });

  test('works over TLS, and a client that cannot verify the server sends nothing', async () => {
    server = await startRecordingServer({ dir, signer, transport: { kind: 'tls', keyPem: TEST_TLS.keyPem, certPem: TEST_TLS.certPem } });
    const trusted = ChannelCredentials.createSsl(Buffer.from(TEST_TLS.caPem));
    expect(ackOf(await reportEvents(server.proto, server.address, statementMessages(NODE, 's1', 1, 2), trusted))).toEqual([{ session: 's1', through: 2, code: undefined }]);
    const untrusted = ChannelCredentials.createSsl(Buffer.from(TEST_TLS.otherCaPem));
    expect(errorOf(await reportEvents(server.proto, server.address, statementMessages(NODE, 's2', 1, 2), untrusted)).code).toBe(GrpcStatus.UNAVAILABLE);
  });
});
