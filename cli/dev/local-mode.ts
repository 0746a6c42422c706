// Local mode (`gatehouse dev`): the control plane and a sidecar for one identity in one process,
// connected by the real policy discovery protocol over gRPC on loopback, so what runs here is what
// runs in a cluster. The control plane reads a folder of manifests (Secrets included), validates
// every change and issues credentials; the sidecar applies what it is pushed, ACKs or NACKs, and
// fails closed when its snapshot expires. /metrics carries both sides; /readyz turns ready with
// the first applied snapshot. An embedded demo database is optional.
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { GatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import type { ConfigProblem, GatehouseConfig } from '../../api/manifests/config.js';
import { loadDiscoveryProto, type DiscoveryProto } from '../../api/proto/discovery-proto.js';
import { SqlClassifier, loadSqlParser } from '../../api/sql/classify.js';
import type { SidecarSnapshot } from '../../api/snapshot/sidecar-snapshot.js';
import { createControlPlaneMetrics } from '../../operator/control-plane/control-plane-metrics.js';
import { SnapshotCache } from '../../operator/control-plane/snapshot-cache.js';
import { LocalControlPlane } from '../../operator/local-control-plane/local-control-plane.js';
import { startLocalDiscoveryServer, type LocalDiscoveryServer } from '../../operator/local-control-plane/local-discovery-server.js';
import { localCredentialIssuers } from '../../operator/local-control-plane/local-issuers.js';
import { startAdminServer } from '../../sidecar/admin/admin-server.js';
import { SnapshotClient } from '../../sidecar/control-plane/snapshot-client.js';
import { createSidecarMetrics, type SidecarMetrics } from '../../sidecar/metrics/sidecar-metrics.js';
import { FileSessionRecorder } from '../../sidecar/recording/session-recorder.js';
import { Sidecar } from '../../sidecar/sidecar.js';
import type { DemoDatabase } from './demo-database.js';

export interface LocalModeOptions {
  readonly configDir: string;
  readonly identity: string;
  readonly namespace?: string;
  readonly adminHost: string;
  readonly adminPort: number;
  readonly recordingsDir: string;
  /** Masking hash key; a random one per run when absent (hashes then differ between runs). */
  readonly hashKey?: Uint8Array;
  readonly demo: boolean;
  readonly logger: Logger;
  /** Grace period for sessions on shutdown. */
  readonly drainMs: number;
  /** How long the sidecar may enforce its last snapshot without the control plane; the server's default when absent. */
  readonly snapshotTtlMs?: number;
  /** Quiet time after a file change before reloading; the watcher's default when absent. */
  readonly watchDebounceMs?: number;
}

export interface LocalModeReady {
  readonly snapshot: SidecarSnapshot;
  readonly ports: ReadonlyMap<string, number>;
  readonly adminPort: number;
  /** The loopback port of the discovery service (for debugging with a gRPC client; it takes only this process's sidecar). */
  readonly controlPlanePort: number;
  readonly demo?: DemoDatabase;
}

export interface LocalModeEvents {
  onReady(ready: LocalModeReady): void;
  onProblems(problems: readonly ConfigProblem[]): void;
  /** A resource got no credential (it is served, but its sessions are refused). */
  onCredentialFailure?(resource: string, error: Error): void;
}

export const LOCAL_SIDECAR_VERSION = 'gatehouse-dev';
/** Pushes in one process need no batching window beyond what an editor's save takes. */
const LOCAL_DEBOUNCE_MS = 10;
const FIRST_SNAPSHOT_TIMEOUT_MS = 30_000;

type Cleanup = () => Promise<void> | void;

/** Points every PostgreSQL resource at the demo database (plain TCP on loopback). */
function useDemoDatabase(config: GatehouseConfig, demo: DemoDatabase): void {
  for (const resource of config.resources) {
    if (resource.spec.protocol !== 'postgres') continue;
    resource.spec.address = `${demo.host}:${demo.port}`;
    resource.spec.tls = { mode: 'disable' };
  }
}

interface ControlPlaneParts {
  readonly registry: Registry;
  readonly server: LocalDiscoveryServer;
}

async function startControlPlane(
  options: LocalModeOptions,
  proto: DiscoveryProto,
  demo: DemoDatabase | undefined,
  events: LocalModeEvents,
  cleanups: Cleanup[],
): Promise<ControlPlaneParts> {
  const { logger } = options;
  const nodeId = `local/${options.identity}`;
  const cache = new SnapshotCache();
  const registry = new Registry();
  const metrics = createControlPlaneMetrics({ registry, status: cache });
  const controlPlane = new LocalControlPlane(
    {
      configDir: options.configDir,
      identity: options.identity,
      ...(options.namespace ? { namespace: options.namespace } : {}),
      nodeId,
      cache,
      issuers: (secrets) => localCredentialIssuers({ secrets, logger, demoDatabase: demo !== undefined }),
      ...(demo ? { adjustConfig: (config: GatehouseConfig) => useDemoDatabase(config, demo) } : {}),
      logger,
      registry,
      ...(options.watchDebounceMs !== undefined ? { watchDebounceMs: options.watchDebounceMs } : {}),
    },
    {
      onProblems: (problems) => events.onProblems(problems),
      onCredentialFailure: (resource, error) => events.onCredentialFailure?.(resource, error),
    },
  );
  await controlPlane.start();
  // Credentials are revoked last, once no session can use them any more (dynamic roles are dropped).
  cleanups.unshift(() => controlPlane.close());
  const server = await startLocalDiscoveryServer({
    proto,
    watcher: cache,
    metrics,
    logger,
    nodeId,
    debounceMs: LOCAL_DEBOUNCE_MS,
    ...(options.snapshotTtlMs !== undefined ? { snapshotTtlMs: options.snapshotTtlMs } : {}),
  });
  cleanups.unshift(() => server.close(1_000));
  return { registry, server };
}

interface SidecarParts {
  readonly sidecar: Sidecar;
  readonly client: SnapshotClient;
  /** The first snapshot the sidecar applied, or why it could not. */
  readonly firstApplied: Promise<SidecarSnapshot>;
}

/** The sidecar and its discovery client; nothing runs until client.start(). */
function createSidecar(options: LocalModeOptions, proto: DiscoveryProto, server: LocalDiscoveryServer, metrics: SidecarMetrics): SidecarParts {
  const { logger } = options;
  let settleFirst: { resolve: (snapshot: SidecarSnapshot) => void; reject: (error: unknown) => void } | undefined;
  const firstApplied = new Promise<SidecarSnapshot>((resolve, reject) => {
    settleFirst = { resolve, reject };
  });
  const client: SnapshotClient = new SnapshotClient({
    proto,
    address: server.address,
    transport: { kind: 'plaintext-local-mode' },
    nodeId: server.nodeId,
    token: () => server.token,
    sidecarVersion: LOCAL_SIDECAR_VERSION,
    apply: async (snapshot) => {
      try {
        await sidecar.apply(snapshot);
      } catch (error) {
        settleFirst?.reject(error);
        throw error; // the client NACKs it and keeps the last good snapshot
      }
      settleFirst?.resolve(snapshot);
    },
    logger,
    backoff: { initialMs: 100, maxMs: 2_000 },
  });
  const sidecar = new Sidecar({
    logger,
    metrics,
    classifier: new SqlClassifier(),
    recorder: new FileSessionRecorder(options.recordingsDir, (error) => logger.error({ err: (error as Error).message }, 'session recording could not be written')),
    hashKey: options.hashKey ?? randomBytes(32),
    lease: client,
  });
  return { sidecar, client, firstApplied };
}

/** Resolves with the first snapshot applied; rejects when it was refused, took too long, or the run was aborted. */
async function awaitFirstSnapshot(firstApplied: Promise<SidecarSnapshot>, signal: AbortSignal): Promise<SidecarSnapshot | undefined> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new GatehouseError('GH_ERR_LOCAL_FIRST_SNAPSHOT', { detail: `none arrived within ${FIRST_SNAPSHOT_TIMEOUT_MS} ms` })), FIRST_SNAPSHOT_TIMEOUT_MS);
  });
  const aborted = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    if (signal.aborted) resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([firstApplied, timeout, aborted]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

function portsOf(snapshot: SidecarSnapshot, sidecar: Sidecar): Map<string, number> {
  return new Map(snapshot.resources.flatMap((entry) => {
    const port = sidecar.portOf(entry.resource.metadata.name);
    return port === undefined ? [] : [[entry.resource.metadata.name, port] as const];
  }));
}

async function runCleanups(cleanups: readonly Cleanup[], logger: Logger): Promise<void> {
  for (const cleanup of cleanups) {
    try {
      await cleanup();
    } catch (error) {
      logger.error({ err: (error as Error).message }, 'shutdown step failed');
    }
  }
}

/** Runs until `signal` aborts, then drains and resolves. Throws when the folder is refused at startup. */
export async function runLocalMode(options: LocalModeOptions, events: LocalModeEvents, signal: AbortSignal): Promise<void> {
  const { logger } = options;
  await loadSqlParser();
  const proto = loadDiscoveryProto();
  // Run in this order on shutdown: stop taking snapshots, drain sessions, then the servers, then
  // revoke credentials, then the demo database. Each start adds its step in front.
  const cleanups: Cleanup[] = [];
  try {
    // PGlite is loaded only for the demo: it is large, and a sidecar in front of a real database never needs it.
    const demo = options.demo ? await (await import('./demo-database.js')).startDemoDatabase() : undefined;
    if (demo) cleanups.unshift(() => demo.stop());
    const controlPlane = await startControlPlane(options, proto, demo, events, cleanups);
    const metrics = createSidecarMetrics();
    const { sidecar, client, firstApplied } = createSidecar(options, proto, controlPlane.server, metrics);
    const admin = await startAdminServer({
      host: options.adminHost,
      port: options.adminPort,
      registry: Registry.merge([metrics.registry, controlPlane.registry]),
      notReadyReason: () => sidecar.notReadyReason(),
    });
    cleanups.unshift(() => admin.close());
    cleanups.unshift(() => sidecar.stop(options.drainMs));
    cleanups.unshift(() => client.stop());
    client.start();
    const snapshot = await awaitFirstSnapshot(firstApplied, signal).catch((error: unknown) => {
      throw error instanceof GatehouseError ? error : new GatehouseError('GH_ERR_LOCAL_FIRST_SNAPSHOT', { detail: (error as Error).message }, { cause: error });
    });
    if (!snapshot) return;
    events.onReady({ snapshot, ports: portsOf(snapshot, sidecar), adminPort: admin.port, controlPlanePort: controlPlane.server.port, ...(demo ? { demo } : {}) });
    await untilAborted(signal);
    logger.info('shutting down: draining sessions');
  } finally {
    await runCleanups(cleanups, logger);
  }
}
