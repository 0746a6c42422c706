// A fleet of simulated sidecars for the control-plane benchmark: real SnapshotClients, each with
// its own gRPC channel (one HTTP/2 connection, as a real sidecar has), whose apply() only takes the
// snapshot. Reports once every client holds its first snapshot, then runs until killed.
import { performance } from 'node:perf_hooks';
import { silentLogger } from '../../api/logging/logger.js';
import { loadDiscoveryProto } from '../../api/proto/discovery-proto.js';
import { FakeAuthenticator, TEST_TLS } from '../../operator/control-plane/testing/discovery-fixture.js';
import { SnapshotClient } from '../../sidecar/control-plane/snapshot-client.js';
import { memoryOfSelf, nodeId, type FleetEvent, type FleetOptions } from './protocol.js';

const options = JSON.parse(process.env.BENCH_CP_FLEET ?? '{}') as FleetOptions;

async function main(): Promise<void> {
  const proto = loadDiscoveryProto();
  const logger = silentLogger();
  const started = performance.now();
  const clients: SnapshotClient[] = [];
  for (let index = options.from; index < options.to; index += 1) {
    const id = nodeId(index);
    const client = new SnapshotClient({
      proto,
      address: `127.0.0.1:${options.port}`,
      transport: options.tls ? { kind: 'tls', caPem: TEST_TLS.caPem, serverName: 'localhost' } : { kind: 'plaintext-local-mode' },
      nodeId: id,
      token: () => FakeAuthenticator.tokenFor(id),
      sidecarVersion: 'bench',
      apply: async () => undefined,
      logger,
    });
    clients.push(client);
    client.start();
  }
  while (clients.some((client) => client.lastGood === undefined)) await new Promise((resolve) => setTimeout(resolve, 10));
  const event: FleetEvent = { type: 'subscribed', count: clients.length, ms: performance.now() - started, rssBytes: (await memoryOfSelf()).rssBytes };
  process.send?.(event);
  process.on('disconnect', () => process.exit(0));
}

void main();
