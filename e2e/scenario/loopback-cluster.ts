// The scenario's default cluster, runnable on any machine: the loopback API server, the real
// `gatehouse operator` process on 127.0.0.1, a real PostgreSQL on 127.0.0.1, and the stand-in
// kubelet running each injected sidecar as a local process that the test (the app) reaches on loopback.
// Gatehouse is installed with `kubectl apply` of crds/ and config/deploy, or with `helm install` of
// charts/gatehouse, whose operator then runs with the installed Deployment's own arguments.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { V1Deployment } from '@kubernetes/client-node';
import { silentLogger } from '../../api/logging/logger.js';
import { freePort, startPostgres, type PostgresServer } from '../../testing/postgres-server.js';
import { startLoopbackApiServer, type LoopbackApiServer } from '../apiserver/loopback-api-server.js';
import { kubectlFailed, kubectlFor, type CommandResult, type Kubectl } from '../harness/kubectl.js';
import { REPO_ROOT } from '../harness/test-cluster.js';
import { waitFor } from '../harness/wait-for.js';
import { startStandInKubelet, type StandInKubelet } from '../kubelet/stand-in-kubelet.js';
import { APP_PSQL_ARGS, APP_PSQL_ENV, workloadNamespaceManifest, type LoopbackInstall, type ScenarioCluster } from './scenario-cluster.js';

const OPERATOR_NAMESPACE = 'gatehouse-system';
const OPERATOR_SERVICE = 'gatehouse-operator';
const SIDECAR_IMAGE = 'gatehouse/sidecar:e2e';
const OPERATOR_IMAGE = 'gatehouse/operator:e2e';
/**
 * Not `gatehouse`, so the chart's names (`<release>-operator`) differ from config/deploy's and the run
 * shows that the operator takes its Service name from the Deployment's arguments, not from a default.
 */
export const HELM_RELEASE = 'gatehouse-e2e';
export const HELM_OPERATOR = `${HELM_RELEASE}-operator`;
/** The chart's values for a loopback run: default values except the two images. */
export const HELM_VALUES: readonly string[] = ['--set', `image.repository=${OPERATOR_IMAGE.split(':')[0]!}`, '--set', `image.tag=${OPERATOR_IMAGE.split(':')[1]!}`, '--set', `sidecar.image=${SIDECAR_IMAGE}`];
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

interface OperatorPorts {
  readonly webhook: number;
  readonly controlPlane: number;
  readonly admin: number;
}

/**
 * What only a loopback run changes in the operator's arguments: every process shares one loopback
 * interface (ports, bind address), there is no cluster DNS (control-plane address), no in-cluster
 * config (kubeconfig) and no volume (recordings). Appended last, so they win over the installed ones.
 */
export function loopbackOperatorArgs(kubeconfigPath: string, recordingsDir: string, ports: OperatorPorts): string[] {
  return [
    '--kubeconfig', kubeconfigPath, '--host', '127.0.0.1',
    '--webhook-port', String(ports.webhook), '--control-plane-port', String(ports.controlPlane), '--admin-port', String(ports.admin),
    '--control-plane-address', `127.0.0.1:${ports.controlPlane}`, '--recordings-dir', recordingsDir,
  ];
}

/** config/deploy has no Deployment (nothing runs pods here): the arguments the kubectl install runs the operator with. */
function kubectlInstallArgs(): string[] {
  return ['operator', '--namespace', OPERATOR_NAMESPACE, '--service-name', OPERATOR_SERVICE, '--sidecar-image', SIDECAR_IMAGE];
}

/** The operator container's args in the Deployment `helm install` created, refusing anything but `gatehouse operator`. */
export function installedOperatorArgs(deployment: V1Deployment): string[] {
  const containers = deployment.spec?.template.spec?.containers ?? [];
  if (containers.length !== 1) throw new Error(`the installed Deployment has ${containers.length} containers, expected the operator alone`);
  const args = containers[0]!.args ?? [];
  if (args[0] !== 'operator') throw new Error(`the installed Deployment runs \`${args.join(' ')}\`, not \`gatehouse operator\``);
  return [...args];
}

async function startOperatorProcess(operatorArgs: readonly string[]): Promise<OperatorProcess> {
  const args = [...GATEHOUSE.slice(1), ...operatorArgs];
  // POD_NAME is the Lease holder's identity, which the Deployment takes from the downward API.
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

export interface LoopbackClusterOptions {
  readonly namespace?: string;
  /** kubectl (default): crds/ and config/deploy applied; helm: `helm install` of charts/gatehouse. */
  readonly install?: LoopbackInstall;
}

export async function startLoopbackCluster(options: LoopbackClusterOptions = {}): Promise<ScenarioCluster> {
  const parts: LoopbackParts = {};
  try {
    return await startParts(parts, options.namespace ?? 'payments', options.install ?? 'kubectl');
  } catch (error) {
    await closeParts(parts);
    throw error;
  }
}

/** Installs Gatehouse into the loopback API server and returns the `gatehouse` arguments its operator runs with. */
async function installGatehouse(kubectl: Kubectl, install: LoopbackInstall): Promise<string[]> {
  const ok = async (result: Promise<CommandResult>, args: readonly string[]): Promise<void> => {
    const done = await result;
    if (done.exitCode !== 0) throw kubectlFailed(args, done);
  };
  if (install === 'kubectl') {
    await ok(kubectl(['apply', '-f', 'crds/']), ['apply', '-f', 'crds/']);
    const deploy = ['apply', '-f', 'config/deploy/00-namespace.yaml', '-f', 'config/deploy/10-rbac.yaml', '-f', 'config/deploy/30-webhooks.yaml'];
    await ok(kubectl(deploy), deploy);
    return kubectlInstallArgs();
  }
  // The release namespace first, as a cluster admin would; Helm installs the CRDs from the chart's crds/.
  await ok(kubectl(['apply', '-f', '-'], { stdin: `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${OPERATOR_NAMESPACE}}\n` }), ['apply', '-f', '-']);
  const helmInstall = ['install', HELM_RELEASE, 'charts/gatehouse', '-n', OPERATOR_NAMESPACE, ...HELM_VALUES];
  await ok(kubectl.helm(helmInstall, { timeoutMs: 120_000 }), ['helm', ...helmInstall]);
  return installedOperatorArgs(await kubectl.json<V1Deployment>(['get', 'deployment', HELM_OPERATOR, '-n', OPERATOR_NAMESPACE]));
}

async function startParts(parts: LoopbackParts, namespace: string, install: LoopbackInstall): Promise<ScenarioCluster> {
  const operatorService = install === 'helm' ? HELM_OPERATOR : OPERATOR_SERVICE;
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-e2e-scenario-'));
  parts.workDir = workDir;
  const [webhook, controlPlane, admin, sidecarPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const postgres = await startPostgres();
  parts.postgres = postgres;
  // Webhook calls to the operator's Service land on the operator process on loopback.
  const apiServer = await startLoopbackApiServer({
    logger: silentLogger(),
    resolveService: (serviceNamespace, name) => {
      if (serviceNamespace !== OPERATOR_NAMESPACE || name !== operatorService) throw new Error(`no such service ${serviceNamespace}/${name}`);
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
  const installedArgs = await installGatehouse(kubectl, install);
  await kubectlOk(['apply', '-f', '-'], workloadNamespaceManifest(namespace));
  const operator = await startOperatorProcess([...installedArgs, ...loopbackOperatorArgs(kubeconfigPath, path.join(workDir, 'recordings'), { webhook, controlPlane, admin })]);
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
