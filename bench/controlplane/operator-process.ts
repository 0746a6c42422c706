// The operator side of the control-plane benchmark, in a process of its own so its RSS is its own:
// a SnapshotCache with one snapshot per simulated sidecar and the discovery server in front of it.
// On "change" it sets a new snapshot for every node (one policy edit that touches them all) and
// times each node's ACK of the new IdentityPolicy version. Everything it needs (the base snapshot,
// TLS material, the .proto path) comes from the environment, so run.ts can run it compiled, from
// a temp folder, as a deployed operator runs, rather than through a TypeScript loader.
import { performance } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { silentLogger } from '../../api/logging/logger.js';
import { loadDiscoveryProto } from '../../api/proto/discovery-proto.js';
import { credentialResource, TYPE_URLS, type ResourceSets, type TypedResource } from '../../api/proto/snapshot-resources.js';
import type { SidecarSnapshot } from '../../api/snapshot/sidecar-snapshot.js';
import { createControlPlaneMetrics } from '../../operator/control-plane/control-plane-metrics.js';
import { SnapshotCache, type ConfigWatcher, type DeliveryEvent } from '../../operator/control-plane/snapshot-cache.js';
import { startDiscoveryServer } from '../../operator/control-plane/stream-server.js';
import { FakeAuthenticator } from '../../operator/control-plane/testing/fake-authenticator.js';
import { setsFor, withPolicyRevision } from '../../operator/control-plane/testing/sample-snapshots.js';
import { memoryOfSelf, nodeId, type OperatorCommand, type OperatorEvent } from './protocol.js';

const count = Number(process.env.BENCH_CP_SIDECARS ?? 1000);
const debounceMs = Number(process.env.BENCH_CP_DEBOUNCE_MS ?? 50);
const protoPath = process.env.BENCH_CP_PROTO;
const tls = process.env.BENCH_CP_TLS ? (JSON.parse(process.env.BENCH_CP_TLS) as { keyPem: string; certPem: string }) : undefined;
const base = JSON.parse(process.env.BENCH_CP_BASE_SNAPSHOT ?? 'null') as SidecarSnapshot;

function send(event: OperatorEvent): void {
  process.send?.(event);
}

/**
 * Each sidecar gets its own credential, so every node's snapshot (and version) is its own; the
 * identity and resource parts are built once and shared, as an operator builds them once per
 * identity and only credentials per pod.
 */
function snapshotsFor(base: SidecarSnapshot, revision: number): ResourceSets[] {
  const shared = setsFor(revision === 0 ? base : withPolicyRevision(base, revision));
  const credentialOf = (entry: SidecarSnapshot['resources'][number], index: number): TypedResource[] =>
    entry.credential ? [credentialResource(entry.resource.metadata.name, { username: entry.credential.username, password: `password-${index}` })] : [];
  return Array.from({ length: count }, (_, index) => ({
    ...shared,
    [TYPE_URLS.credential]: base.resources.flatMap((entry) => credentialOf(entry, index)),
  }));
}

interface Round {
  readonly revision: number;
  readonly setAt: Float64Array;
  readonly ackedAt: Float64Array;
  readonly expectedVersion: Map<string, string>;
  acked: number;
}

async function main(): Promise<void> {
  const cache = new SnapshotCache();
  const indexOf = new Map(Array.from({ length: count }, (_, index) => [nodeId(index), index]));
  let round: Round | undefined;
  let initialAcked = 0;
  const initialSeen = new Set<string>();
  const onDelivery = (event: DeliveryEvent): void => {
    if (event.kind !== 'ack' || event.typeUrl !== TYPE_URLS.identityPolicy) return;
    const index = indexOf.get(event.nodeId);
    if (index === undefined) return;
    if (!round) {
      if (!initialSeen.has(event.nodeId)) initialAcked = initialSeen.add(event.nodeId).size;
      return;
    }
    if (round.ackedAt[index] === 0 && round.expectedVersion.get(event.nodeId) === event.version) {
      round.ackedAt[index] = performance.now();
      round.acked += 1;
    }
  };
  // The server sees the cache through the one small interface; the benchmark listens in on it.
  const watcher: ConfigWatcher = {
    createWatch: (request, respond) => cache.createWatch(request, respond),
    recordDelivery: (event) => {
      cache.recordDelivery(event);
      onDelivery(event);
    },
  };
  snapshotsFor(base, 0).forEach((sets, index) => cache.setSnapshot(nodeId(index), sets));
  const server = await startDiscoveryServer({
    proto: loadDiscoveryProto(protoPath),
    watcher,
    authenticator: new FakeAuthenticator(),
    metrics: createControlPlaneMetrics({ registry: new Registry(), status: cache }),
    logger: silentLogger(),
    transport: tls ? { kind: 'tls', ...tls } : { kind: 'plaintext-local-mode' },
    host: '127.0.0.1',
    port: 0,
    debounceMs,
  });
  // RSS before any sidecar connects: what the process costs with snapshots but no streams.
  const idleRssBytes = (await memoryOfSelf()).rssBytes;
  send({ type: 'listening', port: server.port });
  const started = performance.now();

  const waitFor = async (done: () => boolean, timeoutMs: number): Promise<void> => {
    const deadline = performance.now() + timeoutMs;
    while (!done() && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
  };

  process.on('message', (command: OperatorCommand) => {
    void (async () => {
      if (command.type === 'stop') {
        await server.close(1_000);
        process.exit(0);
      }
      if (command.type === 'memory') {
        send({ type: 'memory', memory: await memoryOfSelf() });
        return;
      }
      if (command.type === 'wait-initial') {
        await waitFor(() => initialAcked >= count, 120_000);
        send({ type: 'initial-acked', acked: initialAcked, ms: performance.now() - started, memory: await memoryOfSelf(), idleRssBytes });
        return;
      }
      // Snapshots are built before the clock starts: the benchmark measures distribution, not compilation.
      const next = snapshotsFor(base, command.revision);
      const current: Round = { revision: command.revision, setAt: new Float64Array(count), ackedAt: new Float64Array(count), expectedVersion: new Map(), acked: 0 };
      round = current;
      const t0 = performance.now();
      next.forEach((sets, index) => {
        current.setAt[index] = performance.now();
        cache.setSnapshot(nodeId(index), sets);
        current.expectedVersion.set(nodeId(index), cache.versions(nodeId(index))![TYPE_URLS.identityPolicy]!);
      });
      const setAllMs = performance.now() - t0;
      await waitFor(() => current.acked >= count, 30_000);
      const latenciesMs = Array.from(current.ackedAt, (at, index) => (at === 0 ? Number.POSITIVE_INFINITY : at - current.setAt[index]!));
      send({
        type: 'round',
        result: {
          revision: command.revision,
          acked: current.acked,
          expected: count,
          latenciesMs,
          setAllMs,
          allAckedMs: Math.max(...current.ackedAt) - t0,
          memory: await memoryOfSelf(),
        },
      });
    })();
  });
}

void main();
