// The discovery server's extra handlers: ReportEvents served beside StreamSnapshots in the one
// service implementation over TLS, authenticated by the same NodeAuthenticator; a method nobody
// handed in answers UNIMPLEMENTED.
import { ChannelCredentials, status as GrpcStatus } from '@grpc/grpc-js';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { silentLogger } from '../../api/logging/logger.js';
import { loadDiscoveryProto } from '../../api/proto/discovery-proto.js';
import { ALL_TYPE_URLS } from '../../api/proto/snapshot-resources.js';
import { generateCheckpointSigner } from '../../api/recordings/checkpoint.js';
import { startRecordingService, type RecordingService } from '../recordings/recording-service.js';
import { reportEvents, statementMessages } from '../recordings/testing/recording-server.js';
import { createControlPlaneMetrics } from './control-plane-metrics.js';
import { SnapshotCache } from './snapshot-cache.js';
import { startDiscoveryServer, type DiscoveryServer, type ExtraDiscoveryHandlers } from './stream-server.js';
import { FakeAuthenticator, loadSamples, RawDiscoveryStream, setsFor, TEST_TLS } from './testing/discovery-fixture.js';

const TLS = ChannelCredentials.createSsl(Buffer.from(TEST_TLS.caPem));
let dir: string;
let server: DiscoveryServer | undefined;
let recordings: RecordingService | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-stream-handlers-'));
});

afterEach(async () => {
  await server?.close(100);
  await recordings?.close();
  server = undefined;
  recordings = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function serve(cache: SnapshotCache, authenticator: FakeAuthenticator, extraHandlers?: ExtraDiscoveryHandlers): Promise<DiscoveryServer> {
  server = await startDiscoveryServer({
    proto: loadDiscoveryProto(),
    watcher: cache,
    authenticator,
    metrics: createControlPlaneMetrics({ registry: new Registry(), status: cache }),
    logger: silentLogger(),
    transport: { kind: 'tls', keyPem: TEST_TLS.keyPem, certPem: TEST_TLS.certPem },
    host: '127.0.0.1',
    port: 0,
    debounceMs: 5,
    ...(extraHandlers ? { extraHandlers } : {}),
  });
  return server;
}

describe('startDiscoveryServer extraHandlers', () => {
  it('serves ReportEvents and StreamSnapshots on one TLS server, with the same authenticator', async () => {
    const authenticator = new FakeAuthenticator();
    recordings = await startRecordingService({ dir, signer: await generateCheckpointSigner(), registry: new Registry(), logger: silentLogger(), authenticator });
    const cache = new SnapshotCache();
    cache.setSnapshot('payments/app-0', setsFor((await loadSamples()).ciRunner));
    const running = await serve(cache, authenticator, { ReportEvents: recordings.reportEvents });
    const address = `127.0.0.1:${running.port}`;

    const stored = await reportEvents(loadDiscoveryProto(), address, statementMessages('payments/app-0', 'session-a', 1, 3, { end: true }), TLS);
    expect('ack' in stored && stored.ack.sessions).toEqual([expect.objectContaining({ session_id: 'session-a', stored_through_seq: 3 })]);
    const [day] = await readdir(dir);
    expect(await readdir(join(dir, day!))).toEqual(['session-a.jsonl']);

    // A token that proves nothing is refused here exactly as on the discovery stream.
    const refused = await reportEvents(loadDiscoveryProto(), address, statementMessages('payments/app-0', 'session-b', 1, 1, { token: 'stolen' }), TLS);
    expect('error' in refused && refused.error.code).toBe(GrpcStatus.UNAUTHENTICATED);

    const stream = new RawDiscoveryStream(loadDiscoveryProto(), address, TLS);
    try {
      stream.subscribe('payments/app-0', ALL_TYPE_URLS);
      expect((await stream.next()).version_info).not.toBe('');
    } finally {
      stream.close();
    }
  });

  it('answers UNIMPLEMENTED for a method no handler was given for', async () => {
    const running = await serve(new SnapshotCache(), new FakeAuthenticator());
    const outcome = await reportEvents(loadDiscoveryProto(), `127.0.0.1:${running.port}`, statementMessages('payments/app-0', 'session-a', 1, 1), TLS);
    expect('error' in outcome && outcome.error.code).toBe(GrpcStatus.UNIMPLEMENTED);
    expect(await readdir(dir)).toEqual([]);
  });
});
