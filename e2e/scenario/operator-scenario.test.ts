// The end-to-end scenario of issue 5, as a cluster admin meets Gatehouse: the real kubectl applies
// crds/, the deployment manifests and the sample policies to the loopback API server; the real
// `gatehouse operator` process reconciles them and serves its webhooks and control plane; a pod
// created with kubectl comes back with the sidecar injected; the stand-in kubelet runs that sidecar
// as a real process with the pod's projected token; psql goes through it to a real PostgreSQL.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { silentLogger } from '../../api/logging/logger.js';
import { freePort, startPostgres, type PostgresServer } from '../../testing/postgres-server.js';
import { startLoopbackApiServer, type LoopbackApiServer } from '../apiserver/loopback-api-server.js';
import { kubectlFor, type Kubectl } from '../harness/kubectl.js';
import { REPO_ROOT } from '../harness/test-cluster.js';
import { waitFor, waitForJsonPath } from '../harness/wait-for.js';
import { startStandInKubelet, type StandInKubelet } from '../kubelet/stand-in-kubelet.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { bufferedIO } from '../../cli/io.js';
import { runCli } from '../../cli/main.js';

const NAMESPACE = 'payments';
const SIDECAR_IMAGE = 'gatehouse/sidecar:e2e';
// The same CLI the images run, from source so the scenario never tests a stale build.
const GATEHOUSE = ['node', '--import', 'tsx', path.join(REPO_ROOT, 'cli/main.ts')];
const DB_USER = { user: 'orders_app', password: 'e2e-orders-password-7f3a' };

interface Psql {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

let workDir: string;
let postgres: PostgresServer;
let apiServer: LoopbackApiServer;
let kubectl: Kubectl;
let operator: ChildProcess | undefined;
let operatorLog = '';
let kubelet: StandInKubelet | undefined;
let sidecarPort: number;
const ports = { webhook: 0, controlPlane: 0, admin: 0 };

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Psql> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** psql as the app runs it inside the pod: to 127.0.0.1 at the sidecar's port, with no password of its own. */
function psqlThroughSidecar(sql: string): Promise<Psql> {
  return run('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql], {
    PGHOST: '127.0.0.1', PGPORT: String(sidecarPort), PGDATABASE: 'postgres', PGUSER: 'app', PGPASSWORD: 'anything', PGSSLMODE: 'disable',
  });
}

async function kubectlOk(args: readonly string[], stdin?: string): Promise<string> {
  const result = await kubectl(args, stdin === undefined ? {} : { stdin });
  if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${result.exitCode}): ${result.stderr}`);
  return result.stdout;
}

async function startOperatorProcess(kubeconfigPath: string): Promise<void> {
  const args = [
    ...GATEHOUSE.slice(1), 'operator', '--kubeconfig', kubeconfigPath,
    '--namespace', 'gatehouse-system', '--service-name', 'gatehouse-operator',
    '--webhook-port', String(ports.webhook), '--control-plane-port', String(ports.controlPlane), '--admin-port', String(ports.admin),
    '--host', '127.0.0.1', '--control-plane-address', `127.0.0.1:${ports.controlPlane}`, '--sidecar-image', SIDECAR_IMAGE,
    '--recordings-dir', path.join(workDir, 'recordings'),
  ];
  const child = spawn(GATEHOUSE[0]!, args, { cwd: REPO_ROOT, env: { ...process.env, POD_NAME: 'gatehouse-operator-e2e' }, stdio: ['ignore', 'pipe', 'pipe'] });
  operator = child;
  child.stdout.on('data', (chunk: Buffer) => (operatorLog += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (operatorLog += chunk.toString()));
  await waitFor(async () => operatorLog, (log) => /^ready$/m.test(log) || child.exitCode !== null, { timeoutMs: 60_000, intervalMs: 100, what: 'the operator to print ready' });
  if (child.exitCode !== null) throw new Error(`the operator exited (${child.exitCode}):\n${operatorLog}`);
}

async function metricValue(port: number, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text.split('\n').filter((line) => pattern.test(line)).reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-e2e-scenario-'));
  [ports.webhook, ports.controlPlane, ports.admin, sidecarPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  postgres = await startPostgres();
  await postgres.psql(`
    CREATE ROLE ${DB_USER.user} LOGIN PASSWORD '${DB_USER.password}';
    CREATE TABLE customers (id int PRIMARY KEY, name text, email text, card_number text);
    INSERT INTO customers VALUES (1, 'Ada Lovelace', 'ada@example.com', '4111 1111 1111 1111'), (2, 'Alan Turing', 'alan@example.com', '5500 0000 0000 0004');
    GRANT SELECT ON customers TO ${DB_USER.user};`);
  // Webhook calls to the operator's Service land on the operator process on loopback.
  apiServer = await startLoopbackApiServer({
    logger: silentLogger(),
    resolveService: (namespace, name) => {
      if (namespace !== 'gatehouse-system' || name !== 'gatehouse-operator') throw new Error(`no such service ${namespace}/${name}`);
      return `https://127.0.0.1:${ports.webhook}`;
    },
  });
  const kubeconfigPath = path.join(workDir, 'kubeconfig');
  await apiServer.writeKubeconfig(kubeconfigPath);
  kubectl = await kubectlFor(REPO_ROOT, kubeconfigPath);

  await kubectlOk(['apply', '-f', 'crds/']);
  await kubectlOk(['apply', '-f', 'config/deploy/00-namespace.yaml', '-f', 'config/deploy/10-rbac.yaml', '-f', 'config/deploy/30-webhooks.yaml']);
  await kubectlOk(['create', 'namespace', NAMESPACE]);
  await kubectlOk(['label', 'namespace', NAMESPACE, 'gatehouse.dev/inject=enabled']);
  await kubectlOk(['create', 'serviceaccount', 'ci-runner', '-n', NAMESPACE]);

  await startOperatorProcess(kubeconfigPath);
  // With the operator up, the validating webhook checks every Gatehouse object applied from here on.
  for (const folder of ['identities', 'secrets', 'resources', 'policies']) await kubectlOk(['apply', '-f', `config/samples/${folder}/`]);
  // Point the sample database at the real PostgreSQL of this test, with its own login.
  const secret = await kubectlOk(['create', 'secret', 'generic', 'orders-db-admin', '-n', NAMESPACE,
    `--from-literal=username=${DB_USER.user}`, `--from-literal=password=${DB_USER.password}`, '--dry-run=client', '-o', 'yaml']);
  await kubectlOk(['apply', '-f', '-'], secret);
  await kubectlOk(['patch', 'protectedresource', 'orders-db', '-n', NAMESPACE, '--type', 'merge', '-p', JSON.stringify({
    spec: { address: `127.0.0.1:${postgres.port}`, database: 'postgres', tls: { mode: 'disable' }, sidecar: { port: sidecarPort } },
  })]);

  kubelet = await startStandInKubelet({
    kubeconfigPath, repoRoot: REPO_ROOT, namespace: NAMESPACE, logger: silentLogger(),
    imageCommands: { '*': GATEHOUSE }, workDir: path.join(workDir, 'kubelet'),
  });
}, 180_000);

afterAll(async () => {
  await kubelet?.stop();
  if (operator && operator.exitCode === null) {
    const exited = new Promise((resolve) => operator!.once('exit', resolve));
    operator.kill('SIGTERM');
    await exited;
  }
  await apiServer?.close();
  await postgres?.stop();
  if (workDir) await rm(workDir, { recursive: true, force: true });
}, 60_000);

describe('a pod in an opted-in namespace, end to end', () => {
  it('reconciles the sample objects to Ready through the status subresource', async () => {
    for (const [resource, name] of [['nonhumanidentities', 'ci-runner'], ['protectedresources', 'orders-db'], ['accesspolicies', 'ci-read-only']] as const) {
      await waitForJsonPath(kubectl, { resource, name, namespace: NAMESPACE }, '{.status.conditions[?(@.type=="Ready")].status}', 'True', { timeoutMs: 20_000 });
    }
    const policy = await kubectl.json<{ metadata: { generation: number }; status: { observedGeneration?: number; conditions: { type: string; observedGeneration?: number }[] } }>(
      ['get', 'accesspolicy', 'ci-read-only', '-n', NAMESPACE]);
    const ready = policy.status.conditions.find((condition) => condition.type === 'Ready');
    expect(ready?.observedGeneration ?? policy.status.observedGeneration).toBe(policy.metadata.generation);
  });

  it('refuses an invalid policy at admission with the same message as gatehouse validate', async () => {
    const result = await kubectl(['apply', '-f', '-'], { stdin: [
      'apiVersion: gatehouse.dev/v1alpha1', 'kind: AccessPolicy', 'metadata: {name: broken, namespace: payments}',
      'spec:', '  subjects: [{identity: ci-runner}]', '  resources: [orders-db]', '  credentialTTL: 2h',
      '  rules: [{name: r, effect: allow, operations: [read]}]', ''].join('\n') });
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/GH_ERR_TTL_ABOVE_MAXIMUM|exceeds maxCredentialTTL/);
  });

  it('injects the sidecar into a pod created with kubectl, and the app never sees the credential', async () => {
    await kubectlOk(['apply', '-f', '-'], [
      'apiVersion: v1', 'kind: Pod', 'metadata: {name: ci-job, namespace: payments}',
      'spec:', '  serviceAccountName: ci-runner', '  containers:', '    - {name: app, image: postgres:15, command: [sleep, infinity]}', ''].join('\n'));
    const pod = await kubectl.json<{ metadata: { annotations?: Record<string, string> }; spec: { initContainers?: { name: string; restartPolicy?: string; image: string }[]; containers: { env?: { name: string; value?: string }[] }[] } }>(
      ['get', 'pod', 'ci-job', '-n', NAMESPACE]);
    const sidecar = pod.spec.initContainers?.find((container) => container.name === 'gatehouse-sidecar');
    expect(sidecar).toMatchObject({ restartPolicy: 'Always', image: SIDECAR_IMAGE });
    expect(pod.metadata.annotations?.['gatehouse.dev/injected']).toBe('true');
    const env = Object.fromEntries((pod.spec.containers[0]!.env ?? []).map((variable) => [variable.name, variable.value]));
    expect(env).toMatchObject({ PGHOST: '127.0.0.1', PGPORT: String(sidecarPort) });
    expect(JSON.stringify(pod)).not.toContain(DB_USER.password);
  });

  it('runs the sidecar, which gets its snapshot over gRPC and enforces the policy on psql', async () => {
    const view = await kubelet!.waitForReady(NAMESPACE, 'ci-job', 60_000).catch((error: unknown) => {
      throw new Error(`${String(error)}\nsidecar log:\n${kubelet!.podProcess(NAMESPACE, 'ci-job')?.logs() ?? '(none)'}\noperator log:\n${operatorLog}`);
    });
    await waitForJsonPath(kubectl, { resource: 'pod', name: 'ci-job', namespace: NAMESPACE }, '{.status.conditions[?(@.type=="Ready")].status}', 'True', { timeoutMs: 20_000 });

    const select = await psqlThroughSidecar('SELECT name, email, card_number FROM customers ORDER BY id');
    expect(select.stderr).toBe('');
    expect(select.stdout).toContain('Ada Lovelace');
    expect(select.stdout).not.toContain('ada@example.com');
    expect(select.stdout).not.toContain('4111 1111 1111 1111');

    const drop = await psqlThroughSidecar('DROP TABLE customers');
    expect(drop.code).not.toBe(0);
    expect(drop.stderr).toContain('schema changes go through migrations');
    expect(await postgres.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'customers'")).toBe('1');

    const blocked = await metricValue(view.adminPort, /^gatehouse_sidecar_blocked_statements_total\{.*rule="ci-read-only\/no-schema-changes"/);
    expect(blocked).toBeGreaterThanOrEqual(1);
  });

  it('denies within 2 s once the policy that allowed it is deleted', async () => {
    const before = await psqlThroughSidecar('SELECT count(*) FROM customers');
    expect(before.stdout.trim()).toBe('2');
    const deletedAt = Date.now();
    await kubectlOk(['delete', 'accesspolicy', 'ci-read-only', '-n', NAMESPACE, '--wait=false']);
    await waitFor(() => psqlThroughSidecar('SELECT count(*) FROM customers'), (result) => result.code !== 0, { timeoutMs: 2_000, intervalMs: 50, what: 'SELECT to be denied after the policy was deleted' });
    const elapsed = Date.now() - deletedAt;
    console.info(`policy deletion enforced on the live sidecar after ${elapsed} ms`);
    expect(elapsed).toBeLessThan(2_000);
    const after = await psqlThroughSidecar('SELECT count(*) FROM customers');
    expect(after.stderr).toMatch(/42501|denied|no policy/i);
  });

  it('logs no secret in the operator or the sidecar output', async () => {
    const sidecarLog = kubelet!.podProcess(NAMESPACE, 'ci-job')?.logs() ?? '';
    expect(sidecarLog.length).toBeGreaterThan(0);
    for (const log of [operatorLog, sidecarLog]) expect(log).not.toContain(DB_USER.password);
    // The pod's token file holds a token bound to this pod, not the operator's credentials.
    const token = (await readFile(path.join(kubelet!.podProcess(NAMESPACE, 'ci-job')!.volumeRoot, 'gatehouse-token', 'token'), 'utf8')).trim();
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { aud: string[]; 'kubernetes.io': { pod: { name: string } } };
    expect(claims.aud).toContain('gatehouse');
    expect(claims['kubernetes.io'].pod.name).toBe('ci-job');
  });

  it('has the psql sessions in the operator\'s recordings, sealed, verifying intact with the key it publishes', async () => {
    const recordings = path.join(workDir, 'recordings');
    const sessions = () => {
      const io = bufferedIO(REPO_ROOT);
      return runCli(['sessions', 'list', '--dir', recordings, '--json'], io).then(() => JSON.parse(io.out() || '[]') as { session: string; node: string; identity: string; resource: string; status: string }[]);
    };
    // The sidecar uploads in batches; every psql -c session has ended, so all of them end up sealed.
    const listed = await waitFor(sessions, (found) => found.length >= 3 && found.every((session) => session.status === 'sealed'), { timeoutMs: 15_000, intervalMs: 200, what: 'the sessions sealed in the operator\'s store' });
    for (const session of listed) expect(session).toMatchObject({ node: `${NAMESPACE}/ci-job`, identity: 'ci-runner', resource: 'orders-db' });

    const jwks = await fetch(`http://127.0.0.1:${ports.admin}/recordings/jwks.json`);
    expect(jwks.status).toBe(200);
    const keyFile = path.join(workDir, 'recording-key.jwks.json');
    await writeFile(keyFile, await jwks.text());
    const io = bufferedIO(REPO_ROOT);
    const code = await runCli(['sessions', 'verify', '--dir', recordings, '--key', keyFile], io);
    expect(io.out()).toContain(`${listed.length} file(s) intact, 0 problem(s)`);
    expect(code).toBe(0);

    // The denied DROP is in the recording, with the rule that denied it.
    const shown = await Promise.all(listed.map(async (session) => {
      const output = bufferedIO(REPO_ROOT);
      await runCli(['sessions', 'show', session.session, '--dir', recordings], output);
      return output.out();
    }));
    const drop = shown.find((text) => text.includes('DROP TABLE customers'));
    expect(drop).toMatch(/\[deny ddl rule=ci-read-only\/no-schema-changes\] DROP TABLE customers/);
  });
});
