// A throwaway command standing in for the sidecar image in the stand-in kubelet's tests: it prints
// its args, env and token file as one JSON line, serves /readyz on GATEHOUSE_ADMIN_PORT (after
// FAKE_READY_AFTER_MS), exits with code 3 after FAKE_EXIT_AFTER_MS if set, and on SIGTERM prints
// "terminating" and exits 0.
import { readFileSync } from 'node:fs';
import http from 'node:http';

const started = Date.now();
const readyAfterMs = Number(process.env.FAKE_READY_AFTER_MS ?? 0);
const tokenFile = process.env.GATEHOUSE_TOKEN_FILE;
let token = null;
try {
  token = tokenFile ? readFileSync(tokenFile, 'utf8') : null;
} catch (error) {
  token = `unreadable: ${error.message}`;
}
process.stdout.write(`${JSON.stringify({ argv: process.argv.slice(2), env: process.env, token })}\n`);

const server = http.createServer((request, response) => {
  const ready = Date.now() - started >= readyAfterMs;
  response.writeHead(request.url === '/readyz' && ready ? 200 : 503).end();
});
server.listen(Number(process.env.GATEHOUSE_ADMIN_PORT), '127.0.0.1');

if (process.env.FAKE_EXIT_AFTER_MS) setTimeout(() => process.exit(3), Number(process.env.FAKE_EXIT_AFTER_MS));
process.on('SIGTERM', () => {
  if (process.env.FAKE_IGNORE_SIGTERM === '1') {
    process.stdout.write('ignoring SIGTERM\n');
    return;
  }
  process.stdout.write('terminating\n');
  server.close();
  process.exit(0);
});
