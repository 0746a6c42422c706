// The control plane of local mode (`gatehouse dev`): a folder of manifests stands in for the
// cluster. It watches the folder, validates every change (a folder with errors is refused and the
// last good snapshot stays), keeps the identity's credentials with a CredentialManager, and sets
// the identity's snapshot in the SnapshotCache, from which the discovery server pushes it to the
// sidecar. Credential renewals and rotations are published the same way. One node, one identity.
import { Counter, type Registry } from 'prom-client';
import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import { loadConfigDir, namespaceOf, type ConfigProblem, type GatehouseConfig, type Secret } from '../../api/manifests/config.js';
import { watchConfigDir, type ConfigWatcher as ConfigDirWatcher } from '../../api/manifests/config-watcher.js';
import { validateConfig } from '../../api/manifests/validate.js';
import { toResourceSets, typeName } from '../../api/proto/snapshot-resources.js';
import type { SidecarSnapshot } from '../../api/snapshot/sidecar-snapshot.js';
import type { SnapshotCache } from '../control-plane/snapshot-cache.js';
import { toUpstreamCredential } from '../credentials/credential-issuer.js';
import { CredentialManager, credentialKeyOf, type CredentialEvent, type CredentialIssuers } from '../credentials/credential-manager.js';
import type { SecretLookup } from '../credentials/credential-secret.js';
import type { Scheduler } from '../credentials/scheduler.js';
import { selectForIdentity, withCredentials, type LocalSelection } from './local-snapshot.js';

export interface LocalControlPlaneOptions {
  readonly configDir: string;
  readonly identity: string;
  readonly namespace?: string;
  /** The node the snapshot is set for in the cache (the in-process sidecar). */
  readonly nodeId: string;
  readonly cache: SnapshotCache;
  /** The issuers, given a lookup over the Secrets of the last good folder. */
  readonly issuers: (secrets: SecretLookup) => CredentialIssuers;
  /** Applied to every folder that validated, before use (the demo points resources at its database). */
  readonly adjustConfig?: (config: GatehouseConfig) => void;
  readonly logger: Logger;
  /** Where the reload counter goes (the control plane's registry). */
  readonly registry?: Registry;
  /** Quiet time after a file change before reloading; the watcher's default when absent. */
  readonly watchDebounceMs?: number;
  readonly scheduler?: Scheduler;
}

export interface LocalControlPlaneEvents {
  /** Problems in a loaded folder, warnings included; any error means the folder was refused. */
  onProblems(problems: readonly ConfigProblem[]): void;
  /** No credential could be issued for a resource; it is served without one, so its sessions are refused. */
  onCredentialFailure(resource: string, error: Error): void;
}

export type ReloadOutcome =
  | { readonly kind: 'published'; readonly snapshot: SidecarSnapshot }
  | { readonly kind: 'refused'; readonly error: Error };

const RELOADS_METRIC = 'gatehouse_control_plane_config_reloads_total';

function reloadCounter(registry: Registry | undefined): Counter<'outcome'> | undefined {
  if (!registry) return undefined;
  const existing = registry.getSingleMetric(RELOADS_METRIC);
  if (existing) return existing as Counter<'outcome'>;
  return new Counter({
    name: RELOADS_METRIC,
    help: 'Config folder reloads of local mode, by outcome (published, refused: the last good snapshot stayed).',
    labelNames: ['outcome'],
    registers: [registry],
  });
}

function isError(problem: ConfigProblem): boolean {
  return (problem.severity ?? 'error') === 'error';
}

export class LocalControlPlane {
  private readonly manager: CredentialManager;
  private readonly reloads: Counter<'outcome'> | undefined;
  private readonly log: Logger;
  /** The last folder that validated: what Secrets are read from. */
  private config: GatehouseConfig | undefined;
  private selection: LocalSelection | undefined;
  private published: SidecarSnapshot | undefined;
  private watcher: ConfigDirWatcher | undefined;
  /** Reloads and publications run one at a time, in order. */
  private work: Promise<unknown> = Promise.resolve();
  /** While a reload syncs credentials, it publishes once at the end instead of once per event. */
  private syncing = false;
  private closed = false;

  constructor(
    private readonly options: LocalControlPlaneOptions,
    private readonly events: LocalControlPlaneEvents,
  ) {
    this.log = options.logger.child({ component: 'local-control-plane' });
    this.reloads = reloadCounter(options.registry);
    this.manager = new CredentialManager({
      issuers: options.issuers((namespace, name) => this.findSecret(namespace, name)),
      logger: options.logger,
      ...(options.scheduler ? { scheduler: options.scheduler } : {}),
    });
    this.manager.subscribe((event) => this.onCredentialEvent(event));
  }

  /** The snapshot set in the cache last. */
  get snapshot(): SidecarSnapshot | undefined {
    return this.published;
  }

  /** Watches the folder, then loads it and publishes the first snapshot; throws when the folder is refused. */
  async start(): Promise<SidecarSnapshot> {
    // Watching first: an edit made while the first load runs is picked up after it.
    this.watcher = watchConfigDir({
      dir: this.options.configDir,
      ...(this.options.watchDebounceMs !== undefined ? { debounceMs: this.options.watchDebounceMs } : {}),
      onConfig: (config) => void this.enqueue(() => this.accept(config)),
      onError: (error) => void this.enqueue(async () => this.refuse(error)),
    });
    const outcome = await this.reload();
    if (outcome.kind === 'refused') {
      this.watcher.close();
      throw outcome.error;
    }
    return outcome.snapshot;
  }

  /** Loads the folder now (the watcher does this on every change). */
  reload(): Promise<ReloadOutcome> {
    return this.enqueue(async () => {
      let config: GatehouseConfig;
      try {
        config = await loadConfigDir(this.options.configDir);
      } catch (error) {
        return this.refuse(error);
      }
      return this.accept(config);
    });
  }

  /** Stops watching and revokes every credential (dynamic roles are dropped, their sessions end). */
  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    await this.work;
    await this.manager.close({ revoke: true });
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const run = this.work.then(task);
    this.work = run.catch(() => undefined);
    return run;
  }

  private async accept(config: GatehouseConfig): Promise<ReloadOutcome> {
    if (this.closed) return { kind: 'refused', error: new GatehouseError('GH_ERR_CREDENTIAL_MANAGER_CLOSED', { key: this.options.nodeId }) };
    const problems = validateConfig(config);
    if (problems.length > 0) this.events.onProblems(problems);
    const errors = problems.filter(isError);
    if (errors.length > 0) return this.refuse(new GatehouseError('GH_ERR_CONFIG_INVALID', { count: errors.length, path: this.options.configDir }));
    this.options.adjustConfig?.(config);
    let selection: LocalSelection;
    try {
      selection = selectForIdentity(config, this.options.identity, this.options.namespace);
    } catch (error) {
      return this.refuse(error);
    }
    this.config = config;
    this.selection = selection;
    await this.syncCredentials(selection);
    const snapshot = this.publish(selection);
    this.reloads?.inc({ outcome: 'published' });
    return { kind: 'published', snapshot };
  }

  /** Failures leave the resource without a credential until the next change of the folder. */
  private async syncCredentials(selection: LocalSelection): Promise<void> {
    this.syncing = true;
    try {
      const { failures } = await this.manager.sync(selection.grants);
      for (const failure of failures) this.events.onCredentialFailure(failure.key.resource, failure.error);
    } finally {
      this.syncing = false;
    }
  }

  private refuse(error: unknown): ReloadOutcome {
    const refusal = error instanceof Error ? error : new Error(String(error));
    this.reloads?.inc({ outcome: 'refused' });
    this.log.error(
      { code: isGatehouseError(refusal) ? refusal.code : undefined, err: refusal.message, keeps: this.published?.version },
      'config folder refused; the last good snapshot stays in force',
    );
    return { kind: 'refused', error: refusal };
  }

  /** A renewal, rotation or expiry outside a reload: the sidecar gets the new credential set now. */
  private onCredentialEvent(event: CredentialEvent): void {
    if (this.syncing || this.closed || !this.selection) return;
    this.log.info({ event: event.type, resource: event.key.resource }, 'credential changed; publishing');
    void this.enqueue(async () => {
      if (this.selection && !this.closed) this.publish(this.selection);
    });
  }

  private publish(selection: LocalSelection): SidecarSnapshot {
    const identity = selection.snapshot.identity;
    const snapshot = withCredentials(selection.snapshot, (resource) => {
      const issued = this.manager.credentialFor(credentialKeyOf(identity, resource));
      return issued ? toUpstreamCredential(issued) : undefined;
    });
    const changed = this.options.cache.setSnapshot(this.options.nodeId, toResourceSets(snapshot));
    if (changed.length > 0) this.log.info({ version: snapshot.version, changed: changed.map(typeName) }, 'snapshot published');
    this.published = snapshot;
    return snapshot;
  }

  private findSecret(namespace: string, name: string): Secret | undefined {
    return this.config?.secrets.find((secret) => secret.metadata.name === name && namespaceOf(secret) === namespace);
  }
}
