// The sidecar process's core: given snapshots (identity, resources, policies, credentials) it runs
// one listener per protected resource and keeps each one's enforcement state current. A snapshot
// that cannot be applied is refused whole and the last good one stays in force.
import type { Logger } from '../api/logging/logger.js';
import type { SqlClassifier } from '../api/sql/classify.js';
import type { SidecarSnapshot, SnapshotResource } from '../api/snapshot/sidecar-snapshot.js';
import type { SidecarMetrics } from './metrics/sidecar-metrics.js';
import { PostgresListener } from './postgres/postgres-listener.js';
import { DEFAULT_SESSION_LIMITS, type SessionLimits } from './postgres/session/postgres-session.js';
import { buildResourceState, type PostgresResourceHandle, type PostgresResourceState } from './postgres/session/resource-state.js';
import type { SessionRecorder } from './recording/session-recorder.js';

export interface SidecarOptions {
  readonly logger: Logger;
  readonly metrics: SidecarMetrics;
  readonly classifier: SqlClassifier;
  readonly recorder: SessionRecorder;
  /** Key for the masking strategy hash (at least 16 bytes). */
  readonly hashKey: Uint8Array;
  readonly listenHost?: string;
  /** Port to listen on for a resource; spec.sidecar.port by default (tests pass 0). */
  readonly portFor?: (resource: SnapshotResource) => number;
  readonly limits?: Partial<SessionLimits>;
}

class ResourceHandle implements PostgresResourceHandle {
  state: PostgresResourceState | undefined;
  constructor(readonly name: string) {}
  current(): PostgresResourceState | undefined {
    return this.state;
  }
}

interface RunningResource {
  readonly handle: ResourceHandle;
  readonly listener: PostgresListener;
}

export class Sidecar {
  private readonly running = new Map<string, RunningResource>();
  private snapshot: SidecarSnapshot | undefined;
  private readonly limits: SessionLimits;

  constructor(private readonly options: SidecarOptions) {
    this.limits = { ...DEFAULT_SESSION_LIMITS, ...options.limits };
  }

  get version(): string | undefined {
    return this.snapshot?.version;
  }

  notReadyReason(): string | undefined {
    return this.snapshot ? undefined : 'no policy snapshot yet';
  }

  /** The port a resource's listener is bound to (useful when started on port 0). */
  portOf(resource: string): number | undefined {
    return this.running.get(resource)?.listener.port;
  }

  /**
   * Applies a snapshot: every state is built first (a bad one throws and nothing changes), then
   * swapped in; new resources get listeners, resources no longer granted have their sessions ended.
   */
  async apply(snapshot: SidecarSnapshot): Promise<void> {
    const states = new Map<string, { entry: SnapshotResource; state: PostgresResourceState }>();
    for (const entry of snapshot.resources) {
      if (entry.resource.spec.protocol !== 'postgres') {
        this.options.logger.warn({ resource: entry.resource.metadata.name, protocol: entry.resource.spec.protocol }, 'protocol not supported by this sidecar yet; resource skipped');
        continue;
      }
      states.set(entry.resource.metadata.name, {
        entry,
        state: buildResourceState(snapshot.identity, entry, snapshot.version, this.options.hashKey),
      });
    }
    for (const [name, running] of this.running) {
      if (states.has(name)) continue;
      running.handle.state = undefined;
      running.listener.terminateAll('access to this resource was revoked');
    }
    for (const [name, { entry, state }] of states) {
      const running = this.running.get(name) ?? (await this.startListener(entry));
      const previous = running.handle.state;
      running.handle.state = state;
      if (previous?.credential && previous.credential.password !== state.credential?.password) {
        // A rotated credential: new sessions use the new one; sessions on the old one are ended.
        running.listener.terminateAll('the credential was rotated');
      }
    }
    this.snapshot = snapshot;
    this.options.metrics.policyReloads.inc({ outcome: 'ok' });
    this.options.logger.info({ version: snapshot.version, resources: [...states.keys()] }, 'policy snapshot applied');
  }

  private async startListener(entry: SnapshotResource): Promise<RunningResource> {
    const name = entry.resource.metadata.name;
    const handle = new ResourceHandle(name);
    const listener = new PostgresListener({
      host: this.options.listenHost ?? '127.0.0.1',
      port: this.options.portFor?.(entry) ?? entry.resource.spec.sidecar.port,
      resource: handle,
      classifier: this.options.classifier,
      metrics: this.options.metrics,
      logger: this.options.logger,
      recorder: this.options.recorder,
      limits: this.limits,
    });
    await listener.start();
    const running = { handle, listener };
    this.running.set(name, running);
    this.options.logger.info({ resource: name, port: listener.port }, 'listening');
    return running;
  }

  /** Graceful stop: no new connections, sessions get `graceMs` to finish, then are closed. */
  async stop(graceMs = 10_000): Promise<void> {
    await Promise.all([...this.running.values()].map(({ listener }) => listener.drain(graceMs)));
    this.running.clear();
    await this.options.recorder.close();
  }
}
