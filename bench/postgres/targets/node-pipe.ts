// A bare Node.js TCP proxy (socket.pipe() both ways, TCP_NODELAY, nothing else) as the ceiling for
// any proxy written for Node: it pays Node's stream and syscall costs per message and nothing more,
// so the gap between it and the sidecar is what inspecting every statement costs.
import { freePort } from '../../../testing/postgres-server.js';
import { waitForListening } from '../child-processes.js';
import { spawnNode, type BenchTarget, type TargetContext } from './target.js';

/** The whole proxy, run with `node -e` so that no loader or module of ours is in the process. */
export const NODE_PIPE_SOURCE = `
const net = require('node:net');
const [port, upstreamHost, upstreamPort] = process.argv.slice(1);
net.createServer((client) => {
  const upstream = net.connect(Number(upstreamPort), upstreamHost);
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
}).listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
`;

export function nodePipeTarget(context: TargetContext): BenchTarget {
  return {
    name: 'node-pipe',
    async start(upstream) {
      const port = await freePort();
      const proc = spawnNode(context, 'node-pipe', ['-e', NODE_PIPE_SOURCE, String(port), upstream.host, String(upstream.port)]);
      try {
        await waitForListening(proc, '127.0.0.1', port, context.startTimeoutMs);
      } catch (error) {
        await proc.stop();
        throw error;
      }
      return { host: '127.0.0.1', port, pid: proc.pid, stop: () => proc.stop() };
    },
  };
}
