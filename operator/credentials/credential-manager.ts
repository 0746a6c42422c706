// Keeps exactly one live credential per (identity, resource) that some AccessPolicy grants: issues it
// on first need, renews it at about two thirds of its TTL, re-scopes it when the policies change,
// and revokes it when access goes away or it expires unrenewed (for postgres-dynamic that ends the
// role's sessions too). Listeners hear every change, so the control plane can push the credential
// to the sidecars that need it. State lives in memory only: after a restart cleanupLeftovers()
// removes what the previous process issued, and credentials are issued afresh.
//
// Work on one key is serialised (issue, renew, expiry and revocation never race each other); work
// on different keys runs concurrently, at most `concurrency` issuances at a time during sync().
import { createHash } from 'node:crypto';
import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import type { AccessPolicy, NonHumanIdentity, ProtectedResource } from '../../api/kinds/kinds.js';
import type { Logger } from '../../api/logging/logger.js';
import { silentLogger } from '../../api/logging/logger.js';
import { namespaceOf } from '../../api/manifests/config.js';
import {
  credentialRequest, type CredentialIssuer, type CredentialRequest, type IssuedCredential, type IssuedStrategy,
} from './credential-issuer.js';
import { KeyedQueue } from './keyed-queue.js';
import { systemScheduler, type Scheduler } from './scheduler.js';

/** What the caller wants to exist: an identity's access to a resource under these policies. */
export interface CredentialGrant {
  readonly identity: NonHumanIdentity;
  readonly resource: ProtectedResource;
  /** The AccessPolicies for the pair (as policiesFor selects them); none means no access. */
  readonly policies: readonly AccessPolicy[];
  /** Anything else the credential depends on (e.g. the Secret's resourceVersion); a change re-issues. */
  readonly revision?: string;
}

export interface CredentialKey {
  readonly namespace: string;
  readonly identity: string;
  readonly resource: string;
}

export type RevocationReason = 'access-removed' | 'expired' | 'shutdown';

export type CredentialEvent =
  | { readonly type: 'issued'; readonly key: CredentialKey; readonly credential: IssuedCredential }
  /** The credential was extended, re-scoped or replaced: push it again. */
  | { readonly type: 'renewed'; readonly key: CredentialKey; readonly credential: IssuedCredential }
  /** Stop delivering any credential for the key. */
  | { readonly type: 'revoked'; readonly key: CredentialKey; readonly reason: RevocationReason };

export type CredentialListener = (event: CredentialEvent) => void;

export type CredentialIssuers = Partial<Record<IssuedStrategy, CredentialIssuer>>;

export interface CredentialManagerOptions {
  readonly issuers: CredentialIssuers;
  readonly scheduler?: Scheduler;
  readonly logger?: Logger;
  /** First retry after a failed renewal or revocation; doubles up to maxRetryDelayMs. Default 5s. */
  readonly retryDelayMs?: number;
  readonly maxRetryDelayMs?: number;
  /** Issuances sync() runs at once (each may hold a database connection). Default 8. */
  readonly concurrency?: number;
}

export interface SyncFailure {
  readonly key: CredentialKey;
  readonly error: Error;
}

export interface SyncResult {
  readonly failures: readonly SyncFailure[];
}

export interface CleanupResult {
  /** Usernames of leftover credentials removed. */
  readonly removed: readonly string[];
  readonly failures: readonly { readonly resource: string; readonly error: Error }[];
}

interface Entry {
  readonly key: CredentialKey;
  issuer: CredentialIssuer;
  request: CredentialRequest;
  fingerprint: string;
  credential: IssuedCredential;
  cancelTimers: (() => void)[];
  retryDelayMs?: number;
}

/** A replaced credential waiting for its expiry, or a failed revocation waiting for its retry. */
interface Retired {
  readonly credential: IssuedCredential;
  readonly issuer: CredentialIssuer;
  readonly resource: ProtectedResource;
  cancel: () => void;
  retryDelayMs: number;
}

export function credentialKeyOf(identity: NonHumanIdentity, resource: ProtectedResource): CredentialKey {
  return { namespace: namespaceOf(identity), identity: identity.metadata.name, resource: resource.metadata.name };
}

function idOf(key: CredentialKey): string {
  return `${key.namespace}/${key.identity}/${key.resource}`;
}

/** Changes whenever anything the credential is derived from changes. */
function fingerprintOf(grant: CredentialGrant, request: CredentialRequest): string {
  const applied = grant.policies
    .filter((policy) => request.policy.policies.includes(policy.metadata.name))
    .map((policy) => ({ name: policy.metadata.name, spec: policy.spec }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const content = { identity: grant.identity.spec, resource: grant.resource.spec, applied, ttlMs: request.ttlMs, revision: grant.revision };
  return createHash('sha256').update(JSON.stringify(content)).digest('hex');
}

/** What may be logged about an error: code and message, never a cause chain that could hold a secret. */
function describeError(error: unknown): { code?: string; message: string } {
  if (isGatehouseError(error)) return { code: error.code, message: error.message };
  return { message: error instanceof Error ? error.message : String(error) };
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

async function mapConcurrently<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class CredentialManager {
  private readonly issuers: CredentialIssuers;
  private readonly scheduler: Scheduler;
  private readonly logger: Logger;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly concurrency: number;
  private readonly entries = new Map<string, Entry>();
  private readonly retired = new Set<Retired>();
  private readonly listeners = new Set<CredentialListener>();
  /** Work on one key runs one at a time. */
  private readonly queue = new KeyedQueue();
  private closed = false;

  constructor(options: CredentialManagerOptions) {
    this.issuers = options.issuers;
    this.scheduler = options.scheduler ?? systemScheduler;
    this.logger = (options.logger ?? silentLogger()).child({ component: 'credential-manager' });
    this.retryDelayMs = options.retryDelayMs ?? 5_000;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 60_000;
    this.concurrency = Math.max(1, options.concurrency ?? 8);
  }

  /** Calls `listener` on every change; returns the unsubscribe function. */
  subscribe(listener: CredentialListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The live credential for a key, if any. */
  credentialFor(key: CredentialKey): IssuedCredential | undefined {
    return this.entries.get(idOf(key))?.credential;
  }

  /** Keys that hold a credential now. */
  keys(): CredentialKey[] {
    return [...this.entries.values()].map((entry) => entry.key);
  }

  /**
   * Makes the live credentials exactly `grants`: issues missing ones, re-scopes changed ones,
   * revokes the rest. Per-key failures are returned (retry with the next reconcile), not thrown.
   */
  async sync(grants: readonly CredentialGrant[]): Promise<SyncResult> {
    const failures: SyncFailure[] = [];
    const wanted = new Set(grants.map((grant) => idOf(credentialKeyOf(grant.identity, grant.resource))));
    await mapConcurrently(grants, this.concurrency, async (grant) => {
      await this.ensure(grant).catch((error: unknown) => {
        failures.push({ key: credentialKeyOf(grant.identity, grant.resource), error: asError(error) });
      });
    });
    const unwanted = [...this.entries.values()].filter((entry) => !wanted.has(idOf(entry.key)));
    for (const entry of unwanted) {
      await this.release(entry.key).catch((error: unknown) => failures.push({ key: entry.key, error: asError(error) }));
    }
    return { failures };
  }

  /** The credential for one grant, issued or re-scoped as needed; undefined when the grant gives no access. */
  ensure(grant: CredentialGrant): Promise<IssuedCredential | undefined> {
    const key = credentialKeyOf(grant.identity, grant.resource);
    return this.queue.run(idOf(key), () => this.ensureNow(key, grant));
  }

  /** Revokes the credential for `key` (if any) and tells listeners. */
  release(key: CredentialKey, reason: RevocationReason = 'access-removed'): Promise<void> {
    return this.queue.run(idOf(key), () => this.releaseNow(idOf(key), reason));
  }

  /**
   * Removes credentials an earlier operator process issued on these resources and this one does
   * not know (their secrets died with it). Run at startup, before the first sync.
   */
  async cleanupLeftovers(resources: readonly ProtectedResource[]): Promise<CleanupResult> {
    const removed: string[] = [];
    const failures: { resource: string; error: Error }[] = [];
    for (const resource of resources) {
      const issuer = this.issuers[resource.spec.credentials.strategy as IssuedStrategy];
      if (issuer?.cleanupLeftovers === undefined) continue;
      try {
        removed.push(...(await issuer.cleanupLeftovers(resource, this.knownUsernames(issuer))));
      } catch (error) {
        failures.push({ resource: `${namespaceOf(resource)}/${resource.metadata.name}`, error: asError(error) });
        this.logger.warn({ resource: resource.metadata.name, error: describeError(error) }, 'leftover cleanup failed');
      }
    }
    return { removed, failures };
  }

  /** Resolves once no work is queued for any key (tests; shutdown). */
  async settled(): Promise<void> {
    await this.queue.idle();
  }

  /**
   * Stops renewing. With `revoke`, also revokes every credential (sessions end); without it they
   * lapse at their expiry, and the next process's cleanupLeftovers() removes them.
   */
  async close(options: { revoke?: boolean } = {}): Promise<void> {
    this.closed = true;
    await this.settled();
    for (const entry of this.entries.values()) for (const cancel of entry.cancelTimers) cancel();
    for (const retired of this.retired) retired.cancel();
    if (options.revoke !== true) return;
    for (const entry of [...this.entries.values()]) {
      await this.releaseNow(idOf(entry.key), 'shutdown').catch(() => undefined);
    }
    for (const retired of [...this.retired]) await this.revokeRetired(retired).catch(() => undefined);
  }

  private async ensureNow(key: CredentialKey, grant: CredentialGrant): Promise<IssuedCredential | undefined> {
    if (this.closed) throw new GatehouseError('GH_ERR_CREDENTIAL_MANAGER_CLOSED', { key: idOf(key) });
    const id = idOf(key);
    const strategy = grant.resource.spec.credentials.strategy;
    const request = credentialRequest(grant);
    if (strategy === 'none' || request.policy.policies.length === 0) {
      await this.releaseNow(id, 'access-removed');
      return undefined;
    }
    const issuer = this.issuerFor(strategy, grant.resource);
    const fingerprint = fingerprintOf(grant, request);
    const entry = this.entries.get(id);
    if (entry?.fingerprint === fingerprint) return entry.credential;
    if (entry === undefined) return this.issueNew(key, issuer, request, fingerprint);
    await this.refresh(entry, { issuer, request, fingerprint });
    return entry.credential;
  }

  private issuerFor(strategy: IssuedStrategy, resource: ProtectedResource): CredentialIssuer {
    const issuer = this.issuers[strategy];
    if (issuer !== undefined) return issuer;
    throw new GatehouseError('GH_ERR_CREDENTIAL_NO_ISSUER', { resource: `${namespaceOf(resource)}/${resource.metadata.name}`, strategy });
  }

  private async issueNew(key: CredentialKey, issuer: CredentialIssuer, request: CredentialRequest, fingerprint: string): Promise<IssuedCredential> {
    const credential = await issuer.issue(request);
    const entry: Entry = { key, issuer, request, fingerprint, credential, cancelTimers: [] };
    this.entries.set(idOf(key), entry);
    this.arm(entry);
    this.logger.info({ ...key, credentialId: credential.id, expiresAt: credential.expiresAt }, 'issued credential');
    this.emit({ type: 'issued', key, credential });
    return credential;
  }

  /**
   * Renews in place when the issuer can, otherwise issues a new credential and retires the old one.
   * The entry changes only on success, so a failed re-scope is retried by the next sync.
   */
  private async refresh(entry: Entry, next: Pick<Entry, 'issuer' | 'request' | 'fingerprint'> = entry): Promise<void> {
    const previous = { credential: entry.credential, issuer: entry.issuer, resource: entry.request.resource };
    const credential = await this.renewOrReplace(previous.credential, previous.issuer, next);
    entry.issuer = next.issuer;
    entry.request = next.request;
    entry.fingerprint = next.fingerprint;
    entry.credential = credential;
    entry.retryDelayMs = undefined;
    if (credential.id !== previous.credential.id) this.retire(previous.credential, previous.issuer, previous.resource);
    this.arm(entry);
    this.logger.info({ ...entry.key, credentialId: credential.id, expiresAt: credential.expiresAt }, 'renewed credential');
    this.emit({ type: 'renewed', key: entry.key, credential });
  }

  private async renewOrReplace(
    current: IssuedCredential,
    currentIssuer: CredentialIssuer,
    { issuer, request }: Pick<Entry, 'issuer' | 'request'>,
  ): Promise<IssuedCredential> {
    if (issuer.renew === undefined || issuer !== currentIssuer) return issuer.issue(request);
    try {
      return await issuer.renew(current, request);
    } catch (error) {
      // Someone dropped the role behind our back: issue a fresh one (revoking the old is then a no-op).
      if (isGatehouseError(error, 'GH_ERR_PG_DYNAMIC_ROLE_GONE')) return issuer.issue(request);
      throw error;
    }
  }

  private async releaseNow(id: string, reason: RevocationReason): Promise<void> {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    this.entries.delete(id);
    for (const cancel of entry.cancelTimers) cancel();
    // Listeners first: the sidecar must stop using it even if the backend is unreachable right now.
    this.emit({ type: 'revoked', key: entry.key, reason });
    const retired = this.track(entry.credential, entry.issuer, entry.request.resource);
    await this.revokeRetired(retired);
    this.logger.info({ ...entry.key, credentialId: entry.credential.id, reason }, 'revoked credential');
  }

  private track(credential: IssuedCredential, issuer: CredentialIssuer, resource: ProtectedResource): Retired {
    const retired: Retired = { credential, issuer, resource, cancel: () => undefined, retryDelayMs: this.retryDelayMs };
    this.retired.add(retired);
    return retired;
  }

  /**
   * Revokes a replaced credential when it expires (at once when it never does): the sidecar may
   * still hold sessions on it until the replacement arrives, and it is useless after expiry anyway.
   */
  private retire(credential: IssuedCredential, issuer: CredentialIssuer, resource: ProtectedResource): void {
    this.scheduleRevocation(this.track(credential, issuer, resource), credential.expiresAt ?? this.scheduler.now());
  }

  private scheduleRevocation(retired: Retired, atMs: number): void {
    retired.cancel = this.scheduler.schedule(atMs, () => {
      this.background(`retired:${retired.credential.id}`, 'revocation', () => this.revokeRetired(retired));
    });
  }

  /** Revokes now; on failure schedules a retry with backoff and rethrows. */
  private async revokeRetired(retired: Retired): Promise<void> {
    retired.cancel();
    try {
      await retired.issuer.revoke(retired.credential, retired.resource);
      this.retired.delete(retired);
    } catch (error) {
      if (!this.closed) {
        const delay = retired.retryDelayMs;
        retired.retryDelayMs = Math.min(delay * 2, this.maxRetryDelayMs);
        this.scheduleRevocation(retired, this.scheduler.now() + delay);
      }
      throw error;
    }
  }

  /** Timers for the entry's current credential: renewal at renewAt, revocation at expiresAt. */
  private arm(entry: Entry): void {
    for (const cancel of entry.cancelTimers) cancel();
    const { credential } = entry;
    const id = idOf(entry.key);
    entry.cancelTimers = [];
    if (this.closed) return;
    if (credential.renewAt !== undefined) {
      entry.cancelTimers.push(this.scheduler.schedule(credential.renewAt, () => this.onRenewDue(id, credential)));
    }
    if (credential.expiresAt !== undefined) {
      entry.cancelTimers.push(this.scheduler.schedule(credential.expiresAt, () => this.onExpiry(id, credential)));
    }
  }

  private onRenewDue(id: string, credential: IssuedCredential): void {
    this.background(id, 'renewal', async () => {
      const entry = this.entries.get(id);
      if (entry === undefined || entry.credential !== credential || this.closed) return;
      try {
        await this.refresh(entry);
      } catch (error) {
        this.scheduleRenewRetry(entry, credential);
        throw error;
      }
    });
  }

  /** Retries with backoff while the credential is alive; once it expires, onExpiry revokes it. */
  private scheduleRenewRetry(entry: Entry, credential: IssuedCredential): void {
    const delay = Math.min(entry.retryDelayMs ?? this.retryDelayMs, this.maxRetryDelayMs);
    entry.retryDelayMs = delay * 2;
    const at = this.scheduler.now() + delay;
    if (credential.expiresAt !== undefined && at >= credential.expiresAt) return;
    entry.cancelTimers.push(this.scheduler.schedule(at, () => this.onRenewDue(idOf(entry.key), credential)));
  }

  private onExpiry(id: string, credential: IssuedCredential): void {
    this.background(id, 'expiry', async () => {
      const entry = this.entries.get(id);
      if (entry === undefined || entry.credential !== credential) return;
      this.logger.warn({ ...entry.key, credentialId: credential.id }, 'credential expired before it was renewed');
      await this.releaseNow(id, 'expired');
    });
  }

  private background(id: string, what: string, work: () => Promise<void>): void {
    this.queue.run(id, work).catch((error: unknown) => {
      this.logger.warn({ key: id, error: describeError(error) }, `${what} failed`);
    });
  }

  private knownUsernames(issuer: CredentialIssuer): Set<string> {
    const known = new Set<string>();
    for (const entry of this.entries.values()) if (entry.issuer === issuer) known.add(entry.credential.username);
    for (const retired of this.retired) if (retired.issuer === issuer) known.add(retired.credential.username);
    return known;
  }

  private emit(event: CredentialEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger.warn({ event: event.type, error: describeError(error) }, 'credential listener failed');
      }
    }
  }
}
