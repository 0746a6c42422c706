// Applies the transparent-mode script (the one the redirect init container runs) inside a fresh
// Linux network namespace and shows real connections being redirected: the app's connection to a
// protected destination reaches the "sidecar", the sidecar uid's connection reaches the real
// server, and an unprotected port is left alone. Needs root, `ip netns` and iptables; it says so
// and is skipped where they are missing.
import { execFileSync, spawnSync } from 'node:child_process';
import { postgresResource } from './testing/injection-fixtures.js';
import { planRedirect, redirectScript, SIDECAR_UID } from './transparent-redirect.js';

function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  for (const tool of ['ip', 'iptables', 'ip6tables']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  // A container without CAP_SYS_ADMIN has the tools but cannot make a namespace.
  const probe = `gh-probe-${process.pid}`;
  if (spawnSync('ip', ['netns', 'add', probe]).status !== 0) return 'network namespaces cannot be created here';
  spawnSync('ip', ['netns', 'delete', probe]);
  return undefined;
}

const missing = missingPrerequisite();
if (missing) console.warn(`transparent-redirect netns test skipped: ${missing}`);
const maybe = missing ? it.skip : it;

/** Runs inside the namespace: fake upstreams and sidecars that name themselves, then the clients. */
const SCENARIO = String.raw`
import net from 'node:net';
import { execFile } from 'node:child_process';
const serve = (host, port, name) => new Promise((resolve) => {
  const server = net.createServer((socket) => socket.end(name));
  server.listen(port, host, () => resolve(server));
});
const servers = await Promise.all([
  serve('10.20.0.7', 5432, 'upstream legacy-db'),
  serve('10.20.0.8', 6432, 'upstream orders-db'),
  serve('10.20.0.7', 7000, 'unprotected'),
  serve('127.0.0.1', 15432, 'sidecar orders-db'),
  serve('127.0.0.1', 15433, 'sidecar legacy-db'),
]);
const CLIENT = "const s=require('net').connect(+process.argv[2],process.argv[1]);let d='';s.on('data',c=>d+=c);s.on('end',()=>console.log(d));s.on('error',e=>console.log('error '+e.code));";
// Asynchronous on purpose: the servers above share this event loop and must keep answering.
const dial = (host, port, uid) => new Promise((resolve) => {
  const options = { encoding: 'utf8', timeout: 5000, ...(uid === undefined ? {} : { uid, gid: uid }) };
  execFile(process.execPath, ['-e', CLIENT, host, String(port)], options, (error, stdout, stderr) => {
    resolve((stdout || stderr || String(error)).trim());
  });
});
const uid = Number(process.argv[1]);
console.log(JSON.stringify({
  appToLegacy: await dial('10.20.0.7', 5432),
  appToOrders: await dial('10.20.0.8', 6432),
  appToUnprotected: await dial('10.20.0.7', 7000),
  sidecarToLegacy: await dial('10.20.0.7', 5432, uid),
  sidecarToOrders: await dial('10.20.0.8', 6432, uid),
}));
for (const server of servers) server.close();
`;

describe('transparent mode in a real network namespace', () => {
  const namespace = `gh-redirect-${process.pid}`;

  afterAll(() => {
    if (!missing) spawnSync('ip', ['netns', 'delete', namespace]);
  });

  maybe('redirects the app to the sidecar and lets the sidecar uid through', () => {
    execFileSync('ip', ['netns', 'add', namespace]);
    const inside = (...argv: string[]) => execFileSync('ip', ['netns', 'exec', namespace, ...argv], { encoding: 'utf8' });
    inside('ip', 'link', 'set', 'lo', 'up');
    // The "remote" servers live on extra loopback addresses inside the namespace.
    inside('ip', 'addr', 'add', '10.20.0.7/32', 'dev', 'lo');
    inside('ip', 'addr', 'add', '10.20.0.8/32', 'dev', 'lo');
    const plan = planRedirect([
      postgresResource('legacy-db', 15433, '10.20.0.7:5432'),
      postgresResource('orders-db', 15432, 'orders-db.payments.svc:6432'),
    ]);
    const script = redirectScript(plan);
    inside('sh', '-c', script);
    // Running it twice (an init container restarted in the same namespace) must not stack rules.
    inside('sh', '-c', script);
    const nat = inside('iptables', '-t', 'nat', '-S');
    expect(nat.match(/-A OUTPUT -p tcp -j GATEHOUSE_REDIRECT/g)).toHaveLength(1);
    const output = execFileSync('ip', ['netns', 'exec', namespace, process.execPath, '--input-type=module', '-e', SCENARIO, String(SIDECAR_UID)], { encoding: 'utf8', timeout: 20_000 });
    expect(JSON.parse(output)).toEqual({
      appToLegacy: 'sidecar legacy-db',
      appToOrders: 'sidecar orders-db',
      appToUnprotected: 'unprotected',
      sidecarToLegacy: 'upstream legacy-db',
      sidecarToOrders: 'upstream orders-db',
    });
  });
});
