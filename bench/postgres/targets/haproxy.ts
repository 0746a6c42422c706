// haproxy in plain TCP mode as the floor for any proxy: it copies bytes and knows nothing of the
// PostgreSQL protocol. One thread (nbthread 1), like pgbouncer and the sidecar's event loop, and no
// logging.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from '../../../testing/postgres-server.js';
import { waitForListening } from '../child-processes.js';
import type { BenchTarget, TargetContext, Upstream } from './target.js';

export function haproxyConfig(upstream: Upstream, port: number): string {
  return [
    'global',
    '  nbthread 1',
    '  maxconn 1000',
    '',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 1h',
    '  timeout server 1h',
    '',
    'frontend postgres',
    `  bind 127.0.0.1:${port}`,
    '  default_backend postgres',
    '',
    'backend postgres',
    `  server upstream ${upstream.host}:${upstream.port}`,
    '',
  ].join('\n');
}

export function haproxyTarget(context: TargetContext): BenchTarget {
  return {
    name: 'haproxy',
    async start(upstream) {
      const dir = join(context.workDir, 'haproxy');
      await mkdir(dir, { recursive: true });
      const port = await freePort();
      const configFile = join(dir, 'haproxy.cfg');
      await writeFile(configFile, haproxyConfig(upstream, port));
      // -db: stay in the foreground as a single process, so its pid is the one that proxies.
      const proc = context.processes.spawn('haproxy', context.binary('haproxy'), ['-db', '-f', configFile]);
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
