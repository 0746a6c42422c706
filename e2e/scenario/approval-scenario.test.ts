// The end-to-end scenario of issue 6 in a cluster: the real kubectl applies crds/ and config/deploy
// (with the AccessRequest decision webhook) to the loopback API server; the real `gatehouse operator`
// process serves RequestApproval and the webhook; the stand-in kubelet runs the injected sidecar; a
// psql DELETE through it waits for a human. An approver (a ServiceAccount in namespace dba, so in
// group system:serviceaccounts:dba) lists it with `kubectl gatehouse requests` — the plugin in bin/,
// run by the real kubectl from PATH — and approves it, and the DELETE completes; a second one is
// denied and psql gets 42501 with the reason. Outsiders and the operator's own user are refused.
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../api/logging/logger.js';
import { freePort, startPostgres, type PostgresServer } from '../../testing/postgres-server.js';
import { startLoopbackApiServer, type LoopbackApiServer } from '../apiserver/loopback-api-server.js';
import { kubectlFor, kubeToolsFolder, type Kubectl } from '../harness/kubectl.js';
import { REPO_ROOT } from '../harness/test-cluster.js';
import { waitFor, waitForJsonPath } from '../harness/wait-for.js';
import { startStandInKubelet, type StandInKubelet } from '../kubelet/stand-in-kubelet.js';

const NAMESPACE = 'payments';
const SIDECAR_IMAGE = 'gatehouse/sidecar:e2e';
const GATEHOUSE = ['node', '--import', 'tsx', path.join(REPO_ROOT, 'cli/main.ts')];
const DB_USER = { user: 'orders_app', password: 'e2e-approvals-password-91c2' };
const APPROVER = 'system:serviceaccount:dba:alice';
/** Incoming-webhook URLs are credentials; this path stands for the token part of a real one. */
const SLACK_TOKEN_PATH = '/slack/T000/B000/e2e-slack-token';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

interface Notification {
  readonly path: string;
  readonly body: { type?: string; text?: string; accessRequest?: { namespace: string; name: string }; phase?: string; statement?: string; decidedBy?: string };
}

interface AccessRequestView {
  readonly metadata: { name: string; labels?: Record<string, string> };
  readonly spec: { identity: string; resource: string; policy: string; statement: string; requester?: string; approvers?: { groups?: string[] } };
  readonly status?: { phase?: string; decidedBy?: string; approvals?: { user: string; groups?: string[]; decision: string; reason?: string }[] };
}

let workDir: string;
let postgres: PostgresServer;
let apiServer: LoopbackApiServer;
let kubectl: Kubectl;
let toolsFolder: string;
let operator: ChildProcess | undefined;
let operatorLog = '';
let kubelet: StandInKubelet | undefined;
let notificationServer: Server;
const notifications: Notification[] = [];
let sidecarPort: number;
const ports = { webhook: 0, controlPlane: 0, admin: 0 };
const kubeconfigs = { admin: '', approver: '', outsider: '' };

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** psql as the app runs it in the pod; VERBOSITY verbose prints the SQLSTATE. */
function psqlThroughSidecar(sql: string): Promise<Run> {
  return run('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose', '-c', sql], {
    ...process.env, PGHOST: '127.0.0.1', PGPORT: String(sidecarPort), PGDATABASE: 'postgres', PGUSER: 'app', PGPASSWORD: 'anything', PGSSLMODE: 'disable',
  });
}

/**
 * `kubectl gatehouse ARGS` as a person runs it: the real kubectl finds the plugin on PATH (bin/ of
 * this checkout) and the plugin uses the kubeconfig kubectl was given. From the sources, since a
 * dist/ build may be older than the code under test.
 */
function kubectlGatehouse(kubeconfig: string, args: readonly string[]): Promise<Run> {
  return run(path.join(toolsFolder, 'kubectl'), ['gatehouse', ...args], {
    PATH: [path.join(REPO_ROOT, 'bin'), toolsFolder, process.env.PATH ?? ''].join(path.delimiter),
    HOME: path.join(workDir, 'home'), KUBECONFIG: kubeconfig, GATEHOUSE_FROM_SOURCE: '1',
  });
}

async function kubectlOk(args: readonly string[], stdin?: string): Promise<string> {
  const result = await kubectl(args, stdin === undefined ? {} : { stdin });
  if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${result.exitCode}): ${result.stderr}`);
  return result.stdout;
}

async function metricValue(port: number, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text.split('\n').filter((line) => pattern.test(line)).reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

/** Receives the operator's notifications: the generic webhook on /hook, the Slack-compatible one on /slack. */
async function startNotificationReceiver(): Promise<number> {
  notificationServer = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      notifications.push({ path: request.url ?? '', body: JSON.parse(body) as Notification['body'] });
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => notificationServer.listen(0, '127.0.0.1', resolve));
  return (notificationServer.address() as AddressInfo).port;
}

async function startOperatorProcess(notificationPort: number): Promise<void> {
  const args = [
    ...GATEHOUSE.slice(1), 'operator', '--kubeconfig', kubeconfigs.admin,
    '--namespace', 'gatehouse-system', '--service-name', 'gatehouse-operator',
    '--webhook-port', String(ports.webhook), '--control-plane-port', String(ports.controlPlane), '--admin-port', String(ports.admin),
    '--host', '127.0.0.1', '--control-plane-address', `127.0.0.1:${ports.controlPlane}`, '--sidecar-image', SIDECAR_IMAGE,
    '--approvals-webhook-url', `http://127.0.0.1:${notificationPort}/hook`,
  ];
  // The Slack URL through the env the chart fills from a Secret.
  const env = { ...process.env, POD_NAME: 'gatehouse-operator-e2e', GATEHOUSE_APPROVALS_SLACK_URL: `http://127.0.0.1:${notificationPort}${SLACK_TOKEN_PATH}` };
  const child = spawn(GATEHOUSE[0]!, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  operator = child;
  child.stdout.on('data', (chunk: Buffer) => (operatorLog += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (operatorLog += chunk.toString()));
  await waitFor(async () => operatorLog, (log) => /^ready$/m.test(log) || child.exitCode !== null, { timeoutMs: 60_000, intervalMs: 100, what: 'the operator to print ready' });
  if (child.exitCode !== null) throw new Error(`the operator exited (${child.exitCode}):\n${operatorLog}`);
}

/** A kubeconfig for ServiceAccount namespace:name, whose groups the API server derives from the namespace. */
async function serviceAccountKubeconfig(namespace: string, serviceAccount: string): Promise<string> {
  const token = await apiServer.issueServiceAccountToken({ namespace, serviceAccount, audiences: [apiServer.serviceAccountIssuer] });
  const file = path.join(workDir, `${namespace}-${serviceAccount}.kubeconfig`);
  await apiServer.writeKubeconfig(file, { token, namespace: NAMESPACE });
  return file;
}

const POLICY = `apiVersion: gatehouse.dev/v1alpha1
kind: AccessPolicy
metadata: {name: ci-approvals, namespace: ${NAMESPACE}}
spec:
  subjects: [{identity: ci-runner}]
  resources: [orders-db]
  rules:
    - {name: reads, effect: allow, operations: [read, transaction, session]}
    - name: deletes
      effect: require-approval
      operations: [delete]
      message: deletes on orders need a DBA
      approval: {approvers: {groups: ["system:serviceaccounts:dba"]}, timeout: 2m}
`;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-e2e-approvals-'));
  await mkdir(path.join(workDir, 'home'));
  [ports.webhook, ports.controlPlane, ports.admin, sidecarPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  postgres = await startPostgres();
  await postgres.psql(`
    CREATE ROLE ${DB_USER.user} LOGIN PASSWORD '${DB_USER.password}';
    CREATE TABLE orders (id int PRIMARY KEY, total int);
    INSERT INTO orders VALUES (1, 100), (2, 200), (3, 300);
    GRANT SELECT, DELETE ON orders TO ${DB_USER.user};`);
  apiServer = await startLoopbackApiServer({
    logger: silentLogger(),
    resolveService: (namespace, name) => {
      if (namespace !== 'gatehouse-system' || name !== 'gatehouse-operator') throw new Error(`no such service ${namespace}/${name}`);
      return `https://127.0.0.1:${ports.webhook}`;
    },
  });
  kubeconfigs.admin = path.join(workDir, 'kubeconfig');
  await apiServer.writeKubeconfig(kubeconfigs.admin);
  kubectl = await kubectlFor(REPO_ROOT, kubeconfigs.admin);
  toolsFolder = await kubeToolsFolder(REPO_ROOT);
  kubeconfigs.approver = await serviceAccountKubeconfig('dba', 'alice');
  kubeconfigs.outsider = await serviceAccountKubeconfig('frontend', 'bob');

  await kubectlOk(['apply', '-f', 'crds/']);
  await kubectlOk(['apply', '-f', 'config/deploy/00-namespace.yaml', '-f', 'config/deploy/10-rbac.yaml', '-f', 'config/deploy/30-webhooks.yaml']);
  await kubectlOk(['create', 'namespace', NAMESPACE]);
  await kubectlOk(['label', 'namespace', NAMESPACE, 'gatehouse.dev/inject=enabled']);
  await kubectlOk(['create', 'serviceaccount', 'ci-runner', '-n', NAMESPACE]);

  await startOperatorProcess(await startNotificationReceiver());
  // The real PostgreSQL of this test, with its own login, stands in for the sample database.
  const secret = await kubectlOk(['create', 'secret', 'generic', 'orders-db-admin', '-n', NAMESPACE,
    `--from-literal=username=${DB_USER.user}`, `--from-literal=password=${DB_USER.password}`, '--dry-run=client', '-o', 'yaml']);
  await kubectlOk(['apply', '-f', '-'], secret);
  await kubectlOk(['apply', '-f', 'config/samples/identities/ci-runner.yaml', '-f', 'config/samples/resources/orders-db.yaml']);
  await kubectlOk(['patch', 'protectedresource', 'orders-db', '-n', NAMESPACE, '--type', 'merge', '-p', JSON.stringify({
    spec: { address: `127.0.0.1:${postgres.port}`, database: 'postgres', tls: { mode: 'disable' }, sidecar: { port: sidecarPort } },
  })]);
  await kubectlOk(['apply', '-f', '-'], POLICY);

  kubelet = await startStandInKubelet({
    kubeconfigPath: kubeconfigs.admin, repoRoot: REPO_ROOT, namespace: NAMESPACE, logger: silentLogger(),
    imageCommands: { '*': GATEHOUSE }, workDir: path.join(workDir, 'kubelet'),
  });
  await kubectlOk(['apply', '-f', '-'], [
    'apiVersion: v1', 'kind: Pod', `metadata: {name: ci-job, namespace: ${NAMESPACE}}`,
    'spec:', '  serviceAccountName: ci-runner', '  containers:', '    - {name: app, image: postgres:15, command: [sleep, infinity]}', ''].join('\n'));
  await kubelet.waitForReady(NAMESPACE, 'ci-job', 60_000).catch((error: unknown) => {
    throw new Error(`${String(error)}\nsidecar log:\n${kubelet!.podProcess(NAMESPACE, 'ci-job')?.logs() ?? '(none)'}\noperator log:\n${operatorLog}`);
  });
  await waitForJsonPath(kubectl, { resource: 'accesspolicy', name: 'ci-approvals', namespace: NAMESPACE }, '{.status.conditions[?(@.type=="Ready")].status}', 'True', { timeoutMs: 20_000 });
}, 240_000);

afterAll(async () => {
  await kubelet?.stop();
  if (operator && operator.exitCode === null) {
    const exited = new Promise((resolve) => operator!.once('exit', resolve));
    operator.kill('SIGTERM');
    await exited;
  }
  await apiServer?.close();
  await postgres?.stop();
  await new Promise((resolve) => notificationServer?.close(resolve));
  if (workDir) await rm(workDir, { recursive: true, force: true });
}, 60_000);

/** Waits until the approver's `kubectl gatehouse requests --json` lists a pending request for `statement`. */
async function pendingRequestFor(statement: string): Promise<{ name: string; identity: string; resource: string; rule: string; approvals: string }> {
  const listed = await waitFor(
    () => kubectlGatehouse(kubeconfigs.approver, ['requests', '-n', NAMESPACE, '--json']),
    (result) => result.code === 0 && (JSON.parse(result.stdout) as { statement: string }[]).some((row) => row.statement === statement),
    { timeoutMs: 30_000, intervalMs: 300, what: `a pending request for ${statement}` },
  ).catch((error: unknown) => {
    throw new Error(`${String(error)}\noperator log:\n${operatorLog}\nsidecar log:\n${kubelet!.podProcess(NAMESPACE, 'ci-job')?.logs() ?? ''}`);
  });
  const rows = JSON.parse(listed.stdout) as { name: string; identity: string; resource: string; rule: string; approvals: string; statement: string }[];
  return rows.find((row) => row.statement === statement)!;
}

async function stillWaiting(held: Promise<Run>, ms: number): Promise<boolean> {
  const settled = await Promise.race([held.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), ms))]);
  return !settled;
}

describe('a held statement decided in the cluster with kubectl gatehouse', () => {
  it('lets reads through without asking', async () => {
    const select = await psqlThroughSidecar('SELECT count(*) FROM orders');
    expect({ code: select.code, stdout: select.stdout.trim(), stderr: select.stderr }).toEqual({ code: 0, stdout: '3', stderr: '' });
  });

  it('holds a DELETE until an approver approves it, then runs it', async () => {
    const statement = 'DELETE FROM orders WHERE id = 1';
    const held = psqlThroughSidecar(statement);
    const row = await pendingRequestFor(statement);
    expect(row).toMatchObject({ identity: 'ci-runner', resource: 'orders-db', rule: 'ci-approvals/deletes', approvals: '0/1' });
    expect(row.name).toMatch(/^ci-runner-/);

    // The table view a person reads, through the same plugin.
    const table = await kubectlGatehouse(kubeconfigs.approver, ['requests', '-n', NAMESPACE]);
    expect(table.stdout).toMatch(/^NAME\s+IDENTITY\s+RESOURCE\s+RULE\s+APPROVALS\s+EXPIRES\s+STATEMENT$/m);
    expect(table.stdout).toContain(row.name);

    // Nothing reached the database while it waits.
    expect(await stillWaiting(held, 500)).toBe(true);
    expect(await postgres.psql('SELECT count(*) FROM orders WHERE id = 1')).toBe('1');

    const request = await kubectl.json<AccessRequestView>(['get', 'accessrequest', row.name, '-n', NAMESPACE]);
    expect(request.spec).toMatchObject({ identity: 'ci-runner', resource: 'orders-db', policy: 'ci-approvals', statement });
    expect(request.metadata.labels).toMatchObject({ 'gatehouse.dev/identity': 'ci-runner', 'gatehouse.dev/resource': 'orders-db', 'gatehouse.dev/policy': 'ci-approvals' });
    expect(request.status?.phase).toBe('Pending');

    const approved = await kubectlGatehouse(kubeconfigs.approver, ['approve', row.name, '-n', NAMESPACE, '--reason', 'ticket 1234']);
    expect({ code: approved.code, stderr: approved.stderr }).toEqual({ code: 0, stderr: '' });
    expect(approved.stdout.trim()).toBe(`accessrequest/${row.name}: Approved (1/1 approvals), decided by ${APPROVER}`);

    const result = await held;
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(result.stdout.trim()).toBe('DELETE 1');
    expect(await postgres.psql('SELECT count(*) FROM orders WHERE id = 1')).toBe('0');

    // Who decided is what the API server authenticated, written by the decision webhook.
    const decided = await kubectl.json<AccessRequestView>(['get', 'accessrequest', row.name, '-n', NAMESPACE]);
    expect(decided.status).toMatchObject({ phase: 'Approved', decidedBy: APPROVER });
    expect(decided.status?.approvals).toEqual([expect.objectContaining({ user: APPROVER, decision: 'approve', reason: 'ticket 1234', groups: expect.arrayContaining(['system:serviceaccounts:dba']) })]);
  }, 90_000);

  it('refuses a decision from someone who is not an approver, and a phase set by hand', async () => {
    const statement = 'DELETE FROM orders WHERE id = 3';
    const held = psqlThroughSidecar(statement);
    const row = await pendingRequestFor(statement);

    const outsider = await kubectlGatehouse(kubeconfigs.outsider, ['approve', row.name, '-n', NAMESPACE]);
    expect(outsider.code).not.toBe(0);
    expect(outsider.stderr).toContain('system:serviceaccount:frontend:bob');
    // Even the cluster admin cannot skip the approvers by writing the phase.
    const byHand = await kubectl(['patch', 'accessrequest', row.name, '-n', NAMESPACE, '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Approved"}}']);
    expect(byHand.exitCode).not.toBe(0);
    expect(byHand.stderr).toContain('gatehouse:');
    // Nor edit the request's approvers.
    const spec = await kubectl(['patch', 'accessrequest', row.name, '-n', NAMESPACE, '--type=merge', '-p', '{"spec":{"approvers":{"groups":["system:serviceaccounts:frontend"]}}}']);
    expect(spec.exitCode).not.toBe(0);
    expect(await stillWaiting(held, 200)).toBe(true);

    const denied = await kubectlGatehouse(kubeconfigs.approver, ['deny', row.name, '-n', NAMESPACE]);
    expect(denied.code).toBe(0);
    expect((await held).code).not.toBe(0);
    expect(await postgres.psql('SELECT count(*) FROM orders WHERE id = 3')).toBe('1');
  }, 90_000);

  it('denies with kubectl gatehouse deny: psql gets 42501 with the reason, and nothing ran', async () => {
    const statement = 'DELETE FROM orders WHERE id = 2';
    const held = psqlThroughSidecar(statement);
    const row = await pendingRequestFor(statement);

    const denied = await kubectlGatehouse(kubeconfigs.approver, ['deny', row.name, '-n', NAMESPACE, '--reason', 'not during the freeze']);
    expect({ code: denied.code, stderr: denied.stderr }).toEqual({ code: 0, stderr: '' });
    expect(denied.stdout.trim()).toBe(`accessrequest/${row.name}: Denied (0/1 approvals), decided by ${APPROVER}`);

    const result = await held;
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('42501');
    expect(result.stderr).toContain(`approval denied by ${APPROVER}: not during the freeze`);
    expect(result.stderr).toContain(row.name);
    expect(await postgres.psql('SELECT count(*) FROM orders WHERE id = 2')).toBe('1');

    // The session is still usable afterwards; later reads need no approval.
    const select = await psqlThroughSidecar('SELECT count(*) FROM orders');
    expect(select.stdout.trim()).toBe('2');
  }, 90_000);

  it('lists nothing pending once every request is decided', async () => {
    const listed = await kubectlGatehouse(kubeconfigs.approver, ['requests', '-n', NAMESPACE]);
    expect(listed.stdout).toBe('No pending requests.\n');
  });

  it('counted the decisions on the operator\'s /metrics and notified both targets', async () => {
    expect(await metricValue(ports.admin, /^gatehouse_approvals_decided_total\{.*outcome="approved"/)).toBe(1);
    expect(await metricValue(ports.admin, /^gatehouse_approvals_decided_total\{.*outcome="denied"/)).toBe(2);
    expect(await metricValue(ports.admin, /^gatehouse_approvals_pending\b/)).toBe(0);

    const expected = 3 * 2 * 2; // three requests, requested + decided, to two targets
    await waitFor(async () => notifications.length, (count) => count >= expected, { timeoutMs: 15_000, intervalMs: 100, what: 'every notification' });
    const hook = notifications.filter((notification) => notification.path === '/hook').map((notification) => notification.body);
    expect(hook.filter((body) => body.type === 'gatehouse.approval.requested').map((body) => body.statement).sort()).toEqual([
      'DELETE FROM orders WHERE id = 1', 'DELETE FROM orders WHERE id = 2', 'DELETE FROM orders WHERE id = 3',
    ]);
    expect(hook.filter((body) => body.type === 'gatehouse.approval.decided').map((body) => body.phase).sort()).toEqual(['Approved', 'Denied', 'Denied']);
    const slack = notifications.filter((notification) => notification.path === SLACK_TOKEN_PATH);
    expect(slack).toHaveLength(6);
    for (const message of slack) expect(typeof message.body.text).toBe('string');
    expect(await metricValue(ports.admin, /^gatehouse_approvals_notifications_total\{.*outcome="sent"/)).toBe(expected);
    expect(operatorLog).not.toContain('e2e-slack-token');
  });
});
