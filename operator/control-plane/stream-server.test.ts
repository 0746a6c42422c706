import { ChannelCredentials, status as GrpcStatus } from '@grpc/grpc-js';
import { ALL_TYPE_URLS, TYPE_URLS } from '../../api/proto/snapshot-resources.js';
import { ERROR_CODE_METADATA_KEY } from './node-stream.js';
import {
  eventually,
  FakeAuthenticator,
  loadSamples,
  metricValue,
  RawDiscoveryStream,
  setsFor,
  startFixture,
  TEST_TLS,
  withPolicyRevision,
  type DiscoveryFixture,
  type Samples,
} from './testing/discovery-fixture.js';

let samples: Samples;
let fixture: DiscoveryFixture;
const streams: RawDiscoveryStream[] = [];

beforeAll(async () => {
  samples = await loadSamples();
});
beforeEach(async () => {
  fixture = await startFixture();
});
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await fixture.server.close(100);
});

function open(credentials?: ChannelCredentials): RawDiscoveryStream {
  const stream = new RawDiscoveryStream(fixture.proto, fixture.address, credentials);
  streams.push(stream);
  return stream;
}

/** Subscribes node `n` to all types and returns the three initial responses, ACKed. */
async function subscribed(nodeId = 'n'): Promise<RawDiscoveryStream> {
  fixture.cache.setSnapshot(nodeId, setsFor(samples.ciRunner));
  const stream = open();
  stream.subscribe(nodeId, ALL_TYPE_URLS);
  for (let i = 0; i < ALL_TYPE_URLS.length; i += 1) stream.ack(await stream.next());
  await eventually('initial ACKs recorded', () => ALL_TYPE_URLS.every((typeUrl) => fixture.cache.nodeStatus(nodeId)?.types[typeUrl]?.ackedVersion !== undefined));
  return stream;
}

describe('discovery stream: ACK and NACK', () => {
  test('subscription answers every type with a fresh nonce and the snapshot versions; ACKs are recorded', async () => {
    fixture.cache.setSnapshot('n', setsFor(samples.ciRunner));
    const stream = open();
    stream.subscribe('n', ALL_TYPE_URLS);
    const responses = [await stream.next(), await stream.next(), await stream.next()];
    expect(responses.map((response) => response.type_url)).toEqual([...ALL_TYPE_URLS]);
    expect(new Set(responses.map((response) => response.nonce)).size).toBe(3);
    for (const response of responses) {
      expect(response.type_versions).toEqual(fixture.cache.versions('n'));
      expect(response.snapshot_ttl_ms).toBe(5 * 60_000);
      stream.ack(response);
    }
    await eventually('acked', () => fixture.cache.nodeStatus('n')?.types[TYPE_URLS.credential]?.ackedVersion === fixture.cache.versions('n')![TYPE_URLS.credential]);
    expect(await metricValue(fixture.registry, 'gatehouse_control_plane_acks_total', { type: 'IdentityPolicy' })).toBe(1);
    expect(await metricValue(fixture.registry, 'gatehouse_control_plane_responses_total', { type: 'Credential' })).toBe(1);
    expect(await metricValue(fixture.registry, 'gatehouse_control_plane_connected_sidecars')).toBe(1);
  });

  test('a change pushes only the changed type; its ACK records the version and the push latency', async () => {
    const stream = await subscribed();
    fixture.cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, 1)));
    const push = await stream.next();
    expect(push.type_url).toBe(TYPE_URLS.identityPolicy);
    expect(push.version_info).toBe(fixture.cache.versions('n')![TYPE_URLS.identityPolicy]);
    expect(await stream.unreadAfter(60)).toBe(0);
    stream.ack(push);
    await eventually('ack of the push', () => fixture.cache.nodeStatus('n')?.types[TYPE_URLS.identityPolicy]?.ackedVersion === push.version_info);
    // Only the push is timed; the answers to the subscription measured no push.
    expect(await metricValue(fixture.registry, 'gatehouse_control_plane_push_latency_seconds', { type: 'IdentityPolicy', le: '+Inf' })).toBe(1);
    expect(await metricValue(fixture.registry, 'gatehouse_control_plane_push_latency_seconds', { type: 'Credential', le: '+Inf' })).toBe(0);
    const info = await metricValue(fixture.registry, 'gatehouse_control_plane_node_acked_version_info', { node: 'n', type: 'IdentityPolicy', version: push.version_info });
    expect(info).toBe(1);
  });

  test('a NACK keeps the acked version, records the error, and the refused version is not sent again', async () => {
    const stream = await subscribed();
    const acked = fixture.cache.versions('n')![TYPE_URLS.identityPolicy]!;
    fixture.cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, 1)));
    const push = await stream.next();
    stream.nack(push, acked, 'GH_ERR_POLICY_RULE_INCONSISTENT', 'rule 2 cannot compile');
    await eventually('nack recorded', () => fixture.cache.nodeStatus('n')?.types[TYPE_URLS.identityPolicy]?.lastNack !== undefined);
    const status = fixture.cache.nodeStatus('n')!.types[TYPE_URLS.identityPolicy]!;
    expect(status.ackedVersion).toBe(acked);
    expect(status.lastNack).toMatchObject({ version: push.version_info, code: 'GH_ERR_POLICY_RULE_INCONSISTENT', message: 'rule 2 cannot compile' });
    expect(await metricValue(fixture.registry, 'gatehouse_control_plane_nacks_total', { node: 'n', type: 'IdentityPolicy' })).toBe(1);
    // The same content again is not a change, and the stream does not resend what was refused.
    fixture.cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, 1)));
    expect(await stream.unreadAfter(80)).toBe(0);
    // A fixed policy is a new version and goes out.
    fixture.cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, 2)));
    expect((await stream.next()).version_info).toBe(fixture.cache.versions('n')![TYPE_URLS.identityPolicy]);
  });

  test('rolling back to the acked version after a NACK is pushed, since the node was sent the refused one', async () => {
    const stream = await subscribed();
    const acked = fixture.cache.versions('n')![TYPE_URLS.identityPolicy]!;
    fixture.cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, 1)));
    stream.nack(await stream.next(), acked, 'GH_ERR_X', 'no');
    await eventually('nack recorded', () => fixture.cache.nodeStatus('n')?.types[TYPE_URLS.identityPolicy]?.lastNack !== undefined);
    fixture.cache.setSnapshot('n', setsFor(samples.ciRunner));
    expect((await stream.next()).version_info).toBe(acked);
  });

  test('a request answering a replaced response (stale nonce) is ignored', async () => {
    const stream = await subscribed();
    fixture.cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, 1)));
    const older = await stream.next();
    fixture.cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, 2)));
    const newer = await stream.next();
    stream.ack(older);
    stream.nack(older, '', 'GH_ERR_X', 'stale refusal');
    await eventually('stale counted', () => fixture.cache.nodeStatus('n') !== undefined);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(await metricValue(fixture.registry, 'gatehouse_control_plane_stale_requests_total', { type: 'IdentityPolicy' })).toBe(2);
    const status = fixture.cache.nodeStatus('n')!.types[TYPE_URLS.identityPolicy]!;
    expect(status.ackedVersion).not.toBe(older.version_info);
    expect(status.lastNack).toBeUndefined();
    stream.ack(newer);
    await eventually('newer acked', () => fixture.cache.nodeStatus('n')?.types[TYPE_URLS.identityPolicy]?.ackedVersion === newer.version_info);
  });

  test('a node that subscribes with the current versions gets headers and no response', async () => {
    fixture.cache.setSnapshot('n', setsFor(samples.ciRunner));
    const stream = open();
    stream.subscribe('n', ALL_TYPE_URLS, fixture.cache.versions('n'));
    await stream.headers;
    expect(await stream.unreadAfter(60)).toBe(0);
    // What it says it runs is recorded as acked (an operator restart keeps the status right).
    expect(fixture.cache.nodeStatus('n')!.types[TYPE_URLS.credential]!.ackedVersion).toBe(fixture.cache.versions('n')![TYPE_URLS.credential]);
  });
});

describe('discovery stream: pushes are debounced', () => {
  test('ten rapid changes go out as one response with the last version', async () => {
    const stream = await subscribed();
    for (let revision = 1; revision <= 10; revision += 1) fixture.cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, revision)));
    const push = await stream.next();
    expect(push.version_info).toBe(fixture.cache.versions('n')![TYPE_URLS.identityPolicy]);
    expect(await stream.unreadAfter(80)).toBe(0);
    expect(await metricValue(fixture.registry, 'gatehouse_control_plane_responses_total', { type: 'IdentityPolicy' })).toBe(2);
  });

  test('a change undone within the window sends nothing', async () => {
    const stream = await subscribed();
    fixture.cache.setSnapshot('n', setsFor(withPolicyRevision(samples.ciRunner, 1)));
    fixture.cache.setSnapshot('n', setsFor(samples.ciRunner));
    expect(await stream.unreadAfter(80)).toBe(0);
  });

  test('nodes are pushed independently', async () => {
    const a = await subscribed('a');
    const b = await subscribed('b');
    fixture.cache.setSnapshot('a', setsFor(withPolicyRevision(samples.ciRunner, 1)));
    expect((await a.next()).type_url).toBe(TYPE_URLS.identityPolicy);
    expect(await b.unreadAfter(60)).toBe(0);
  });
});

describe('discovery stream: authentication', () => {
  async function refusal(stream: RawDiscoveryStream): Promise<{ code: number; details: string; errorCode: string }> {
    const status = await stream.status;
    return { code: status.code, details: status.details, errorCode: String(status.metadata.get(ERROR_CODE_METADATA_KEY)[0]) };
  }

  test('a bad token is refused with UNAUTHENTICATED, naming the identity module\'s reason', async () => {
    fixture.cache.setSnapshot('n', setsFor(samples.ciRunner));
    const stream = open();
    stream.subscribe('n', ALL_TYPE_URLS, {}, 'forged');
    const result = await refusal(stream);
    expect(result.code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(result.details).toContain('GH_ERR_CP_UNAUTHENTICATED');
    expect(result.details).toContain('expired');
    expect(result.errorCode).toBe('GH_ERR_TOKEN_EXPIRED');
    expect(stream.responses).toHaveLength(0);
    expect(await metricValue(fixture.registry, 'gatehouse_control_plane_rejected_streams_total', { reason: 'unauthenticated' })).toBe(1);
    expect(await metricValue(fixture.registry, 'gatehouse_control_plane_connected_sidecars')).toBe(0);
  });

  test('a first request without node is refused', async () => {
    const stream = open();
    stream.write({ type_url: TYPE_URLS.identityPolicy });
    const result = await refusal(stream);
    expect(result.code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(result.errorCode).toBe('GH_ERR_CP_NO_NODE');
  });

  test('a token for another node is refused with PERMISSION_DENIED', async () => {
    fixture.cache.setSnapshot('n', setsFor(samples.ciRunner));
    const stream = open();
    stream.subscribe('n', ALL_TYPE_URLS, {}, FakeAuthenticator.tokenFor('someone-else'));
    const result = await refusal(stream);
    expect(result.code).toBe(GrpcStatus.PERMISSION_DENIED);
    expect(result.errorCode).toBe('GH_ERR_CP_NODE_MISMATCH');
    expect(stream.responses).toHaveLength(0);
  });

  test('an identity backend outage is UNAVAILABLE (retryable), not a verdict on the token', async () => {
    fixture.authenticator.outage = new Error('TokenReview timed out');
    const stream = open();
    stream.subscribe('n', ALL_TYPE_URLS);
    const result = await refusal(stream);
    expect(result.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(result.errorCode).toBe('GH_ERR_CP_AUTH_UNAVAILABLE');
  });

  test('the stream ends when the token\'s proof runs out, so the sidecar comes back with a fresh one', async () => {
    fixture.authenticator.validForMs = 150;
    const stream = await subscribed();
    const result = await refusal(stream);
    expect(result.code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(result.errorCode).toBe('GH_ERR_TOKEN_EXPIRED');
  });

  test('only the first request is authenticated', async () => {
    await subscribed();
    expect(fixture.authenticator.calls).toBe(1);
  });
});

describe('discovery server: TLS and shutdown', () => {
  test('serves TLS with the given key and certificate; a client with another CA cannot connect', async () => {
    await fixture.server.close(100);
    fixture = await startFixture({ transport: { kind: 'tls', keyPem: TEST_TLS.keyPem, certPem: TEST_TLS.certPem } });
    fixture.cache.setSnapshot('n', setsFor(samples.ciRunner));
    const trusted = open(ChannelCredentials.createSsl(Buffer.from(TEST_TLS.caPem)));
    trusted.subscribe('n', ALL_TYPE_URLS);
    expect((await trusted.next()).type_url).toBe(TYPE_URLS.identityPolicy);
    const untrusted = open(ChannelCredentials.createSsl(Buffer.from(TEST_TLS.otherCaPem)));
    untrusted.subscribe('n', ALL_TYPE_URLS);
    expect((await untrusted.status).code).toBe(GrpcStatus.UNAVAILABLE);
    expect(untrusted.responses).toHaveLength(0);
  });

  test('a plaintext client cannot talk to the TLS server', async () => {
    await fixture.server.close(100);
    fixture = await startFixture({ transport: { kind: 'tls', keyPem: TEST_TLS.keyPem, certPem: TEST_TLS.certPem } });
    const plain = open();
    plain.subscribe('n', ALL_TYPE_URLS);
    expect((await plain.status).code).toBe(GrpcStatus.UNAVAILABLE);
  });

  test('close ends every stream with UNAVAILABLE so sidecars reconnect elsewhere', async () => {
    const stream = await subscribed();
    await fixture.server.close(1_000);
    const status = await stream.status;
    expect(status.code).toBe(GrpcStatus.UNAVAILABLE);
    expect(status.details).toContain('GH_ERR_CP_SHUTTING_DOWN');
    expect(await metricValue(fixture.registry, 'gatehouse_control_plane_connected_sidecars')).toBe(0);
  });

  test('a sidecar that goes away frees its stream', async () => {
    const stream = await subscribed();
    stream.close();
    await eventually('stream closed', () => fixture.server.connectedStreams() === 0);
    expect(await metricValue(fixture.registry, 'gatehouse_control_plane_connected_sidecars')).toBe(0);
  });
});
