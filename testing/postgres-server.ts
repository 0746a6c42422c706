// Starts a real, throwaway PostgreSQL server on 127.0.0.1 for tests and benchmarks, with users for
// each password method (SCRAM-SHA-256, MD5, cleartext) and optional TLS. Never used in production code.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, chmod, chown } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { freePort } from './free-port.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PostgresUser {
  readonly user: string;
  readonly password: string;
}

export interface PostgresServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly database: 'app';
  /** Superuser, SCRAM-SHA-256. */
  readonly admin: PostgresUser;
  /** Login role whose password is stored as MD5 and pg_hba asks for md5. */
  readonly md5User: PostgresUser;
  /** Login role authenticated with cleartext `password`. */
  readonly cleartextUser: PostgresUser;
  /** PEM CA that signed the server certificate (when started with tls). */
  readonly caPem?: string;
  readonly dataDir: string;
  /** Runs SQL as the admin with psql; returns stdout (tuples only, unaligned). */
  psql(sql: string, options?: { user?: PostgresUser }): Promise<string>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface PostgresServerOptions {
  readonly tls?: boolean;
  /** Extra postgresql.conf lines. */
  readonly settings?: readonly string[];
}

function findBinDir(): string {
  for (const version of ['17', '16', '15']) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    if (existsSync(join(dir, 'postgres'))) return dir;
  }
  throw new Error('PostgreSQL server binaries not found; install postgresql (see .ci/run).');
}

export { freePort };

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** initdb and postgres refuse to run as root: drop to the postgres user when we are root. */
async function runAsPostgres(binary: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const command = isRoot ? 'runuser' : binary;
  const fullArgs = isRoot ? ['-u', 'postgres', '--', binary, ...args] : [...args];
  const { stdout } = await run(command, fullArgs, { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

async function makeCertificates(dir: string): Promise<string> {
  const openssl = (args: string[]) => run('openssl', args, { cwd: dir });
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=gatehouse-test-ca',
    '-keyout', 'ca.key', '-out', 'ca.crt']);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr']);
  await writeFile(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
    '-extfile', 'san.ext', '-out', 'server.crt']);
  await chmod(join(dir, 'server.key'), 0o600);
  const { readFile } = await import('node:fs/promises');
  return readFile(join(dir, 'ca.crt'), 'utf8');
}

export async function startPostgres(options: PostgresServerOptions = {}): Promise<PostgresServer> {
  const bin = findBinDir();
  const root = await mkdtemp(join(tmpdir(), 'gatehouse-pg-'));
  const dataDir = join(root, 'data');
  const port = await freePort();
  const admin = { user: 'gatehouse_admin', password: `admin-${Math.random().toString(36).slice(2)}` };
  const md5User = { user: 'md5_user', password: 'md5-secret' };
  const cleartextUser = { user: 'plain_user', password: 'plain-secret' };
  await writeFile(join(root, 'pwfile'), `${admin.password}\n`);
  const caPem = options.tls ? await makeCertificates(root) : undefined;
  if (isRoot) {
    await run('chown', ['-R', 'postgres:postgres', root]);
    await chown(root, 101, 104).catch(() => undefined);
  }
  await runAsPostgres(join(bin, 'initdb'), ['-D', dataDir, '-U', admin.user, '--pwfile', join(root, 'pwfile'),
    '--auth=scram-sha-256', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
  const conf = [
    `port = ${port}`,
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${root}'`,
    'fsync = off',
    'max_connections = 200',
    ...(options.tls ? ["ssl = on", `ssl_cert_file = '${root}/server.crt'`, `ssl_key_file = '${root}/server.key'`] : []),
    ...(options.settings ?? []),
  ];
  await writeFile(join(dataDir, 'postgresql.auto.conf'), `${conf.join('\n')}\n`);
  await writeFile(join(dataDir, 'pg_hba.conf'), [
    `local all all scram-sha-256`,
    `host all ${md5User.user} 127.0.0.1/32 md5`,
    `host all ${cleartextUser.user} 127.0.0.1/32 password`,
    `host all all 127.0.0.1/32 scram-sha-256`,
    '',
  ].join('\n'));
  if (isRoot) await run('chown', ['-R', 'postgres:postgres', root]);
  const pgCtl = (action: string) =>
    runAsPostgres(join(bin, 'pg_ctl'), ['-D', dataDir, '-w', '-t', '30', '-l', join(root, 'server.log'), action]);
  await pgCtl('start');

  const psql = async (sql: string, opts: { user?: PostgresUser } = {}) => {
    const who = opts.user ?? admin;
    const { stdout } = await run('psql', ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port),
      '-U', who.user, '-d', who === admin ? 'postgres' : 'app', '-c', sql], { env: { ...process.env, PGPASSWORD: who.password } });
    return stdout.trim();
  };
  await psql(`CREATE DATABASE app`);
  await psql(`SET password_encryption = 'md5'; CREATE ROLE ${md5User.user} LOGIN PASSWORD '${md5User.password}'`);
  await psql(`CREATE ROLE ${cleartextUser.user} LOGIN PASSWORD '${cleartextUser.password}'`);
  await psql(`GRANT ALL ON DATABASE app TO ${md5User.user}, ${cleartextUser.user}`);

  return {
    host: '127.0.0.1',
    port,
    database: 'app',
    admin,
    md5User,
    cleartextUser,
    caPem,
    dataDir,
    psql,
    async restart() {
      await pgCtl('restart');
    },
    async stop() {
      await pgCtl('stop').catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    },
  };
}
