// The scenario's cluster when KUBECONFIG names a real one (kind, see e2e/README.md): Gatehouse
// installed with `helm upgrade --install` from charts/gatehouse with the images named by env, a
// PostgreSQL Deployment in a namespace unique to the run, and the app's psql run inside its pod
// with `kubectl exec`. The pure parts (values, manifests, command lines) are exported for tests.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { GatehouseError } from '../../api/errors.js';
import { kubectlFailed, kubectlFor, type CommandResult, type Kubectl } from '../harness/kubectl.js';
import { REPO_ROOT } from '../harness/test-cluster.js';
import { waitForJsonPath } from '../harness/wait-for.js';
import { APP_PSQL_ARGS, APP_PSQL_ENV, workloadNamespaceManifest, type ScenarioCluster } from './scenario-cluster.js';

export const RELEASE_NAME = 'gatehouse';
/** The chart's fullname for release `gatehouse`: Deployment, Services and ServiceAccount. */
export const OPERATOR_DEPLOYMENT = 'gatehouse-operator';
export const OPERATOR_ADMIN_PORT = 9464;
/** operator/admission/pod-injection.ts: SIDECAR_ADMIN_PORT, TOKEN_FILE, SIDECAR_CONTAINER. */
export const SIDECAR_ADMIN_PORT = 15090;
export const SIDECAR_TOKEN_FILE = '/var/run/secrets/gatehouse/token';
export const SIDECAR_CONTAINER = 'gatehouse-sidecar';
/** The sample ProtectedResource's port (config/samples/resources/orders-db.yaml): every pod has its own loopback. */
export const SIDECAR_PORT = 15432;
export const RECORDINGS_DIR = '/var/lib/gatehouse/recordings';
export const POSTGRES_MANIFEST = path.join(REPO_ROOT, 'e2e/scenario/orders-postgres.yaml');
export const POSTGRES_NAME = 'orders-postgres';
export const POSTGRES_SECRET = 'orders-postgres-superuser';

export interface RealClusterConfig {
  readonly kubeconfigPath: string;
  readonly operatorImage: string;
  readonly sidecarImage: string;
  /** The workload namespace, unique per run. */
  readonly namespace: string;
  /** Where the Helm release and the operator live, also unique per run. */
  readonly releaseNamespace: string;
  /** GATEHOUSE_E2E_KEEP=1 leaves the release and both namespaces in place for a look after the run. */
  readonly keep: boolean;
}

// registry[:port]/path[:tag][@sha256:hex]: no spaces or shell characters, as the injection webhook requires.
const IMAGE = /^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$/;

function configError(detail: string): GatehouseError {
  return new GatehouseError('GH_ERR_E2E_CLUSTER_CONFIG', { detail });
}

function requiredImage(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name]?.trim();
  // Both images must be named: a run must never install whatever happens to be tagged in someone's cluster.
  if (!value) throw configError(`${name} is not set (the image built from images/${name.includes('OPERATOR') ? 'operator' : 'sidecar'}.Dockerfile and loaded with \`kind load docker-image\`)`);
  if (!IMAGE.test(value)) throw configError(`${name}=${value} is not an image reference like gatehouse/operator:e2e`);
  if (!/[:@]/.test(value.split('/').pop() ?? '') || /:latest$/.test(value)) {
    throw configError(`${name}=${value} needs a tag other than latest: kind-loaded images are only used with imagePullPolicy IfNotPresent, which untagged and :latest images do not get`);
  }
  return value;
}

/** Reads the run's settings from the environment; `id` names the namespaces (random by default). */
export function realClusterConfig(env: NodeJS.ProcessEnv, id: string = randomBytes(4).toString('hex')): RealClusterConfig {
  const kubeconfigPath = env.KUBECONFIG?.trim();
  if (!kubeconfigPath) throw configError('KUBECONFIG is not set');
  // kubectl accepts a colon-separated list; the harness hands the tools one file.
  if (kubeconfigPath.includes(path.delimiter)) throw configError(`KUBECONFIG=${kubeconfigPath} lists several files; name the one for the test cluster`);
  if (!/^[a-z0-9]{1,16}$/.test(id)) throw configError(`run id ${id} is not 1-16 lowercase letters and digits`);
  const namespace = `gatehouse-e2e-${id}`;
  return {
    kubeconfigPath: path.resolve(kubeconfigPath),
    operatorImage: requiredImage(env, 'GATEHOUSE_E2E_OPERATOR_IMAGE'),
    sidecarImage: requiredImage(env, 'GATEHOUSE_E2E_SIDECAR_IMAGE'),
    namespace, releaseNamespace: `${namespace}-system`,
    keep: env.GATEHOUSE_E2E_KEEP === '1',
  };
}

/** The chart's image values for a reference: repository plus tag, or plus digest. */
export function chartImage(reference: string): { repository: string; tag?: string; digest?: string } {
  const [name, digest] = reference.split('@') as [string, string | undefined];
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  const hasTag = colon > slash;
  return {
    repository: hasTag ? name.slice(0, colon) : name,
    ...(hasTag ? { tag: name.slice(colon + 1) } : {}),
    ...(digest ? { digest } : {}),
  };
}

/** The values the run installs the chart with. */
export function helmValues(config: RealClusterConfig): Record<string, unknown> {
  return {
    image: { ...chartImage(config.operatorImage), pullPolicy: 'IfNotPresent' },
    sidecar: { image: config.sidecarImage },
    // One replica: the sidecar's recordings all land in one operator's folder, which the test copies out.
    replicaCount: 1,
    podDisruptionBudget: { enabled: false },
    podAntiAffinity: 'none',
    logLevel: 'debug',
    grafana: { dashboard: { enabled: false } },
    // On an emptyDir (the chart's default), at the path the test copies them from.
    recordings: { enabled: true },
  };
}

export function helmValuesYaml(config: RealClusterConfig): string {
  return `# Written by e2e/scenario/real-cluster.ts for one e2e run.\n${stringify(helmValues(config))}`;
}

export function helmInstallArgs(config: RealClusterConfig, valuesFile: string): string[] {
  return ['upgrade', '--install', RELEASE_NAME, 'charts/gatehouse', '--namespace', config.releaseNamespace,
    '--values', valuesFile, '--wait', '--timeout', '5m'];
}

/** The superuser password of the run's PostgreSQL, in a Secret that orders-postgres.yaml reads. */
export function postgresSecretManifest(password: string): string {
  if (!/^[A-Za-z0-9]+$/.test(password)) throw new Error('the generated password must be alphanumeric');
  return ['apiVersion: v1', 'kind: Secret', 'metadata:', `  name: ${POSTGRES_SECRET}`, 'type: Opaque', 'stringData:', `  password: ${password}`, ''].join('\n');
}

export function releaseNamespaceManifest(config: RealClusterConfig): string {
  return ['apiVersion: v1', 'kind: Namespace', 'metadata:', `  name: ${config.releaseNamespace}`, '  labels: {app.kubernetes.io/part-of: gatehouse-e2e}', ''].join('\n');
}

/** psql as the app container runs it: PGHOST/PGPORT come from the env the injection webhook put into the pod. */
export function appPsqlArgs(namespace: string, pod: string, sql: string): string[] {
  const env = Object.entries(APP_PSQL_ENV).map(([name, value]) => `${name}=${value}`);
  return ['exec', '--namespace', namespace, pod, '--container', 'app', '--', 'env', ...env, 'psql', ...APP_PSQL_ARGS, '-c', sql];
}

/** SQL as the database superuser, over the server's own Unix socket (trusted by the postgres image). */
export function databaseSqlArgs(namespace: string, sql: string): string[] {
  return ['exec', '--namespace', namespace, `deployment/${POSTGRES_NAME}`, '--container', 'postgres', '--',
    'psql', '-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-U', 'postgres', '-d', 'postgres', '-c', sql];
}

/** An HTTP GET to a pod's port through the API server's proxy, so no port-forward or node access is needed. */
export function podProxyArgs(namespace: string, pod: string, port: number, urlPath: string): string[] {
  return ['get', '--raw', `/api/v1/namespaces/${namespace}/pods/${pod}:${port}/proxy${urlPath}`];
}

export function cleanupCommands(config: RealClusterConfig): { tool: 'helm' | 'kubectl'; args: string[] }[] {
  return [
    { tool: 'helm', args: ['uninstall', RELEASE_NAME, '--namespace', config.releaseNamespace, '--timeout', '2m'] },
    { tool: 'kubectl', args: ['delete', 'namespace', config.namespace, config.releaseNamespace, '--ignore-not-found', '--wait=true', '--timeout=180s'] },
  ];
}

async function ok(kubectl: Kubectl, args: readonly string[], options: { stdin?: string; timeoutMs?: number } = {}): Promise<string> {
  const result = await kubectl(args, options);
  if (result.exitCode !== 0) throw kubectlFailed(args, result);
  return result.stdout;
}

async function helmOk(kubectl: Kubectl, args: readonly string[], timeoutMs: number): Promise<void> {
  const result = await kubectl.helm(args, { timeoutMs });
  if (result.exitCode !== 0) throw kubectlFailed(['(helm)', ...args], result);
}

export async function startRealCluster(env: NodeJS.ProcessEnv): Promise<ScenarioCluster> {
  const config = realClusterConfig(env);
  const kubectl = await kubectlFor(REPO_ROOT, config.kubeconfigPath);
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-e2e-cluster-'));
  const close = async (): Promise<void> => {
    try {
      if (!config.keep) {
        for (const command of cleanupCommands(config)) {
          const result = command.tool === 'helm' ? await kubectl.helm(command.args, { timeoutMs: 180_000 }) : await kubectl(command.args, { timeoutMs: 240_000 });
          if (result.exitCode !== 0) console.warn(`cleanup: ${command.tool} ${command.args.join(' ')} failed: ${result.stderr.trim()}`);
        }
      } else {
        console.info(`GATEHOUSE_E2E_KEEP=1: left release ${RELEASE_NAME} in ${config.releaseNamespace} and namespace ${config.namespace}`);
      }
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  };
  try {
    await install(kubectl, config, workDir);
  } catch (error) {
    await close();
    throw error;
  }
  return clusterView(kubectl, config, workDir, close);
}

async function install(kubectl: Kubectl, config: RealClusterConfig, workDir: string): Promise<void> {
  // Helm installs CRDs only when absent; applying them first keeps a reused cluster's CRDs current.
  await ok(kubectl, ['apply', '--server-side', '--force-conflicts', '-f', 'crds/'], { timeoutMs: 120_000 });
  await ok(kubectl, ['apply', '-f', '-'], { stdin: releaseNamespaceManifest(config) });
  await ok(kubectl, ['apply', '-f', '-'], { stdin: workloadNamespaceManifest(config.namespace) });

  await ok(kubectl, ['apply', '--namespace', config.namespace, '-f', '-'], { stdin: postgresSecretManifest(randomBytes(18).toString('hex')) });
  await ok(kubectl, ['apply', '--namespace', config.namespace, '-f', POSTGRES_MANIFEST]);

  const valuesFile = path.join(workDir, 'values.yaml');
  await writeFile(valuesFile, helmValuesYaml(config));
  await helmOk(kubectl, helmInstallArgs(config, valuesFile), 330_000);
  await ok(kubectl, ['rollout', 'status', `deployment/${OPERATOR_DEPLOYMENT}`, '--namespace', config.releaseNamespace, '--timeout=300s'], { timeoutMs: 320_000 });
  await ok(kubectl, ['rollout', 'status', `deployment/${POSTGRES_NAME}`, '--namespace', config.namespace, '--timeout=300s'], { timeoutMs: 320_000 });
}

function clusterView(kubectl: Kubectl, config: RealClusterConfig, workDir: string, close: () => Promise<void>): ScenarioCluster {
  const { namespace, releaseNamespace } = config;
  const operatorPod = async (): Promise<string> => {
    const name = await ok(kubectl, ['get', 'pods', '--namespace', releaseNamespace, '--selector', `app.kubernetes.io/name=gatehouse-operator,app.kubernetes.io/instance=${RELEASE_NAME}`,
      '--field-selector', 'status.phase=Running', '-o', 'jsonpath={.items[0].metadata.name}']);
    if (!name.trim()) throw new Error(`no running operator pod in ${releaseNamespace}`);
    return name.trim();
  };
  const operatorLog = () => ok(kubectl, ['logs', `deployment/${OPERATOR_DEPLOYMENT}`, '--namespace', releaseNamespace, '--all-containers', '--tail=-1']);
  let copies = 0;
  return {
    mode: 'real-cluster', kubectl, namespace, sidecarImage: config.sidecarImage, sidecarPort: SIDECAR_PORT,
    databaseAddress: `${POSTGRES_NAME}.${namespace}.svc:5432`,
    databaseSql: async (sql) => (await ok(kubectl, databaseSqlArgs(namespace, sql))).trim(),
    startWorkloads: async () => undefined,
    async waitForSidecar(pod, timeoutMs) {
      await waitForJsonPath(kubectl, { resource: 'pod', name: pod, namespace }, `{.status.initContainerStatuses[?(@.name=="${SIDECAR_CONTAINER}")].ready}`, 'true', { timeoutMs })
        .catch(async (error: unknown) => {
          const sidecar = await kubectl(['logs', pod, '--namespace', namespace, '--container', SIDECAR_CONTAINER, '--tail=200']);
          throw new Error(`${String(error)}\nsidecar log:\n${sidecar.stdout || sidecar.stderr}\noperator log:\n${await operatorLog().catch(String)}`);
        });
    },
    psqlInApp: (pod, sql): Promise<CommandResult> => kubectl(appPsqlArgs(namespace, pod, sql)),
    sidecarMetrics: (pod) => ok(kubectl, podProxyArgs(namespace, pod, SIDECAR_ADMIN_PORT, '/metrics')),
    sidecarLog: (pod) => ok(kubectl, ['logs', pod, '--namespace', namespace, '--container', SIDECAR_CONTAINER, '--tail=-1']),
    sidecarToken: async (pod) => (await ok(kubectl, ['exec', '--namespace', namespace, pod, '--container', SIDECAR_CONTAINER, '--', 'cat', SIDECAR_TOKEN_FILE])).trim(),
    operatorLog,
    async recordingsDir() {
      // A fresh copy each time: the caller polls until the sidecar's uploads are sealed.
      const target = path.join(workDir, `recordings-${++copies}`);
      await ok(kubectl, ['cp', '--container', 'operator', `${releaseNamespace}/${await operatorPod()}:${RECORDINGS_DIR}`, target], { timeoutMs: 120_000 });
      return target;
    },
    recordingKeys: async () => ok(kubectl, podProxyArgs(releaseNamespace, await operatorPod(), OPERATOR_ADMIN_PORT, '/recordings/jwks.json')),
    close,
  };
}
