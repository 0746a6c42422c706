// `gatehouse operator` in-process against the loopback API server: prints `ready` with its ports,
// answers /readyz, and returns 0 once its signal aborts; bad flags fail before anything connects.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../api/logging/logger.js';
import { startLoopbackApiServer, type LoopbackApiServer } from '../../e2e/apiserver/loopback-api-server.js';
import { TEST_TLS } from '../../operator/control-plane/testing/discovery-fixture.js';
import type { CliIO } from '../io.js';
import { helpText, runCli } from '../main.js';

let apiServer: LoopbackApiServer;
let dir: string;

beforeAll(async () => {
  apiServer = await startLoopbackApiServer({ crdDir: 'crds', logger: silentLogger() });
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-operator-cli-'));
  await apiServer.writeKubeconfig(join(dir, 'kubeconfig'));
  await writeFile(join(dir, 'tls.crt'), TEST_TLS.certPem);
  await writeFile(join(dir, 'tls.key'), TEST_TLS.keyPem);
  await writeFile(join(dir, 'ca.crt'), TEST_TLS.caPem);
});

afterAll(async () => {
  await apiServer.close();
  await rm(dir, { recursive: true, force: true });
});

function io(): CliIO & { out: () => string; err: () => string; abort: () => void } {
  let out = '';
  let err = '';
  const controller = new AbortController();
  return {
    stdout: (text) => (out += text),
    stderr: (text) => (err += text),
    cwd: dir,
    signal: controller.signal,
    out: () => out,
    err: () => err,
    abort: () => controller.abort(),
  };
}

const BASE = ['operator', '--kubeconfig', 'kubeconfig', '--host', '127.0.0.1', '--control-plane-port', '0', '--webhook-port', '0', '--admin-port', '0', '--log-level', 'silent'];
const TLS = ['--tls-cert-file', 'tls.crt', '--tls-key-file', 'tls.key', '--tls-ca-file', 'ca.crt'];

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('gatehouse operator', () => {
  test('prints ready with its ports, serves /readyz, and exits 0 when stopped', async () => {
    const cli = io();
    const exit = runCli([...BASE, ...TLS], cli);
    await until(() => cli.out().includes('ready\n'));
    const adminPort = /metrics on :(\d+)/.exec(cli.out())?.[1];
    expect(adminPort).toBeDefined();
    const readyz = await fetch(`http://127.0.0.1:${adminPort}/readyz`);
    expect(readyz.status).toBe(200);
    cli.abort();
    expect(await exit).toBe(0);
    await expect(fetch(`http://127.0.0.1:${adminPort}/healthz`)).rejects.toThrow();
  });

  test('some but not all of the certificate files: a usage error naming the flags', async () => {
    const cli = io();
    expect(await runCli([...BASE, '--tls-cert-file', 'tls.crt'], cli)).toBe(2);
    expect(cli.err()).toContain('--tls-key-file');
  });

  test('a port that is not a port, or an unknown verification mode, is refused before connecting', async () => {
    const cli = io();
    expect(await runCli([...BASE, ...TLS, '--admin-port', '99999'], cli)).toBe(1);
    expect(cli.err()).toContain('GH_ERR_INVALID_ARGUMENT');
    const other = io();
    expect(await runCli([...BASE, ...TLS, '--identity-verification', 'trust-me'], other)).toBe(1);
    expect(other.err()).toContain('token-review or jwks');
  });

  test('is listed in the help', async () => {
    expect(await helpText()).toContain('gatehouse operator');
  });
});
