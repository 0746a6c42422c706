// `gatehouse operator` in-process against the loopback API server: prints `ready` with its ports,
// answers /readyz, and returns 0 once its signal aborts; bad flags fail before anything connects.
import { until } from '../../testing/async-checks.js';
import { bufferedIO } from '../io.js';
import { helpText, runCli } from '../main.js';
import { OPERATOR_ARGS as BASE, OPERATOR_START_MS, OPERATOR_TLS_ARGS as TLS, startOperatorCliFolder, type OperatorCliFolder } from './testing/operator-cli-fixture.js';

let folder: OperatorCliFolder;

beforeAll(async () => {
  folder = await startOperatorCliFolder('gatehouse-operator-cli-');
});

afterAll(async () => {
  await folder.close();
});

const io = () => bufferedIO(folder.dir);

describe('gatehouse operator', () => {
  test('prints ready with its ports, serves /readyz, and exits 0 when stopped', async () => {
    const cli = io();
    const exit = runCli([...BASE, ...TLS], cli);
    await until(() => cli.out().includes('ready\n'), OPERATOR_START_MS);
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

  test('an admission warm-up count that is not a whole number is refused before connecting', async () => {
    for (const value of ['-1', 'lots', '2.5', '']) {
      const cli = io();
      expect(await runCli([...BASE, ...TLS, `--admission-warmup-reviews=${value}`], cli)).toBe(1);
      expect(cli.err()).toContain('--admission-warmup-reviews');
    }
  });

  test('is listed in the help', async () => {
    expect(await helpText()).toContain('gatehouse operator');
  });
});
