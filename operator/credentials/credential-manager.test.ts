// The CredentialManager's lifecycle with recording issuers and a manual clock: one credential per
// key, renewal at two thirds of the TTL, rotation for issuers that cannot renew, retries, expiry,
// re-scoping and revocation on sync, per-key failure isolation, shutdown, and logs without secrets.
import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import type { PolicyRuleT, ProtectedResource } from '../../api/kinds/kinds.js';
import { createLogger } from '../../api/logging/logger.js';
import { identity, policy, resource } from './credential-fixtures.js';
import {
  credentialLifetime, type CredentialIssuer, type CredentialRequest, type IssuedCredential, type IssuedStrategy,
} from './credential-issuer.js';
import { CredentialManager, type CredentialEvent, type CredentialGrant } from './credential-manager.js';
import { ManualScheduler } from './manual-scheduler.js';
import { LogCapture } from '../../testing/log-capture.js';

const T0 = Date.UTC(2030, 0, 1);

class RecordingIssuer implements CredentialIssuer {
  readonly calls: { op: 'issue' | 'renew' | 'revoke' | 'cleanup'; at: number; id?: string; request?: CredentialRequest }[] = [];
  renew?: (credential: IssuedCredential, request: CredentialRequest) => Promise<IssuedCredential>;
  /** Queue of errors the next renewals throw. */
  renewFailures: Error[] = [];
  issueFailures: Error[] = [];
  revokeFailures: Error[] = [];
  private counter = 0;

  constructor(
    readonly strategy: IssuedStrategy,
    private readonly clock: ManualScheduler,
    renewable = true,
  ) {
    if (renewable) this.renew = (credential, request) => this.renewCredential(credential, request);
  }

  async issue(request: CredentialRequest): Promise<IssuedCredential> {
    this.calls.push({ op: 'issue', at: this.clock.now(), request });
    const failure = this.issueFailures.shift();
    if (failure) throw failure;
    const id = `${this.strategy}-${++this.counter}`;
    return { strategy: this.strategy, id, username: id, password: `Pw-${id}-${'x'.repeat(12)}`, ...credentialLifetime(this.clock.now(), request.ttlMs) };
  }

  async revoke(credential: IssuedCredential, _resource: ProtectedResource): Promise<void> {
    this.calls.push({ op: 'revoke', at: this.clock.now(), id: credential.id });
    const failure = this.revokeFailures.shift();
    if (failure) throw failure;
  }

  async cleanupLeftovers(_resource: ProtectedResource, keep: ReadonlySet<string>): Promise<readonly string[]> {
    this.calls.push({ op: 'cleanup', at: this.clock.now(), id: [...keep].sort().join(',') });
    return ['stale-role'];
  }

  ops(op: string): { at: number; id?: string; request?: CredentialRequest }[] {
    return this.calls.filter((call) => call.op === op);
  }

  private async renewCredential(credential: IssuedCredential, request: CredentialRequest): Promise<IssuedCredential> {
    this.calls.push({ op: 'renew', at: this.clock.now(), id: credential.id, request });
    const failure = this.renewFailures.shift();
    if (failure) throw failure;
    const { expiresAt, renewAt } = credentialLifetime(this.clock.now(), request.ttlMs);
    return { ...credential, expiresAt, renewAt };
  }
}

const dynamicDb = resource('orders-db');
const staticDb = resource('billing-db', { credentials: { strategy: 'static', secretRef: { name: 'billing' } } });
const noneDb = resource('open-db', { credentials: { strategy: 'none' } });

function grant(name: string, target: ProtectedResource, rules: readonly PolicyRuleT[] = [{ effect: 'allow', operations: ['read'] }], ttl = '30s'): CredentialGrant {
  return { identity: identity(name), resource: target, policies: [policy(`${name}-policy`, [name], [target.metadata.name], rules, { credentialTTL: ttl })] };
}

const key = (name: string, target: ProtectedResource) => ({ namespace: 'payments', identity: name, resource: target.metadata.name });

let scheduler: ManualScheduler;
let dynamic: RecordingIssuer;
let events: CredentialEvent[];
let logs: LogCapture;
let manager: CredentialManager;

function start(issuers: ConstructorParameters<typeof CredentialManager>[0]['issuers'] = { 'postgres-dynamic': dynamic }): CredentialManager {
  manager = new CredentialManager({ issuers, scheduler, logger: createLogger({ level: 'debug', destination: logs }), retryDelayMs: 5_000 });
  manager.subscribe((event) => events.push(event));
  return manager;
}

async function advance(ms: number): Promise<void> {
  await scheduler.advance(ms, () => manager.settled());
}

beforeEach(() => {
  scheduler = new ManualScheduler(T0);
  dynamic = new RecordingIssuer('postgres-dynamic', scheduler);
  events = [];
  logs = new LogCapture();
  start();
});

afterEach(async () => {
  await manager.close();
});

describe('issuing', () => {
  test('one credential per identity and resource, the same one while nothing changes', async () => {
    const [first, second] = await Promise.all([manager.ensure(grant('ci', dynamicDb)), manager.ensure(grant('ci', dynamicDb))]);
    expect(second).toBe(first);
    expect(await manager.ensure(grant('ci', dynamicDb))).toBe(first);
    expect(dynamic.ops('issue')).toHaveLength(1);
    expect(events).toEqual([{ type: 'issued', key: key('ci', dynamicDb), credential: first }]);
    expect(manager.credentialFor(key('ci', dynamicDb))).toBe(first);
  });

  test('the TTL is the smallest policy credentialTTL, capped by the identity maximum', async () => {
    const capped = { ...grant('ci', dynamicDb, undefined, '2h'), identity: identity('ci', { maxCredentialTTL: '15m' }) };
    const credential = await manager.ensure(capped);
    expect(credential!.expiresAt! - credential!.issuedAt).toBe(15 * 60_000);
  });

  test('strategy none or no applicable policy: no credential, and a live one is revoked', async () => {
    start({ 'postgres-dynamic': dynamic, static: new RecordingIssuer('static', scheduler) });
    expect(await manager.ensure(grant('ci', noneDb))).toBeUndefined();
    await manager.ensure(grant('ci', dynamicDb));
    const withoutPolicies = { ...grant('ci', dynamicDb), policies: [] };
    expect(await manager.ensure(withoutPolicies)).toBeUndefined();
    expect(dynamic.ops('revoke')).toHaveLength(1);
    expect(events.map((event) => event.type)).toEqual(['issued', 'revoked']);
  });

  test('per-key failures are reported by sync without stopping the other keys', async () => {
    dynamic.issueFailures.push(new GatehouseError('GH_ERR_PG_ADMIN_CONNECT', { address: 'db:5432', database: 'app', secret: 's', resource: 'r', detail: 'down' }));
    const result = await manager.sync([grant('ci', dynamicDb), grant('reporter', dynamicDb), grant('ci', staticDb)]);
    const codes = result.failures.map((failure) => [failure.key.identity, failure.key.resource, (failure.error as GatehouseError).code]);
    expect(codes).toEqual(expect.arrayContaining([['ci', 'billing-db', 'GH_ERR_CREDENTIAL_NO_ISSUER']]));
    expect(result.failures).toHaveLength(2);
    expect(manager.keys()).toHaveLength(1);
  });
});

describe('renewal', () => {
  test('renews at two thirds of the TTL, again and again', async () => {
    const issued = await manager.ensure(grant('ci', dynamicDb, undefined, '90s'));
    await advance(59_999);
    expect(dynamic.ops('renew')).toHaveLength(0);
    await advance(1);
    await advance(60_000);
    expect(dynamic.ops('renew').map((call) => call.at - T0)).toEqual([60_000, 120_000]);
    const current = manager.credentialFor(key('ci', dynamicDb))!;
    expect(current.password).toBe(issued!.password);
    expect(current.expiresAt).toBe(T0 + 120_000 + 90_000);
    expect(events.map((event) => event.type)).toEqual(['issued', 'renewed', 'renewed']);
    expect(dynamic.ops('revoke')).toHaveLength(0);
  });

  test('a failing renewal is retried with backoff; expiry then revokes and tells listeners', async () => {
    dynamic.renewFailures.push(new Error('down'), new Error('down'), new Error('down'));
    await manager.ensure(grant('ci', dynamicDb, undefined, '30s'));
    await advance(30_000);
    expect(dynamic.ops('renew').map((call) => call.at - T0)).toEqual([20_000, 25_000]);
    expect(dynamic.ops('revoke').map((call) => call.at - T0)).toEqual([30_000]);
    expect(events.at(-1)).toEqual({ type: 'revoked', key: key('ci', dynamicDb), reason: 'expired' });
    expect(manager.credentialFor(key('ci', dynamicDb))).toBeUndefined();
    expect(scheduler.pendingTimes()).toEqual([]);
  });

  test('a renewal that succeeds on retry keeps the credential alive', async () => {
    dynamic.renewFailures.push(new Error('blip'));
    await manager.ensure(grant('ci', dynamicDb, undefined, '30s'));
    await advance(40_000);
    expect(dynamic.ops('renew').map((call) => call.at - T0)).toEqual([20_000, 25_000]);
    expect(manager.credentialFor(key('ci', dynamicDb))!.expiresAt).toBe(T0 + 55_000);
    expect(dynamic.ops('revoke')).toHaveLength(0);
  });

  test('issuers that cannot renew are rotated: a new credential at two thirds, the old revoked at its expiry', async () => {
    const jwt = new RecordingIssuer('jwt', scheduler, false);
    start({ jwt });
    const api = resource('billing-api', { protocol: 'http', address: 'https://billing.example', credentials: { strategy: 'jwt' } });
    const first = await manager.ensure(grant('ci', api, [{ effect: 'allow', operations: ['read'] }], '30s'));
    await advance(20_000);
    const second = manager.credentialFor(key('ci', api))!;
    expect(second.id).not.toBe(first!.id);
    expect(jwt.ops('revoke')).toHaveLength(0);
    await advance(10_000);
    expect(jwt.ops('revoke').map((call) => [call.id, call.at - T0])).toEqual([[first!.id, 30_000]]);
    expect(events.map((event) => event.type)).toEqual(['issued', 'renewed']);
  });

  test('a role dropped behind our back is replaced by a fresh one', async () => {
    dynamic.renewFailures.push(new GatehouseError('GH_ERR_PG_DYNAMIC_ROLE_GONE', { role: 'x', resource: 'r' }));
    const first = await manager.ensure(grant('ci', dynamicDb));
    await advance(20_000);
    const replacement = manager.credentialFor(key('ci', dynamicDb))!;
    expect(replacement.id).not.toBe(first!.id);
    expect(dynamic.ops('issue')).toHaveLength(2);
    expect(events.map((event) => event.type)).toEqual(['issued', 'renewed']);
  });
});

describe('sync', () => {
  test('issues what is granted, re-scopes what changed, revokes what went away', async () => {
    await manager.sync([grant('ci', dynamicDb), grant('reporter', dynamicDb)]);
    expect(dynamic.ops('issue')).toHaveLength(2);
    const narrower = grant('ci', dynamicDb, [{ effect: 'allow', operations: ['read'], tables: ['orders'] }]);
    const result = await manager.sync([narrower]);
    expect(result.failures).toEqual([]);
    const renewal = dynamic.ops('renew')[0]!;
    expect(renewal.request!.policy.decide([{ operation: 'read', relation: { name: 'customers' } }]).effect).toBe('deny');
    expect(dynamic.ops('revoke')).toHaveLength(1);
    expect(events.map((event) => [event.type, event.key.identity])).toEqual([
      ['issued', 'ci'], ['issued', 'reporter'], ['renewed', 'ci'], ['revoked', 'reporter'],
    ]);
    await manager.sync([]);
    expect(manager.keys()).toEqual([]);
  });

  test('a failed re-scope keeps the old credential and is retried by the next sync', async () => {
    await manager.sync([grant('ci', dynamicDb)]);
    dynamic.renewFailures.push(new Error('lock timeout'));
    const changed = grant('ci', dynamicDb, [{ effect: 'allow', operations: ['read', 'write'] }]);
    expect((await manager.sync([changed])).failures).toHaveLength(1);
    expect(manager.credentialFor(key('ci', dynamicDb))).toBeDefined();
    expect((await manager.sync([changed])).failures).toEqual([]);
    expect(dynamic.ops('renew')).toHaveLength(2);
  });

  test('a failed revocation is reported, listeners are told at once, and it is retried until it succeeds', async () => {
    await manager.sync([grant('ci', dynamicDb)]);
    dynamic.revokeFailures.push(new Error('down'), new Error('down'));
    expect((await manager.sync([])).failures).toHaveLength(1);
    expect(events.at(-1)).toMatchObject({ type: 'revoked', reason: 'access-removed' });
    await advance(5_000);
    await advance(10_000);
    expect(dynamic.ops('revoke').map((call) => call.at - T0)).toEqual([0, 5_000, 15_000]);
    expect(scheduler.pendingTimes()).toEqual([]);
  });

  test('a strategy change issues from the new issuer and revokes the old credential at its expiry', async () => {
    const staticIssuer = new RecordingIssuer('static', scheduler, false);
    start({ 'postgres-dynamic': dynamic, static: staticIssuer });
    const before = await manager.ensure(grant('ci', dynamicDb));
    const switched = { ...dynamicDb, spec: { ...dynamicDb.spec, credentials: { strategy: 'static' as const, secretRef: { name: 'app' } } } };
    await manager.ensure(grant('ci', switched));
    expect(staticIssuer.ops('issue')).toHaveLength(1);
    await advance(30_000);
    expect(dynamic.ops('revoke').map((call) => call.id)).toEqual([before!.id]);
  });
});

describe('listeners, cleanup and shutdown', () => {
  test('a throwing listener does not stop the others; unsubscribe stops delivery', async () => {
    manager.subscribe(() => {
      throw new Error('listener bug');
    });
    const seen: string[] = [];
    const unsubscribe = manager.subscribe((event) => seen.push(event.type));
    await manager.ensure(grant('ci', dynamicDb));
    unsubscribe();
    await manager.sync([]);
    expect(seen).toEqual(['issued']);
    expect(events.map((event) => event.type)).toEqual(['issued', 'revoked']);
  });

  test('cleanupLeftovers tells each issuer which usernames are still in use', async () => {
    const live = await manager.ensure(grant('ci', dynamicDb));
    const result = await manager.cleanupLeftovers([dynamicDb, staticDb]);
    expect(result).toEqual({ removed: ['stale-role'], failures: [] });
    expect(dynamic.ops('cleanup').map((call) => call.id)).toEqual([live!.username]);
  });

  test('close stops renewals; close({revoke}) revokes everything; ensure afterwards is refused', async () => {
    await manager.ensure(grant('ci', dynamicDb));
    await manager.close();
    await advance(60_000);
    expect(dynamic.ops('renew')).toHaveLength(0);
    expect(dynamic.ops('revoke')).toHaveLength(0);

    start();
    await manager.ensure(grant('ci', dynamicDb));
    await manager.close({ revoke: true });
    expect(dynamic.ops('revoke')).toHaveLength(1);
    expect(events.at(-1)).toMatchObject({ type: 'revoked', reason: 'shutdown' });
    const refused = await manager.ensure(grant('ci', dynamicDb)).catch((error: unknown) => error);
    expect(isGatehouseError(refused, 'GH_ERR_CREDENTIAL_MANAGER_CLOSED')).toBe(true);
  });

  test('logs name credentials by id, never by password', async () => {
    dynamic.renewFailures.push(new Error('down'));
    const credential = await manager.ensure(grant('ci', dynamicDb));
    await advance(40_000);
    expect(logs.text).toContain(credential!.id);
    expect(logs.text).toContain('renewal failed');
    expect(logs.text).not.toContain(credential!.password);
  });
});
