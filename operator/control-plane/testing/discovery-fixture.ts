// Test helpers for the policy discovery service: a real server on 127.0.0.1 (port 0) around a
// SnapshotCache, a fake token authenticator, a raw protocol client that lets a test write each
// request by hand, and sample snapshots. Used by the operator's and the sidecar's tests; never by
// production code.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChannelCredentials, Client, type ClientDuplexStream, type Metadata, type StatusObject } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { silentLogger, type Logger } from '../../../api/logging/logger.js';
import { loadDiscoveryProto, STREAM_SNAPSHOTS_PATH, type DiscoveryProto, type DiscoveryRequestInit, type DiscoveryResponse } from '../../../api/proto/discovery-proto.js';
import { createControlPlaneMetrics, type ControlPlaneMetrics } from '../control-plane-metrics.js';
import { SnapshotCache } from '../snapshot-cache.js';
import { startDiscoveryServer, type DiscoveryServer, type ServerTransport } from '../stream-server.js';
import { FakeAuthenticator } from './fake-authenticator.js';

const TESTDATA = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'testdata');

export const TEST_TLS = {
  caPem: readFileSync(join(TESTDATA, 'ca.crt'), 'utf8'),
  otherCaPem: readFileSync(join(TESTDATA, 'other-ca.crt'), 'utf8'),
  keyPem: readFileSync(join(TESTDATA, 'server.key'), 'utf8'),
  certPem: readFileSync(join(TESTDATA, 'server.crt'), 'utf8'),
} as const;

export interface FixtureOptions {
  readonly transport?: ServerTransport;
  readonly debounceMs?: number;
  readonly snapshotTtlMs?: number;
  readonly port?: number;
  readonly cache?: SnapshotCache;
  readonly clock?: () => number;
  readonly logger?: Logger;
}

export interface DiscoveryFixture {
  readonly proto: DiscoveryProto;
  readonly cache: SnapshotCache;
  readonly registry: Registry;
  readonly metrics: ControlPlaneMetrics;
  readonly authenticator: FakeAuthenticator;
  readonly server: DiscoveryServer;
  readonly address: string;
}

export async function startFixture(options: FixtureOptions = {}): Promise<DiscoveryFixture> {
  const proto = loadDiscoveryProto();
  const clock = options.clock ?? Date.now;
  const cache = options.cache ?? new SnapshotCache({ clock });
  const registry = new Registry();
  const metrics = createControlPlaneMetrics({ registry, status: cache });
  const authenticator = new FakeAuthenticator();
  const server = await startDiscoveryServer({
    proto,
    watcher: cache,
    authenticator,
    metrics,
    logger: options.logger ?? silentLogger(),
    transport: options.transport ?? { kind: 'plaintext-local-mode' },
    host: '127.0.0.1',
    port: options.port ?? 0,
    debounceMs: options.debounceMs ?? 20,
    clock,
    ...(options.snapshotTtlMs !== undefined ? { snapshotTtlMs: options.snapshotTtlMs } : {}),
  });
  return { proto, cache, registry, metrics, authenticator, server, address: `127.0.0.1:${server.port}` };
}

/** The value of a metric series, 0 when absent. */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const { values } = await metric.get();
  const match = values.find((value) => Object.entries(labels).every(([key, expected]) => String(value.labels[key]) === expected));
  return match?.value ?? 0;
}

export { eventually } from '../../../testing/async-checks.js';

/** A hand-driven protocol client: write requests, await responses, see the final status. */
export class RawDiscoveryStream {
  readonly client: Client;
  readonly call: ClientDuplexStream<DiscoveryRequestInit, DiscoveryResponse>;
  readonly responses: DiscoveryResponse[] = [];
  readonly status: Promise<StatusObject>;
  readonly headers: Promise<Metadata>;
  private waiters: (() => void)[] = [];
  private read = 0;

  constructor(proto: DiscoveryProto, address: string, credentials: ChannelCredentials = ChannelCredentials.createInsecure()) {
    this.client = new Client(address, credentials);
    this.call = this.client.makeBidiStreamRequest(STREAM_SNAPSHOTS_PATH, proto.streamSnapshots.requestSerialize, proto.streamSnapshots.responseDeserialize);
    this.status = new Promise((resolve) => this.call.on('status', resolve));
    this.headers = new Promise((resolve) => this.call.on('metadata', resolve));
    this.call.on('error', () => undefined);
    this.call.on('data', (response: DiscoveryResponse) => {
      this.responses.push(response);
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  write(request: DiscoveryRequestInit): void {
    this.call.write(request);
  }

  /** Subscribes to `typeUrls`, the first request carrying the node. */
  subscribe(nodeId: string, typeUrls: readonly string[], versions: Readonly<Record<string, string>> = {}, token = FakeAuthenticator.tokenFor(nodeId)): void {
    typeUrls.forEach((typeUrl, index) => {
      this.write({
        ...(index === 0 ? { node: { id: nodeId, token, sidecar_version: 'test' } } : {}),
        type_url: typeUrl,
        version_info: versions[typeUrl] ?? '',
      });
    });
  }

  /** The next response not yet returned by next(). */
  async next(timeoutMs = 3_000): Promise<DiscoveryResponse> {
    const deadline = Date.now() + timeoutMs;
    while (this.read >= this.responses.length) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no response within the time limit');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.responses[this.read++]!;
  }

  /** Waits `ms` and returns how many responses arrived that next() has not returned yet. */
  async unreadAfter(ms: number): Promise<number> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return this.responses.length - this.read;
  }

  ack(response: DiscoveryResponse): void {
    this.write({ type_url: response.type_url, version_info: response.version_info, response_nonce: response.nonce });
  }

  nack(response: DiscoveryResponse, previousVersion: string, code: string, message: string): void {
    this.write({ type_url: response.type_url, version_info: previousVersion, response_nonce: response.nonce, error_detail: { code, message } });
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }
}

export { FakeAuthenticator };
export { loadSamples, setsFor, withCredential, withPolicyRevision, type Samples } from './sample-snapshots.js';
