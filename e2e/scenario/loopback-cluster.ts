// The scenario's default cluster, runnable on any machine: the loopback API server, the real
// `gatehouse operator` process on 127.0.0.1, a real PostgreSQL on 127.0.0.1, and the stand-in
// kubelet running each injected sidecar as a local process that the test (the app) reaches on loopback.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../api/logging/logger.js';
import { freePort, startPostgres, type PostgresServer } from '../../testing/postgres-server.js';
import { startLoopbackApiServer, type LoopbackApiServer } from '../apiserver/loopback-api-server.js';
import { kubectlFailed, kubectlFor, type CommandResult, type Kubectl } from '../harness/kubectl.js';
import { REPO_ROOT } from '../harness/test-cluster.js';
import { waitFor } from '../harness/wait-for.js';
import { startStandInKubelet, type StandInKubelet } from '../kubelet/stand-in-kubelet.js';
import { APP_PSQL_ARGS, APP_PSQL_ENV, workloadNamespaceManifest, type ScenarioCluster } from './scenario-cluster.js';

const OPERATOR_NAMESPACE = 'gatehouse-system';
const OPERATOR_SERVICE = 'gatehouse-operator';
const SIDECAR_IMAGE = 'gatehouse/sidecar:e2e';
// The same CLI the images run, from source so the scenario never tests a stale build.
const GATEHOUSE = ['node', '--import', 'tsx', path.join(REPO_ROOT, 'cli/main.ts')];

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ exitCode: code ?? -1, stdout, stderr }));
  });
}

interface OperatorProcess {
  readonly child: ChildProcess;
  log(): string;
}

async function startOperatorProcess(kubeconfigPath: string, workDir: string, ports: { webhook: number; controlPlane: number; admin: number }): Promise<OperatorProcess> {
  const args = [
    ...GATEHOUSE.slice(1), 'operator', '--kubeconfig', kubeconfigPath,
    '--namespace', OPERATOR_NAMESPACE, '--service-name', OPERATOR_SERVICE,
    '--webhook-port', String(ports.webhook), '--control-plane-port', String(ports.controlPlane), '--admin-port', String(ports.admin),
    '--host', '127.0.0.1', '--control-plane-address', `127.0.0.1:${ports.controlPlane}`, '--sidecar-image', SIDECAR_IMAGE,
    '--recordings-dir', path.join(workDir, 'recordings'),
  ];
  const child = spawn(GATEHOUSE[0]!, args, { cwd: REPO_ROOT, env: { ...process.env, POD_NAME: 'gatehouse-operator-e2e' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  await waitFor(async () => log, (text) => /^ready$/m.test(text) || child.exitCode !== null, { timeoutMs: 60_000, intervalMs: 100, what: 'the operator to print ready' });
  if (child.exitCode !== null) throw new Error(`the operator exited (${child.exitCode}):\n${log}`);
  return { child, log: () => log };
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** Everything a loopback run owns, so close() can stop whatever got started even when start failed half-way. */
interface LoopbackParts {
  workDir?: string;
  postgres?: PostgresServer;
  apiServer?: LoopbackApiServer;
  operator?: OperatorProcess;
  kubelet?: StandInKubelet;
}

async function closeParts(parts: LoopbackParts): Promise<void> {
  await parts.kubelet?.stop();
  if (parts.operator) await stopProcess(parts.operator.child);
  await parts.apiServer?.close();
  await parts.postgres?.stop();
  if (parts.workDir) await rm(parts.workDir, { recursive: true, force: true });
}

export async function startLoopbackCluster(options: { namespace?: string } = {}): Promise<ScenarioCluster> {
  const parts: LoopbackParts = {};
  try {
    return await startParts(parts, options.namespace ?? 'payments');
  } catch (error) {
    await closeParts(parts);
    throw error;
  }
}

async function startParts(parts: LoopbackParts, namespace: string): Promise<ScenarioCluster> {
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-e2e-scenario-'));
  parts.workDir = workDir;
  const [webhook, controlPlane, admin, sidecarPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const postgres = await startPostgres();
  parts.postgres = postgres;
  // Webhook calls to the operator's Service land on the operator process on loopback.
  const apiServer = await startLoopbackApiServer({
    logger: silentLogger(),
    resolveService: (serviceNamespace, name) => {
      if (serviceNamespace !== OPERATOR_NAMESPACE || name !== OPERATOR_SERVICE) throw new Error(`no such service ${serviceNamespace}/${name}`);
      return `https://127.0.0.1:${webhook}`;
    },
  });
  parts.apiServer = apiServer;
  const kubeconfigPath = path.join(workDir, 'kubeconfig');
  await apiServer.writeKubeconfig(kubeconfigPath);
  const kubectl = await kubectlFor(REPO_ROOT, kubeconfigPath);
  const kubectlOk = async (args: readonly string[], stdin?: string): Promise<void> => {
    const result = await kubectl(args, stdin === undefined ? {} : { stdin });
    if (result.exitCode !== 0) throw kubectlFailed(args, result);
  };
  await kubectlOk(['apply', '-f', 'crds/']);
  await kubectlOk(['apply', '-f', 'config/deploy/00-namespace.yaml', '-f', 'config/deploy/10-rbac.yaml', '-f', 'config/deploy/30-webhooks.yaml']);
  await kubectlOk(['apply', '-f', '-'], workloadNamespaceManifest(namespace));
  const operator = await startOperatorProcess(kubeconfigPath, workDir, { webhook, controlPlane, admin });
  parts.operator = operator;

  const kubeletOf = (): StandInKubelet => {
    if (!parts.kubelet) throw new Error('startWorkloads() has not run: no kubelet runs the pods yet');
    return parts.kubelet;
  };
  const sidecarProcess = (pod: string) => {
    const view = kubeletOf().podProcess(namespace, pod);
    if (!view) throw new Error(`the stand-in kubelet runs no sidecar for ${namespace}/${pod}`);
    return view;
  };

  return {
    mode: 'loopback', kubectl, namespace, sidecarImage: SIDECAR_IMAGE, sidecarPort,
    databaseAddress: `127.0.0.1:${postgres.port}`,
    databaseSql: (sql) => postgres.psql(sql),
    async startWorkloads() {
      parts.kubelet = await startStandInKubelet({
        kubeconfigPath, repoRoot: REPO_ROOT, namespace, logger: silentLogger(),
        imageCommands: { '*': GATEHOUSE }, workDir: path.join(workDir, 'kubelet'),
      });
    },
    async waitForSidecar(pod, timeoutMs) {
      await kubeletOf().waitForReady(namespace, pod, timeoutMs).catch((error: unknown) => {
        throw new Error(`${String(error)}\nsidecar log:\n${kubeletOf().podProcess(namespace, pod)?.logs() ?? '(none)'}\noperator log:\n${operator.log()}`);
      });
    },
    // All pods share the host's loopback here, so the app is this test process at the sidecar's port.
    psqlInApp: (_pod, sql) => run('psql', [...APP_PSQL_ARGS, '-c', sql], { ...APP_PSQL_ENV, PGHOST: '127.0.0.1', PGPORT: String(sidecarPort) }),
    async sidecarMetrics(pod) {
      return (await fetch(`http://127.0.0.1:${sidecarProcess(pod).adminPort}/metrics`)).text();
    },
    sidecarLog: async (pod) => sidecarProcess(pod).logs(),
    sidecarToken: async (pod) => (await readFile(path.join(sidecarProcess(pod).volumeRoot, 'gatehouse-token', 'token'), 'utf8')).trim(),
    operatorLog: async () => operator.log(),
    recordingsDir: async () => path.join(workDir, 'recordings'),
    recordingKeys: async () => {
      const response = await fetch(`http://127.0.0.1:${admin}/recordings/jwks.json`);
      if (response.status !== 200) throw new Error(`GET /recordings/jwks.json answered ${response.status}`);
      return response.text();
    },
    close: () => closeParts(parts),
  };
}
