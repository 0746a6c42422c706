// The operator's own connection to a postgres-dynamic resource, as the admin from the resource's
// Secret: where to connect (address, database, TLS mode and CA from the ProtectedResource), one
// short-lived client per operation, and errors that name the resource but never carry a secret.
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import type { ProtectedResource } from '../../api/kinds/kinds.js';
import { namespaceOf } from '../../api/manifests/config.js';
import { readCredentialSecret, type SecretLookup } from './credential-secret.js';
import { scrubbedMessage } from './secret-scrubber.js';

export interface PostgresTimeouts {
  /** Connecting and logging in. */
  readonly connectMs: number;
  /** Any one statement; GRANTs wait on table locks, so a stuck migration must not hang issuance. */
  readonly statementMs: number;
  readonly lockMs: number;
}

export const DEFAULT_TIMEOUTS: PostgresTimeouts = { connectMs: 10_000, statementMs: 30_000, lockMs: 10_000 };

/** Where and as whom the operator connects; `password` is the admin secret. */
export interface PostgresAdminTarget {
  /** namespace/name of the ProtectedResource, for messages. */
  readonly resource: string;
  /** namespace/name of the admin Secret, for messages. */
  readonly secret: string;
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  readonly password: string;
  /** TLS settings to try in order (`prefer` tries TLS, then plain), `false` meaning plain. */
  readonly attempts: readonly (ConnectionOptions | false)[];
}

/** host:port or [v6]:port; GH_ERR_RESOURCE_ADDRESS otherwise. */
export function parseHostPort(address: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:/[\]]+)):([0-9]{1,5})$/.exec(address);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535) {
    throw new GatehouseError('GH_ERR_RESOURCE_ADDRESS', { address, protocol: 'postgres', detail: 'expected host:port' });
  }
  return { host: match[1] ?? match[2]!, port };
}

async function readCaPem(lookup: SecretLookup, resource: ProtectedResource): Promise<string | undefined> {
  const reference = resource.spec.tls?.caSecretRef;
  if (reference === undefined) return undefined;
  const namespace = namespaceOf(resource);
  const key = reference.key ?? 'ca.crt';
  const secret = await lookup(namespace, reference.name);
  if (secret === undefined) throw new GatehouseError('GH_ERR_REF_UNKNOWN_CA_SECRET', { name: reference.name, namespace, key });
  const pem = secret.data[key];
  if (pem === undefined) throw new GatehouseError('GH_ERR_REF_CA_SECRET_KEY', { name: reference.name, key });
  return pem;
}

async function tlsAttempts(lookup: SecretLookup, resource: ProtectedResource, host: string): Promise<(ConnectionOptions | false)[]> {
  const mode = resource.spec.tls?.mode ?? 'prefer';
  const unverified: ConnectionOptions = { rejectUnauthorized: false };
  switch (mode) {
    case 'disable':
      return [false];
    case 'prefer':
      return [unverified, false];
    case 'require':
      return [unverified];
    case 'verify-full': {
      const ca = await readCaPem(lookup, resource);
      const serverName = resource.spec.tls?.serverName ?? host;
      // Node refuses SNI with an IP address; the certificate is still checked against it.
      const sni = isIP(serverName) === 0 ? { servername: serverName } : {};
      return [{ rejectUnauthorized: true, ...(ca === undefined ? {} : { ca }), ...sni }];
    }
  }
}

/** Resolves where and as whom to connect for `resource`, reading its admin Secret now. */
export async function adminTarget(lookup: SecretLookup, resource: ProtectedResource): Promise<PostgresAdminTarget> {
  const { host, port } = parseHostPort(resource.spec.address);
  const admin = await readCredentialSecret(lookup, resource);
  return {
    resource: `${namespaceOf(resource)}/${resource.metadata.name}`,
    secret: admin.secret,
    address: resource.spec.address,
    host,
    port,
    database: resource.spec.database ?? 'postgres',
    user: admin.username,
    password: admin.password,
    attempts: await tlsAttempts(lookup, resource, host),
  };
}

function clientConfig(target: PostgresAdminTarget, ssl: ConnectionOptions | false, timeouts: PostgresTimeouts): pg.ClientConfig {
  return {
    host: target.host,
    port: target.port,
    database: target.database,
    user: target.user,
    password: target.password,
    ssl,
    application_name: 'gatehouse-operator',
    connectionTimeoutMillis: timeouts.connectMs,
    statement_timeout: timeouts.statementMs,
    lock_timeout: timeouts.lockMs,
  };
}

async function connectOnce(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  // A server that terminates the connection emits 'error' on an idle client; the next query reports it.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
}

async function connect(target: PostgresAdminTarget, timeouts: PostgresTimeouts): Promise<pg.Client> {
  let lastError: unknown;
  for (const ssl of target.attempts) {
    try {
      return await connectOnce(clientConfig(target, ssl, timeouts));
    } catch (error) {
      lastError = error;
    }
  }
  throw new GatehouseError('GH_ERR_PG_ADMIN_CONNECT', {
    address: target.address,
    database: target.database,
    secret: target.secret,
    resource: target.resource,
    detail: scrubbedMessage(lastError, [target.password]),
  });
}

/** Runs `work` on a fresh admin connection and always closes it. */
export async function withAdminClient<T>(
  target: PostgresAdminTarget,
  timeouts: PostgresTimeouts,
  work: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = await connect(target, timeouts);
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Runs `work` inside BEGIN/COMMIT, rolling back on any error. */
export async function inTransaction<T>(client: pg.ClientBase, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** SQLSTATE of a PostgreSQL error, when it is one. */
export function sqlStateOf(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * A GatehouseError for a failed role operation. The driver error is not attached as `cause`:
 * loggers serialise causes, and a server message may echo what it was sent.
 */
export function roleFailure(
  action: string,
  role: string,
  target: PostgresAdminTarget,
  error: unknown,
  secrets: readonly (string | undefined)[],
): GatehouseError {
  if (isGatehouseError(error)) return error;
  return new GatehouseError('GH_ERR_PG_DYNAMIC_ROLE', {
    action,
    role,
    resource: target.resource,
    secret: target.secret,
    sqlstate: sqlStateOf(error) ?? 'none',
    detail: scrubbedMessage(error, [target.password, ...secrets]),
  });
}
