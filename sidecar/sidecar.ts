// The sidecar process's core: given snapshots (identity, resources, policies, credentials) it runs
// one listener per protected resource and keeps each one's enforcement state current. A snapshot
// that cannot be applied is refused whole and the last good one stays in force. With a lease (the
// SnapshotClient) it fails closed once that snapshot expires: sessions then see a state that denies
// every statement and refuses new connections, until the snapshot counts again.
import { Gauge } from 'prom-client';
import { formatErrorMessage } from '../api/errors.js';
import type { Logger } from '../api/logging/logger.js';
import type { SqlClassifier } from '../api/sql/classify.js';
import type { SidecarSnapshot, SnapshotResource, UpstreamCredential } from '../api/snapshot/sidecar-snapshot.js';
import type { StatementApprovals } from './approvals/statement-approvals.js';
import { expiredView, type SnapshotExpiry } from './expired-state.js';
import { METRIC_PREFIX, type SidecarMetrics } from './metrics/sidecar-metrics.js';
import { PostgresListener } from './postgres/postgres-listener.js';
import { DEFAULT_SESSION_LIMITS, type SessionLimits } from './postgres/session/postgres-session.js';
import { buildResourceState, type PostgresResourceHandle, type PostgresResourceState } from './postgres/session/resource-state.js';
import type { SessionRecorder } from './recording/session-recorder.js';

/** How long the applied snapshot may be enforced; the SnapshotClient is one. */
export interface SnapshotLease {
  /** Epoch ms after which the applied snapshot must not be enforced; undefined for no limit. */
  expiresAt(): number | undefined;
  /** Epoch ms since when the control plane is unreachable; undefined while connected. Named in refusals. */
  lostSince?(): number | undefined;
}

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
  /** Where the applied snapshot's expiry comes from; without one a snapshot never expires (tests, benchmarks). */
  readonly lease?: SnapshotLease;
  /** Epoch ms; Date.now by default. Must be the lease's clock. */
  readonly clock?: () => number;
  /** Holds require-approval statements for a human decision; without it they are denied. */
  readonly approvals?: StatementApprovals;
}

/**
 * Sessions read their resource's state here before every statement, so this is where expiry is
 * enforced: an expired snapshot yields a view that denies, built once per state and expiry.
 */
class ResourceHandle implements PostgresResourceHandle {
  state: PostgresResourceState | undefined;
  private view: { readonly of: PostgresResourceState; readonly expiry: SnapshotExpiry; readonly state: PostgresResourceState } | undefined;

  constructor(
    readonly name: string,
    private readonly expiry: () => SnapshotExpiry | undefined,
  ) {}

  current(): PostgresResourceState | undefined {
    const state = this.state;
    if (state === undefined) return undefined;
    const expiry = this.expiry();
    if (expiry === undefined) return state;
    if (this.view?.of !== state || this.view.expiry !== expiry) this.view = { of: state, expiry, state: expiredView(state, expiry) };
    return this.view.state;
  }
}

/** Why live sessions on the old credential must end, or undefined when they may go on. */
function credentialChange(previous: UpstreamCredential | undefined, next: UpstreamCredential | undefined): string | undefined {
  if (previous === undefined) return undefined;
  if (next === undefined) return 'the credential was revoked';
  // A renewal that only extends the expiry (postgres-dynamic) keeps the sessions: same login.
  if (previous.username !== next.username || previous.password !== next.password) return 'the credential was rotated';
  return undefined;
}

const EXPIRED_GAUGE = `${METRIC_PREFIX}policy_snapshot_expired`;

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
  private readonly clock: () => number;
  /** The expiry in force, once observed; undefined while the snapshot counts. */
  private expiry: SnapshotExpiry | undefined;

  constructor(private readonly options: SidecarOptions) {
    this.limits = { ...DEFAULT_SESSION_LIMITS, ...options.limits };
    this.clock = options.clock ?? Date.now;
    if (options.lease) this.registerExpiryGauge();
  }

  get version(): string | undefined {
    return this.snapshot?.version;
  }

  /**
   * Startup-probe semantics: ready once the first snapshot is applied, and ready after that. An
   * expired snapshot does not make the pod unready: the sidecar still answers, with denials that
   * say why, and the `policy_snapshot_expired` gauge is what to alert on.
   */
  notReadyReason(): string | undefined {
    return this.snapshot ? undefined : 'no policy snapshot yet';
  }

  /** Why the applied snapshot no longer counts, or undefined while it does (or there is no lease). */
  currentExpiry(): SnapshotExpiry | undefined {
    const at = this.options.lease?.expiresAt();
    if (at === undefined || this.clock() < at) {
      if (this.expiry) this.onSnapshotValidAgain();
      return undefined;
    }
    if (this.expiry?.at !== at) this.onSnapshotExpired(at);
    return this.expiry;
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
    this.recordCredentialExpiry(snapshot, states);
    this.options.metrics.policyReloads.inc({ outcome: 'ok' });
    this.options.logger.info({ version: snapshot.version, resources: [...states.keys()] }, 'policy snapshot applied');
  }

  /** The gauge holds exactly the credentials of the snapshot in force: renewed ones move, dropped ones go. */
  private recordCredentialExpiry(snapshot: SidecarSnapshot, states: ReadonlyMap<string, ResourceEntry>): void {
    const gauge = this.options.metrics.credentialExpiry;
    gauge.reset();
    const identity = snapshot.identity.metadata.name;
    for (const [resource, { entry }] of states) {
      const expiresAt = entry.credential?.expiresAt;
      if (expiresAt !== undefined) gauge.set({ resource, identity }, expiresAt / 1000);
    }
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
    // New sessions use the new credential; sessions on a rotated or revoked one are ended.
    const reason = credentialChange(previous?.credential, state.credential);
    if (reason) running.listener.terminateAll(reason);
  }

  private onSnapshotExpired(at: number): void {
    this.expiry = { at, message: this.expiryMessage(at) };
    this.options.logger.warn({ version: this.snapshot?.version, expiredAt: new Date(at).toISOString() }, 'policy snapshot expired; denying every statement and new session');
  }

  private onSnapshotValidAgain(): void {
    this.expiry = undefined;
    this.options.logger.info({ version: this.snapshot?.version }, 'policy snapshot counts again; enforcing it');
  }

  /** The lease ends at the earliest credential expiry or at the control plane loss plus the TTL: say which. */
  private expiryMessage(at: number): string {
    const iso = new Date(at).toISOString();
    const credential = this.snapshot?.resources.find((entry) => entry.credential?.expiresAt === at);
    return credential
      ? formatErrorMessage('GH_ERR_SNAPSHOT_CREDENTIAL_EXPIRED', { resource: credential.resource.metadata.name, at: iso })
      : formatErrorMessage('GH_ERR_SNAPSHOT_EXPIRED', { at: iso, since: this.lostSinceText() });
  }

  private lostSinceText(): string {
    const since = this.options.lease?.lostSince?.();
    return since === undefined ? 'an unknown time' : new Date(since).toISOString();
  }

  private registerExpiryGauge(): void {
    const registry = this.options.metrics.registry;
    if (registry.getSingleMetric(EXPIRED_GAUGE)) return;
    const currentExpiry = () => this.currentExpiry();
    new Gauge({
      name: EXPIRED_GAUGE,
      help: '1 while the policy snapshot in force has expired (credential past expiry, or control plane lost past the snapshot TTL) and everything is denied.',
      registers: [registry],
      collect() {
        this.set(currentExpiry() ? 1 : 0);
      },
    });
  }

  private async startListener(entry: SnapshotResource): Promise<RunningResource> {
    const name = entry.resource.metadata.name;
    const handle = new ResourceHandle(name, () => this.currentExpiry());
    const listener = new PostgresListener({
      host: this.options.listenHost ?? '127.0.0.1',
      port: this.options.portFor?.(entry) ?? entry.resource.spec.sidecar.port,
      resource: handle,
      classifier: this.options.classifier,
      metrics: this.options.metrics,
      logger: this.options.logger,
      recorder: this.options.recorder,
      limits: this.limits,
      ...(this.options.approvals ? { approvals: this.options.approvals } : {}),
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
