// The `postgres-dynamic` strategy: a PostgreSQL login role per identity and resource, created just in
// time by the admin from the resource's Secret, holding only the privileges the policy implies
// (postgres-grants.ts), and valid until the credential expires.
//
// Decisions (see README.md in this folder):
// - Renewal extends VALID UNTIL and re-syncs the grants on the same role with the same password.
//   Rotating to a new role would have to end the sessions of the old one, which would cut the app's
//   pooled connections every two thirds of a TTL; the password lives only in operator and sidecar memory.
// - The password never reaches the server: CREATE ROLE carries its SCRAM-SHA-256 verifier, so
//   log_statement and pg_stat_statements cannot leak it. No statement is ever logged.
// - The admin is made a member of every role it creates, which lets a non-superuser admin
//   (CREATEROLE) end the role's sessions and DROP OWNED BY it without pg_signal_backend.
// - Revocation: NOLOGIN first (no new sessions), end live sessions, then DROP OWNED BY + DROP ROLE.
// - Role operations on one server run one at a time: concurrent GRANTs on the same table (or
//   database) fail with "tuple concurrently updated", and each operation takes only milliseconds.
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { GatehouseError } from '../../api/errors.js';
import type { ProtectedResource } from '../../api/kinds/kinds.js';
import type { Logger } from '../../api/logging/logger.js';
import { silentLogger } from '../../api/logging/logger.js';
import { namespaceOf } from '../../api/manifests/config.js';
import type { CompiledPolicySet } from '../../api/policy/compile.js';
import {
  assertUsableTtl, credentialLifetime, type CredentialIssuer, type CredentialRequest, type IssuedCredential,
} from './credential-issuer.js';
import type { SecretLookup } from './credential-secret.js';
import {
  adminTarget, DEFAULT_TIMEOUTS, inTransaction, roleFailure, sqlStateOf, withAdminClient,
  type PostgresAdminTarget, type PostgresTimeouts,
} from './postgres-admin.js';
import { KeyedQueue } from './keyed-queue.js';
import { readCatalog, readHeldPrivileges } from './postgres-catalog.js';
import { planPrivileges, privilegeStatements } from './postgres-grants.js';
import { scramSha256Verifier } from './scram-verifier.js';
import { systemScheduler, type Clock } from './scheduler.js';

export const DEFAULT_ROLE_PREFIX = 'gh_';
/** VALID UNTIL has second precision and a login takes a moment: shorter lifetimes are useless. */
const MINIMUM_TTL_MS = 5_000;
const PREFIX_PATTERN = /^[a-z_][a-z0-9_]{0,39}$/;
const SQLSTATE_DEPENDENT_OBJECTS = '2BP01';

export interface PostgresDynamicIssuerOptions {
  /** Where the admin Secret (spec.credentials.secretRef) and CA Secret are read from. */
  readonly secrets: SecretLookup;
  readonly clock?: Clock;
  readonly logger?: Logger;
  /**
   * Prefix of every role this issuer creates; startup cleanup drops unknown roles with it, so give
   * each Gatehouse installation sharing a PostgreSQL server its own. Lower case, at most 40 characters.
   */
  readonly rolePrefix?: string;
  /** CONNECTION LIMIT of each role; unlimited when absent. */
  readonly connectionLimit?: number;
  /** How long to wait for a terminated session to exit before revocation fails. */
  readonly sessionEndTimeoutMs?: number;
  readonly timeouts?: Partial<PostgresTimeouts>;
  /** Password generator; tests pass one to check where a known password does (not) show up. */
  readonly generatePassword?: () => string;
}

/** 32 random bytes, base64url: ASCII (SASLprep is the identity) and about 256 bits. */
export function randomPassword(): string {
  return randomBytes(32).toString('base64url');
}

const ident = (name: string): string => pg.escapeIdentifier(name);
const literal = (value: string): string => pg.escapeLiteral(value);

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class PostgresDynamicIssuer implements CredentialIssuer {
  readonly strategy = 'postgres-dynamic';
  private readonly secrets: SecretLookup;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly prefix: string;
  private readonly ownName: RegExp;
  private readonly connectionLimit: number | undefined;
  private readonly sessionEndTimeoutMs: number;
  private readonly timeouts: PostgresTimeouts;
  private readonly generatePassword: () => string;
  /** Role operations, one at a time per server (host:port). */
  private readonly servers = new KeyedQueue();

  constructor(options: PostgresDynamicIssuerOptions) {
    const prefix = options.rolePrefix ?? DEFAULT_ROLE_PREFIX;
    if (!PREFIX_PATTERN.test(prefix)) {
      throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', {
        detail: `role prefix ${JSON.stringify(prefix)} must be lower-case letters, digits and _, starting with a letter or _, at most 40 characters`,
      });
    }
    this.secrets = options.secrets;
    this.clock = options.clock ?? systemScheduler;
    this.logger = (options.logger ?? silentLogger()).child({ component: 'postgres-dynamic-issuer' });
    this.prefix = prefix;
    // Cleanup touches only names this issuer could have made, never e.g. a DBA's `gh_admin`.
    this.ownName = new RegExp(`^${escapeRegExp(prefix)}[0-9a-f]{12}_[0-9a-f]{8}$`);
    this.connectionLimit = options.connectionLimit;
    this.sessionEndTimeoutMs = options.sessionEndTimeoutMs ?? 5_000;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.generatePassword = options.generatePassword ?? randomPassword;
  }

  /** `<prefix><hash of namespace/identity/resource>_<random>`: stable part for DBAs, random part per issue. */
  roleName(request: CredentialRequest): string {
    const owner = `${namespaceOf(request.identity)}/${request.identity.metadata.name}/${request.resource.metadata.name}`;
    const hash = createHash('sha256').update(owner).digest('hex').slice(0, 12);
    return `${this.prefix}${hash}_${randomBytes(4).toString('hex')}`;
  }

  /** Whether `name` has the shape of a role this issuer creates. */
  ownsRoleName(name: string): boolean {
    return this.ownName.test(name);
  }

  async issue(request: CredentialRequest): Promise<IssuedCredential> {
    assertUsableTtl(request, MINIMUM_TTL_MS);
    const role = this.roleName(request);
    const password = this.generatePassword();
    const verifier = await scramSha256Verifier(password);
    const lifetime = credentialLifetime(this.clock.now(), request.ttlMs);
    const target = await adminTarget(this.secrets, request.resource);
    const granted = await this.run(target, 'create', role, [password, verifier], (client) =>
      inTransaction(client, async () => {
        await client.query(this.createRoleSql(role, verifier, lifetime.expiresAt));
        // Membership lets a CREATEROLE (non-superuser) admin end this role's sessions and drop what it owns.
        await client.query(`GRANT ${ident(role)} TO CURRENT_USER`);
        await client.query(`COMMENT ON ROLE ${ident(role)} IS ${literal(this.describe(request))}`);
        return this.syncPrivileges(client, role, request.policy);
      }),
    );
    this.logger.info({ ...this.logContext(request), role, expiresAt: lifetime.expiresAt, statements: granted }, 'created dynamic role');
    return { strategy: 'postgres-dynamic', id: role, username: role, password, ...lifetime };
  }

  async renew(credential: IssuedCredential, request: CredentialRequest): Promise<IssuedCredential> {
    assertUsableTtl(request, MINIMUM_TTL_MS);
    const role = credential.username;
    const { expiresAt, renewAt } = credentialLifetime(this.clock.now(), request.ttlMs);
    const target = await adminTarget(this.secrets, request.resource);
    const changed = await this.run(target, 'renew', role, [credential.password], (client) =>
      inTransaction(client, async () => {
        if (!(await roleExists(client, role))) {
          throw new GatehouseError('GH_ERR_PG_DYNAMIC_ROLE_GONE', { role, resource: target.resource });
        }
        await client.query(`ALTER ROLE ${ident(role)} VALID UNTIL ${literal(new Date(expiresAt).toISOString())}`);
        return this.syncPrivileges(client, role, request.policy);
      }),
    );
    this.logger.info({ ...this.logContext(request), role, expiresAt, statements: changed }, 'renewed dynamic role');
    return { ...credential, expiresAt, renewAt };
  }

  async revoke(credential: IssuedCredential, resource: ProtectedResource): Promise<void> {
    const role = credential.username;
    const target = await adminTarget(this.secrets, resource);
    const dropped = await this.run(target, 'drop', role, [credential.password], (client) => this.dropRole(client, target, role));
    this.logger.info({ resource: target.resource, role, dropped }, 'revoked dynamic role');
  }

  async cleanupLeftovers(resource: ProtectedResource, keep: ReadonlySet<string>): Promise<readonly string[]> {
    const target = await adminTarget(this.secrets, resource);
    return this.run(target, 'clean up', `${this.prefix}*`, [], async (client) => {
      const leftovers = (await this.listOwnRoles(client)).filter((role) => !keep.has(role));
      const dropped: string[] = [];
      for (const role of leftovers) {
        if (await this.dropLeftover(client, target, role)) dropped.push(role);
      }
      if (dropped.length > 0) this.logger.info({ resource: target.resource, roles: dropped }, 'dropped leftover dynamic roles');
      return dropped;
    });
  }

  private createRoleSql(role: string, verifier: string, expiresAt: number): string {
    const limit = this.connectionLimit === undefined ? '' : ` CONNECTION LIMIT ${Math.max(1, Math.floor(this.connectionLimit))}`;
    return (
      `CREATE ROLE ${ident(role)} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT${limit}` +
      ` PASSWORD ${literal(verifier)} VALID UNTIL ${literal(new Date(expiresAt).toISOString())}`
    );
  }

  private describe(request: CredentialRequest): string {
    return `gatehouse: identity ${namespaceOf(request.identity)}/${request.identity.metadata.name} on resource ${request.resource.metadata.name}`;
  }

  private logContext(request: CredentialRequest): Record<string, string> {
    return {
      namespace: namespaceOf(request.identity),
      identity: request.identity.metadata.name,
      resource: request.resource.metadata.name,
    };
  }

  /** Moves the role's privileges to what `policy` implies now; returns how many statements that took. */
  private async syncPrivileges(client: pg.ClientBase, role: string, policy: CompiledPolicySet): Promise<number> {
    const catalog = await readCatalog(client);
    const current = await readHeldPrivileges(client, role);
    const statements = privilegeStatements(role, catalog, current, planPrivileges(policy, catalog));
    if (statements.length > 0) await client.query(statements.join(';\n'));
    return statements.length;
  }

  private async listOwnRoles(client: pg.ClientBase): Promise<string[]> {
    // starts_with, not LIKE: `_` in the prefix would be a LIKE wildcard.
    const { rows } = await client.query<{ rolname: string }>(
      'SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) AND NOT rolsuper AND rolname <> current_user ORDER BY 1',
      [this.prefix],
    );
    return rows.map((row) => row.rolname).filter((role) => this.ownsRoleName(role));
  }

  /** Drops one leftover; a role that still holds privileges in another database waits for that database's cleanup. */
  private async dropLeftover(client: pg.ClientBase, target: PostgresAdminTarget, role: string): Promise<boolean> {
    try {
      return await this.dropRole(client, target, role);
    } catch (error) {
      if (sqlStateOf(error) !== SQLSTATE_DEPENDENT_OBJECTS) throw error;
      this.logger.warn({ resource: target.resource, role }, 'leftover role still has privileges in another database; left for that resource');
      return false;
    }
  }

  /** NOLOGIN, end sessions, DROP OWNED BY, DROP ROLE; false when the role was already gone. */
  private async dropRole(client: pg.ClientBase, target: PostgresAdminTarget, role: string): Promise<boolean> {
    if (!(await roleExists(client, role))) return false;
    await client.query(`ALTER ROLE ${ident(role)} NOLOGIN`);
    await this.endSessions(client, target, role);
    await inTransaction(client, async () => {
      await client.query(`DROP OWNED BY ${ident(role)}`);
      await client.query(`DROP ROLE ${ident(role)}`);
    });
    return true;
  }

  /** Terminates every session of `role` and waits for them to exit: no session outlives its credential. */
  private async endSessions(client: pg.ClientBase, target: PostgresAdminTarget, role: string): Promise<void> {
    const sessions = 'FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()';
    const ended = await client.query<{ ended: number }>(
      `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, $2))::int AS ended ${sessions}`,
      [role, this.sessionEndTimeoutMs],
    );
    const left = await client.query<{ left: number }>(`SELECT count(*)::int AS left ${sessions}`, [role]);
    const count = left.rows[0]?.left ?? 0;
    if (count > 0) {
      throw new GatehouseError('GH_ERR_PG_SESSIONS_NOT_ENDED', { count, role, resource: target.resource, timeoutMs: this.sessionEndTimeoutMs });
    }
    const endedCount = ended.rows[0]?.ended ?? 0;
    if (endedCount > 0) this.logger.info({ resource: target.resource, role, sessions: endedCount }, 'ended live sessions of revoked role');
  }

  /** Runs `work` as the admin, after earlier work on the same server, turning failures into scrubbed GatehouseErrors. */
  private async run<T>(
    target: PostgresAdminTarget,
    action: string,
    role: string,
    secrets: readonly string[],
    work: (client: pg.Client) => Promise<T>,
  ): Promise<T> {
    try {
      return await this.servers.run(`${target.host}:${target.port}`, () => withAdminClient(target, this.timeouts, work));
    } catch (error) {
      throw roleFailure(action, role, target, error, secrets);
    }
  }
}

async function roleExists(client: pg.ClientBase, role: string): Promise<boolean> {
  const { rowCount } = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
  return (rowCount ?? 0) > 0;
}
