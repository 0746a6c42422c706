// The seam between the e2e scenario's steps and the cluster they run on: the scenario talks to a
// ScenarioCluster only, and the loopback driver (loopback-cluster.ts) or the real-cluster driver
// (real-cluster.ts) decides how Gatehouse is installed and how the app reaches its sidecar.
import { parseAllDocuments } from 'yaml';
import { GatehouseError } from '../../api/errors.js';
import type { CommandResult, Kubectl } from '../harness/kubectl.js';

export type ScenarioMode = 'loopback' | 'real-cluster';
/** How the loopback driver installs Gatehouse: `kubectl apply` of crds/ and config/deploy, or `helm install` of the chart. */
export type LoopbackInstall = 'kubectl' | 'helm';

/** psql as the app runs it inside its pod: no password of its own, the sidecar holds the credential. */
export const APP_PSQL_ENV: Readonly<Record<string, string>> = {
  PGDATABASE: 'postgres', PGUSER: 'app', PGPASSWORD: 'anything', PGSSLMODE: 'disable',
};
export const APP_PSQL_ARGS: readonly string[] = ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1'];

export interface ScenarioCluster {
  readonly mode: ScenarioMode;
  readonly kubectl: Kubectl;
  /** The workload namespace, created and labelled gatehouse.dev/inject=enabled by the driver. */
  readonly namespace: string;
  /** The image the injection webhook puts into pods. */
  readonly sidecarImage: string;
  /** Where the app finds the sidecar inside its pod (ProtectedResource spec.sidecar.port). */
  readonly sidecarPort: number;
  /** host:port at which a sidecar reaches the scenario's PostgreSQL (ProtectedResource spec.address). */
  readonly databaseAddress: string;
  /** Runs SQL on the scenario's PostgreSQL as its superuser; stdout, tuples only, unaligned. */
  databaseSql(sql: string): Promise<string>;
  /** Starts what runs admitted pods (the stand-in kubelet on loopback; nothing in a real cluster). */
  startWorkloads(): Promise<void>;
  /** Resolves once the pod's injected sidecar is ready, or throws with its and the operator's logs. */
  waitForSidecar(pod: string, timeoutMs: number): Promise<void>;
  /** `psql -c SQL` run as the pod's app, through the sidecar at PGHOST/PGPORT. */
  psqlInApp(pod: string, sql: string): Promise<CommandResult>;
  /** The sidecar's Prometheus text from its admin port. */
  sidecarMetrics(pod: string): Promise<string>;
  sidecarLog(pod: string): Promise<string>;
  /** The projected ServiceAccount token the sidecar authenticates with. */
  sidecarToken(pod: string): Promise<string>;
  operatorLog(): Promise<string>;
  /** A local folder holding the operator's recordings as they are now (a fresh copy in a real cluster). */
  recordingsDir(): Promise<string>;
  /** The JWKS the operator publishes at /recordings/jwks.json. */
  recordingKeys(): Promise<string>;
  close(): Promise<void>;
}

/**
 * KUBECONFIG selects the real cluster, as issue 5 asks; GATEHOUSE_E2E_LOOPBACK=1 keeps the loopback
 * API server for a developer whose shell has a KUBECONFIG for other work.
 */
export function scenarioMode(env: NodeJS.ProcessEnv): ScenarioMode {
  if (env.GATEHOUSE_E2E_LOOPBACK === '1') return 'loopback';
  return env.KUBECONFIG && env.KUBECONFIG.trim() !== '' ? 'real-cluster' : 'loopback';
}

/** GATEHOUSE_E2E_INSTALL picks the loopback installation (kubectl when unset); any other value is refused, not ignored. */
export function loopbackInstall(env: NodeJS.ProcessEnv): LoopbackInstall {
  const value = env.GATEHOUSE_E2E_INSTALL?.trim() ?? '';
  if (value === '' || value === 'kubectl') return 'kubectl';
  if (value === 'helm') return 'helm';
  throw new GatehouseError('GH_ERR_E2E_INSTALL_MODE', { value });
}

/** Rewrites metadata.namespace of every object in a manifest stream, so the samples land in the run's namespace. */
export function intoNamespace(manifests: string, namespace: string): string {
  const documents = parseAllDocuments(manifests);
  const out: string[] = [];
  for (const document of documents) {
    if (document.errors.length > 0) throw document.errors[0]!;
    const object: unknown = document.toJS();
    if (object === null || object === undefined) continue;
    if (typeof object !== 'object' || Array.isArray(object)) throw new Error('a manifest document is not an object');
    document.setIn(['metadata', 'namespace'], namespace);
    out.push(document.toString());
  }
  return out.map((text) => (text.startsWith('---') ? text : `---\n${text}`)).join('');
}

/** The workload namespace, labelled so the injection webhook adds sidecars to its pods. */
export function workloadNamespaceManifest(namespace: string): string {
  return ['apiVersion: v1', 'kind: Namespace', 'metadata:', `  name: ${namespace}`, '  labels: {gatehouse.dev/inject: enabled}', ''].join('\n');
}
