// `gatehouse operator --recordings-dir` in-process against the loopback API server: the checkpoint
// key is created in a Secret of the operator's namespace and reused by the next start (another
// replica, a restart), its public JWKS is served on the admin port, and recording flags are checked
// before anything connects.
import { calculateJwkThumbprint, type JWK } from 'jose';
import { checkpointSignerFromPem } from '../../api/recordings/checkpoint.js';
import { RESOURCE_TYPES, type KubeObject } from '../../operator/kube/kube-client.js';
import { until } from '../../testing/async-checks.js';
import { bufferedIO } from '../io.js';
import { runCli } from '../main.js';
import { OPERATOR_ARGS, OPERATOR_START_MS, OPERATOR_TLS_ARGS, startOperatorCliFolder, type OperatorCliFolder } from './testing/operator-cli-fixture.js';

let folder: OperatorCliFolder;

beforeAll(async () => {
  folder = await startOperatorCliFolder('gatehouse-operator-recordings-');
  // config/deploy creates the operator's namespace; the key Secret goes there.
  await kube().create(RESOURCE_TYPES.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'gatehouse-system' } });
});

function kube() {
  return folder.kubeClient();
}

afterAll(async () => {
  await folder.close();
});

const io = () => bufferedIO(folder.dir);
const BASE = [...OPERATOR_ARGS, ...OPERATOR_TLS_ARGS];

/** Runs the operator until it is ready, fetches the JWKS from its admin port, and stops it. */
async function publishedKeys(args: readonly string[]): Promise<{ status: number; keys: JWK[] }> {
  const cli = io();
  const exit = runCli([...BASE, ...args], cli);
  await until(() => cli.out().includes('ready\n') || cli.err() !== '', OPERATOR_START_MS);
  const adminPort = /metrics on :(\d+)/.exec(cli.out())?.[1];
  if (adminPort === undefined) throw new Error(`the operator did not start: ${cli.err()}`);
  const response = await fetch(`http://127.0.0.1:${adminPort}/recordings/jwks.json`);
  const body = response.status === 200 ? ((await response.json()) as { keys: JWK[] }) : { keys: [] };
  cli.abort();
  expect(await exit).toBe(0);
  return { status: response.status, keys: body.keys };
}

describe('gatehouse operator --recordings-dir', () => {
  test('creates the signing key Secret once, reuses it on the next start, and publishes its public JWKS', async () => {
    const first = await publishedKeys(['--recordings-dir', 'recordings', '--recordings-retention-days', '30', '--recordings-max-bytes', '1000000']);
    expect(first.status).toBe(200);
    expect(first.keys).toHaveLength(1);
    const [key] = first.keys;
    expect(key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(key).not.toHaveProperty('d');
    expect(key!.kid).toBe(await calculateJwkThumbprint({ kty: key!.kty, crv: key!.crv, x: key!.x, y: key!.y }));

    // The Secret holds the private key the published key belongs to.
    const secret = await kube().get<KubeObject & { data?: Record<string, string> }>(RESOURCE_TYPES.secrets, 'gatehouse-system', 'gatehouse-recording-key');
    const pem = Buffer.from(secret?.data?.['key.pem'] ?? '', 'base64').toString('utf8');
    expect((await checkpointSignerFromPem(pem)).kid).toBe(key!.kid);

    const second = await publishedKeys(['--recordings-dir', 'recordings']);
    expect(second.keys.map((published) => published.kid)).toEqual([key!.kid]);
  }, 60_000);

  test('without --recordings-dir the JWKS is absent and says how to turn recordings on', async () => {
    const cli = io();
    const exit = runCli(BASE, cli);
    await until(() => cli.out().includes('ready\n'), OPERATOR_START_MS);
    const adminPort = /metrics on :(\d+)/.exec(cli.out())?.[1];
    const response = await fetch(`http://127.0.0.1:${adminPort}/recordings/jwks.json`);
    expect(response.status).toBe(404);
    expect(await response.text()).toContain('--recordings-dir');
    cli.abort();
    expect(await exit).toBe(0);
  }, 60_000);

  test('retention flags without a folder, or that are not positive numbers, are refused before connecting', async () => {
    const stray = io();
    expect(await runCli([...BASE, '--recordings-retention-days', '7'], stray)).toBe(2);
    expect(stray.err()).toContain('--recordings-retention-days needs --recordings-dir');
    const bad = io();
    expect(await runCli([...BASE, '--recordings-dir', 'recordings', '--recordings-max-bytes', 'lots'], bad)).toBe(1);
    expect(bad.err()).toContain('--recordings-max-bytes lots is not a positive number');
  });
});
