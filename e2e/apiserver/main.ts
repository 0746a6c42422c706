// Runs the loopback API server as a process: `node --import tsx e2e/apiserver/main.ts --crds crds
// --kubeconfig PATH [--port N]`. Writes an admin kubeconfig, prints `ready <url>`, serves until SIGTERM.
import { parseArgs } from 'node:util';
import { createLogger } from '../../api/logging/logger.js';
import { startLoopbackApiServer } from './loopback-api-server.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { crds: { type: 'string' }, kubeconfig: { type: 'string' }, port: { type: 'string' }, namespace: { type: 'string' } },
    strict: true,
  });
  if (values.kubeconfig === undefined) {
    process.stderr.write('usage: main.ts --kubeconfig PATH [--crds DIR] [--port N] [--namespace NS]\n');
    process.exit(2);
  }
  const port = values.port === undefined ? 0 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`--port ${values.port} is not a port number (0-65535)\n`);
    process.exit(2);
  }
  const logger = createLogger({ name: 'loopback-api-server' });
  const server = await startLoopbackApiServer({ crdDir: values.crds, port, logger });
  await server.writeKubeconfig(values.kubeconfig, { namespace: values.namespace });
  process.stdout.write(`ready ${server.url}\n`);
  const stop = (): void => {
    logger.info('SIGTERM: closing watches and connections');
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`loopback API server failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
