// pgbouncer in session mode as a reference proxy: single-threaded like the sidecar, speaks the
// protocol (SCRAM towards clients and towards PostgreSQL) but does not look inside statements.
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../../testing/postgres-server.js';
import { waitForListening } from '../child-processes.js';
import type { BenchTarget, TargetContext, Upstream } from './target.js';

const run = promisify(execFile);

function quoteUserlist(value: string): string {
  return `"${value.replaceAll('"', '""')}"`;
}

export function pgbouncerConfig(upstream: Upstream, port: number, authFile: string): string {
  return [
    '[databases]',
    `${upstream.database} = host=${upstream.host} port=${upstream.port} dbname=${upstream.database}`,
    '',
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    // The auth file holds the plain password, which lets pgbouncer both verify clients with SCRAM and
    // log into PostgreSQL with SCRAM as the same user (a SCRAM verifier alone would not be enough).
    'auth_type = scram-sha-256',
    `auth_file = ${authFile}`,
    'pool_mode = session',
    'max_client_conn = 200',
    'default_pool_size = 50',
    'ignore_startup_parameters = extra_float_digits',
    'log_connections = 0',
    'log_disconnections = 0',
    'log_pooler_errors = 1',
    'stats_period = 3600',
    '',
  ].join('\n');
}

export function pgbouncerTarget(context: TargetContext): BenchTarget {
  return {
    name: 'pgbouncer',
    async start(upstream) {
      const dir = join(context.workDir, 'pgbouncer');
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const port = await freePort();
      const authFile = join(dir, 'userlist.txt');
      const configFile = join(dir, 'pgbouncer.ini');
      await writeFile(authFile, `${quoteUserlist(upstream.user)} ${quoteUserlist(upstream.password)}\n`, { mode: 0o600 });
      await writeFile(configFile, pgbouncerConfig(upstream, port, authFile), { mode: 0o600 });
      // pgbouncer refuses to run as root; -u makes it switch user itself, so the pid we hold (and
      // whose memory we read) is pgbouncer's own, not that of a runuser wrapper.
      const isRoot = process.getuid?.() === 0;
      if (isRoot) await run('chown', ['-R', 'postgres:postgres', dir]);
      const args = isRoot ? ['-u', 'postgres', configFile] : [configFile];
      const proc = context.processes.spawn('pgbouncer', context.binary('pgbouncer'), args);
      try {
        await waitForListening(proc, '127.0.0.1', port);
      } catch (error) {
        await proc.stop();
        throw error;
      }
      return { host: '127.0.0.1', port, pid: proc.pid, stop: () => proc.stop() };
    },
  };
}
