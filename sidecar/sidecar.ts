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

interface ResourceEntry {
  readonly entry: SnapshotResource;
  readonly state: PostgresResourceState;
}

interface RunningResource {
  readonly handle: ResourceHandle;
  readonly listener: PostgresListener;
}

export class Sidecar {
  private readonly running = new Map<string, RunningResource>();
  private snapshot: SidecarSnapshot | undefined;
  private readonly limits: SessionLimits;
  private applying: Promise<void> = Promise.resolve();

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
   * Applies a snapshot, all or nothing: every state is built and every new listener started first
   * (a bad state or a port in use throws, and nothing changes), then states are swapped in and
   * resources no longer granted have their sessions ended.
   */
  apply(snapshot: SidecarSnapshot): Promise<void> {
    // One at a time, in order: two reloads racing could start a resource's listener twice.
    const applied = this.applying.then(() => this.applyNow(snapshot));
    this.applying = applied.catch(() => undefined);
    return applied;
  }

  private async applyNow(snapshot: SidecarSnapshot): Promise<void> {
    const states = this.buildStates(snapshot);
    for (const [name, running] of await this.startNewListeners(states)) this.running.set(name, running);
    for (const [name, running] of this.running) {
      if (states.has(name)) continue;
      running.handle.state = undefined;
      running.listener.terminateAll('access to this resource was revoked');
    }
    for (const [name, { state }] of states) this.swapState(this.running.get(name)!, state);
    this.snapshot = snapshot;
    this.options.metrics.policyReloads.inc({ outcome: 'ok' });
    this.options.logger.info({ version: snapshot.version, resources: [...states.keys()] }, 'policy snapshot applied');
  }

  private buildStates(snapshot: SidecarSnapshot): Map<string, ResourceEntry> {
    const states = new Map<string, ResourceEntry>();
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
    return states;
  }

  /** Listeners for resources not yet served; if one cannot start, those started here are closed again. */
  private async startNewListeners(states: ReadonlyMap<string, ResourceEntry>): Promise<Map<string, RunningResource>> {
    const started = new Map<string, RunningResource>();
    try {
      for (const [name, { entry }] of states) {
        if (!this.running.has(name)) started.set(name, await this.startListener(entry));
      }
    } catch (error) {
      await Promise.all([...started.values()].map(({ listener }) => listener.drain(0)));
      throw error;
    }
    return started;
  }

  private swapState(running: RunningResource, state: PostgresResourceState): void {
    const previous = running.handle.state;
    running.handle.state = state;
    if (previous?.credential && previous.credential.password !== state.credential?.password) {
      // A rotated credential: new sessions use the new one; sessions on the old one are ended.
      running.listener.terminateAll('the credential was rotated');
    }
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
    this.options.logger.info({ resource: name, port: listener.port }, 'listening');
    return { handle, listener };
  }

  /** Graceful stop: no new connections, sessions get `graceMs` to finish, then are closed. */
  async stop(graceMs = 10_000): Promise<void> {
    await Promise.all([...this.running.values()].map(({ listener }) => listener.drain(graceMs)));
    this.running.clear();
    await this.options.recorder.close();
  }
}
