// Local mode (`gatehouse dev`): the control plane and a sidecar for one identity in one process,
// connected by the real policy discovery protocol over gRPC on loopback, so what runs here is what
// runs in a cluster. The control plane reads a folder of manifests (Secrets included), validates
// every change and issues credentials; the sidecar applies what it is pushed, ACKs or NACKs, and
// fails closed when its snapshot expires. /metrics carries both sides; /readyz turns ready with
// the first applied snapshot. An embedded demo database is optional.
import { Registry } from 'prom-client';
import { GatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import type { ConfigProblem, GatehouseConfig } from '../../api/manifests/config.js';
import { loadDiscoveryProto, type DiscoveryProto } from '../../api/proto/discovery-proto.js';
import { loadSqlParser } from '../../api/sql/classify.js';
import type { SidecarSnapshot } from '../../api/snapshot/sidecar-snapshot.js';
import { createApprovalMetrics } from '../../operator/approvals/approval-metrics.js';
import { LocalApprovalDesk } from '../../operator/approvals/local-approval-desk.js';
import { localApprovalRoutes } from '../../operator/approvals/local-approval-routes.js';
import { createControlPlaneMetrics } from '../../operator/control-plane/control-plane-metrics.js';
import { SnapshotCache } from '../../operator/control-plane/snapshot-cache.js';
import { LocalControlPlane } from '../../operator/local-control-plane/local-control-plane.js';
import { startLocalDiscoveryServer, type LocalDiscoveryServer } from '../../operator/local-control-plane/local-discovery-server.js';
import { localCredentialIssuers } from '../../operator/local-control-plane/local-issuers.js';
import { createSidecarMetrics } from '../../sidecar/metrics/sidecar-metrics.js';
import { startSidecarRuntime, unlessAborted } from '../../sidecar/sidecar-runtime.js';
import type { DemoDatabase } from './demo-database.js';
import { startLocalRecordings } from './local-recordings.js';

export interface LocalModeOptions {
  readonly configDir: string;
  readonly identity: string;
  readonly namespace?: string;
  readonly adminHost: string;
  readonly adminPort: number;
  /** Where the in-process recording store writes sessions (and the JWKS of each run's checkpoint key). */
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
  /** The JWKS file holding this run's recording key, for `gatehouse sessions verify --key`. */
  readonly recordingKeys: string;
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

/** Resolves with the first snapshot applied; rejects when it was refused or took too long; undefined when the run was aborted. */
async function awaitFirstSnapshot(firstApplied: Promise<SidecarSnapshot>, firstRefused: Promise<never>, signal: AbortSignal): Promise<SidecarSnapshot | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new GatehouseError('GH_ERR_LOCAL_FIRST_SNAPSHOT', { detail: `none arrived within ${FIRST_SNAPSHOT_TIMEOUT_MS} ms` })), FIRST_SNAPSHOT_TIMEOUT_MS);
  });
  try {
    return await unlessAborted(Promise.race([firstApplied, firstRefused, timeout]), signal);
  } finally {
    clearTimeout(timer);
  }
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
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
    // In one process a refused first snapshot is a broken config folder: stop and say so.
    let refuseFirst: ((error: unknown) => void) | undefined;
    const firstRefused = new Promise<never>((_, reject) => {
      refuseFirst = reject;
    });
    firstRefused.catch(() => undefined); // observed by awaitFirstSnapshot; never an unhandled rejection
    // Held statements are decided in this process, through the admin port (`gatehouse requests|approve|deny`).
    const approvals = new LocalApprovalDesk({ logger, metrics: createApprovalMetrics(controlPlane.registry) });
    // Unshifted before the sidecar's stop, so it runs after it: sessions end (and are sealed) before the store closes.
    const recordings = await startLocalRecordings({ dir: options.recordingsDir, node: controlPlane.server.nodeId, registry: controlPlane.registry, logger });
    cleanups.unshift(() => recordings.close());
    const runtime = await startSidecarRuntime({
      proto,
      controlPlane: {
        address: controlPlane.server.address,
        transport: { kind: 'plaintext-local-mode' },
        nodeId: controlPlane.server.nodeId,
        token: () => controlPlane.server.token,
        sidecarVersion: LOCAL_SIDECAR_VERSION,
        backoff: { initialMs: 100, maxMs: 2_000 },
      },
      logger,
      metrics,
      recording: { recorder: recordings.recorder },
      ...(options.hashKey ? { hashKey: options.hashKey } : {}),
      adminHost: options.adminHost,
      adminPort: options.adminPort,
      extraRegistries: [controlPlane.registry],
      approvals,
      adminRoutes: localApprovalRoutes(approvals),
      onApplyFailure: (error, first) => {
        if (first) refuseFirst?.(error);
      },
    });
    cleanups.unshift(() => runtime.stop(options.drainMs));
    const snapshot = await awaitFirstSnapshot(runtime.firstApplied, firstRefused, signal).catch((error: unknown) => {
      throw error instanceof GatehouseError ? error : new GatehouseError('GH_ERR_LOCAL_FIRST_SNAPSHOT', { detail: (error as Error).message }, { cause: error });
    });
    if (!snapshot) return;
    events.onReady({ snapshot, ports: runtime.portsOf(snapshot), adminPort: runtime.adminPort, controlPlanePort: controlPlane.server.port, recordingKeys: recordings.keysFile, ...(demo ? { demo } : {}) });
    await untilAborted(signal);
    logger.info('shutting down: draining sessions');
  } finally {
    await runCleanups(cleanups, logger);
  }
}
