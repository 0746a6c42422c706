// The sidecar as a running process, wired once for both ways it runs: in a pod (`gatehouse sidecar`,
// TLS to the operator) and in local mode (`gatehouse dev`, plaintext to an in-process control
// plane). It puts together the discovery client, the Sidecar it feeds, and the admin server
// (/metrics, /healthz, /readyz turning ready with the first applied snapshot), and stops them in
// the order that drains sessions before anything they rely on goes away.
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import type { Logger } from '../api/logging/logger.js';
import type { DiscoveryProto } from '../api/proto/discovery-proto.js';
import { SqlClassifier } from '../api/sql/classify.js';
import type { SidecarSnapshot } from '../api/snapshot/sidecar-snapshot.js';
import type { ApprovalService } from '../api/approvals/approval-service.js';
import { startAdminServer, type AdminServer, type AdminServerOptions } from './admin/admin-server.js';
import { GrpcApprovalService } from './approvals/grpc-approval-service.js';
import { StatementApprovals } from './approvals/statement-approvals.js';
import type { ControlPlaneConnection } from './control-plane/control-plane-channel.js';
import { SnapshotClient, type BackoffOptions } from './control-plane/snapshot-client.js';
import type { SidecarMetrics } from './metrics/sidecar-metrics.js';
import type { SessionRecorder } from './recording/session-recorder.js';
import { UploadingRecorder } from './recording/uploading-recorder.js';
import { Sidecar } from './sidecar.js';

/** Where the operator is, how this pod proves itself, and how fast to come back after losing it. */
export interface RuntimeControlPlane extends ControlPlaneConnection {
  readonly backoff?: Partial<BackoffOptions>;
}

export interface SidecarRuntimeOptions {
  readonly proto: DiscoveryProto;
  readonly controlPlane: RuntimeControlPlane;
  readonly logger: Logger;
  readonly metrics: SidecarMetrics;
  /**
   * Where session events go: to the operator over ReportEvents on the discovery connection, through
   * a disk spool (in a pod), or to a recorder the caller made (local mode's in-process store).
   */
  readonly recording: { readonly spoolDir: string; readonly maxSpoolBytes?: number } | { readonly recorder: SessionRecorder };
  /** Masking hash key; a random one per process when absent (hashes then differ between processes). */
  readonly hashKey?: Uint8Array;
  readonly adminHost: string;
  readonly adminPort: number;
  /** Served on /metrics besides the sidecar's own (local mode adds the control plane's). */
  readonly extraRegistries?: readonly Registry[];
  /** Called when a snapshot could not be applied (the client NACKs it and keeps the last good one). */
  readonly onApplyFailure?: (error: unknown, firstSnapshot: boolean) => void;
  /**
   * Who decides require-approval statements: 'control-plane' (RequestApproval to the operator, on
   * the discovery connection), an in-process service (local mode), or nobody (they are denied).
   */
  readonly approvals?: ApprovalService | 'control-plane';
  /** Extra admin endpoints (local mode's /approvals). */
  readonly adminRoutes?: AdminServerOptions['routes'];
}

export interface SidecarRuntime {
  readonly sidecar: Sidecar;
  readonly client: SnapshotClient;
  readonly recorder: SessionRecorder;
  readonly adminPort: number;
  /** Resolves with the first snapshot applied; never rejects (a refused one is retried by the control plane). */
  readonly firstApplied: Promise<SidecarSnapshot>;
  /** The listening port per resource of `snapshot` (resources skipped by this sidecar are absent). */
  portsOf(snapshot: SidecarSnapshot): Map<string, number>;
  /** Stops taking snapshots, gives sessions `drainMs` to finish, then closes the admin server. */
  stop(drainMs: number): Promise<void>;
}

function approvalServiceOf(options: SidecarRuntimeOptions): { service: ApprovalService; close?: () => void } | undefined {
  if (options.approvals === undefined) return undefined;
  if (options.approvals !== 'control-plane') return { service: options.approvals };
  const service = new GrpcApprovalService({ proto: options.proto, ...options.controlPlane });
  return { service, close: () => service.close() };
}

/** The upload recorder reads its spool back first, so a restarted sidecar re-sends what it had not delivered. */
async function recorderOf(options: SidecarRuntimeOptions): Promise<SessionRecorder> {
  if ('recorder' in options.recording) return options.recording.recorder;
  const { controlPlane } = options;
  return UploadingRecorder.start({
    proto: options.proto,
    address: controlPlane.address,
    transport: controlPlane.transport,
    nodeId: controlPlane.nodeId,
    token: controlPlane.token,
    spoolDir: options.recording.spoolDir,
    ...(options.recording.maxSpoolBytes !== undefined ? { maxSpoolBytes: options.recording.maxSpoolBytes } : {}),
    ...(controlPlane.backoff ? { backoff: controlPlane.backoff } : {}),
    logger: options.logger,
    registry: options.metrics.registry,
  });
}

function createClientAndSidecar(
  options: SidecarRuntimeOptions,
  onApplied: (snapshot: SidecarSnapshot) => void,
  approvals: ApprovalService | undefined,
  recorder: SessionRecorder,
): { client: SnapshotClient; sidecar: Sidecar } {
  const { logger, controlPlane } = options;
  const client: SnapshotClient = new SnapshotClient({
    proto: options.proto,
    ...controlPlane,
    apply: async (snapshot) => {
      const first = sidecar.version === undefined;
      try {
        await sidecar.apply(snapshot);
      } catch (error) {
        options.onApplyFailure?.(error, first);
        throw error; // the client NACKs it and keeps the last good snapshot
      }
      onApplied(snapshot);
    },
    logger,
    ...(controlPlane.backoff ? { backoff: controlPlane.backoff } : {}),
  });
  const sidecar = new Sidecar({
    logger,
    metrics: options.metrics,
    classifier: new SqlClassifier(),
    recorder,
    hashKey: options.hashKey ?? randomBytes(32),
    lease: client,
    ...(approvals ? { approvals: new StatementApprovals({ service: approvals, pod: controlPlane.nodeId }) } : {}),
  });
  return { client, sidecar };
}

/**
 * Starts the admin server and the discovery client. Nothing is served before the first snapshot:
 * listeners exist only once one is applied. The SQL parser must be loaded (loadSqlParser) first.
 */
export async function startSidecarRuntime(options: SidecarRuntimeOptions): Promise<SidecarRuntime> {
  let resolveFirst: ((snapshot: SidecarSnapshot) => void) | undefined;
  const firstApplied = new Promise<SidecarSnapshot>((resolve) => {
    resolveFirst = resolve;
  });
  const approvals = approvalServiceOf(options);
  const recorder = await recorderOf(options);
  const { client, sidecar } = createClientAndSidecar(options, (snapshot) => resolveFirst?.(snapshot), approvals?.service, recorder);
  const admin: AdminServer = await startAdminServer({
    host: options.adminHost,
    port: options.adminPort,
    // Merged only now: the Sidecar registers its expiry gauge when constructed, and merge copies what is there.
    registry: options.extraRegistries?.length ? Registry.merge([options.metrics.registry, ...options.extraRegistries]) : options.metrics.registry,
    notReadyReason: () => sidecar.notReadyReason(),
    ...(options.adminRoutes ? { routes: options.adminRoutes } : {}),
  }).catch(async (error: unknown) => {
    // The upload recorder already runs timers and a gRPC channel: stop it, or a failed start never exits.
    await recorder.close().catch(() => undefined);
    throw error;
  });
  client.start();
  return {
    sidecar,
    client,
    recorder,
    adminPort: admin.port,
    firstApplied,
    portsOf: (snapshot) => portsOf(snapshot, sidecar),
    async stop(drainMs) {
      // Each step runs even when one before it failed: a stuck drain must not keep the admin port open.
      const failures: unknown[] = [];
      for (const step of [() => client.stop(), () => sidecar.stop(drainMs), () => admin.close(), async () => approvals?.close?.()]) {
        await step().catch((error: unknown) => failures.push(error));
      }
      for (const error of failures) options.logger.error({ err: (error as Error).message }, 'sidecar shutdown step failed');
    },
  };
}

function portsOf(snapshot: SidecarSnapshot, sidecar: Sidecar): Map<string, number> {
  return new Map(snapshot.resources.flatMap((entry) => {
    const port = sidecar.portOf(entry.resource.metadata.name);
    return port === undefined ? [] : [[entry.resource.metadata.name, port] as const];
  }));
}

/** Resolves with `promise`'s value, or undefined once `signal` aborts. */
export async function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    if (signal.aborted) resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
