// The cluster the webhook benchmark measures: the loopback API server in this process, the real
// operator (`node dist/cli/main.js operator`) in a process of its own, as it is deployed, the
// webhook configurations of config/deploy/30-webhooks.yaml, and the sample identities, resources
// and policies, in namespace payments (opted in to injection) and baseline (not opted in).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  AdmissionregistrationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type V1MutatingWebhookConfiguration,
  type V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { silentLogger } from '../../api/logging/logger.js';
import { startLoopbackApiServer, type LoopbackApiServer } from '../../e2e/apiserver/loopback-api-server.js';
import { freePort } from '../../testing/free-port.js';

export const INJECTED_NAMESPACE = 'payments';
export const BASELINE_NAMESPACE = 'baseline';
const OPERATOR_NAMESPACE = 'gatehouse-system';
const SERVICE_ACCOUNTS = ['ci-runner', 'backup-agent', 'billing'];

export interface WebhookCluster {
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  /** https://127.0.0.1:PORT of the operator's webhook server, and the CA it put into the webhook configuration. */
  readonly webhookUrl: string;
  readonly webhookCaPem: string;
  /** Deletes the ValidatingWebhookConfiguration, to time reconciling without admission's share. */
  removeValidatingWebhook(): Promise<void>;
  /** The operator's /metrics text. */
  operatorMetrics(): Promise<string>;
  /**
   * Everything the operator printed: its logs (stderr), and stdout, where V8's tracing flags
   * (--trace-gc in --operator-node-options) write; for a failed run's report or --operator-output.
   */
  operatorLogs(): string;
  /**
   * CPU time the operator's main thread (its event loop) has used so far, in ms, from Linux's
   * /proc/PID/schedstat (nanoseconds; NaN elsewhere): unlike latency, it hardly depends on what
   * else runs on the machine, so it shows what one review costs the loop.
   */
  operatorMainThreadCpuMs(): Promise<number>;
  /**
   * CPU time of all the operator's threads so far, in ms (/proc/PID/task/TID/schedstat; NaN off Linux):
   * beside the event loop, V8's background compiler and GC helpers, which compete with it and with the
   * load generator for the same cores.
   */
  operatorProcessCpuMs(): Promise<number>;
  /** The operator's GC pauses that started between two Date.now() readings; empty without `operatorGc`. */
  operatorGcPauses(fromMs: number, toMs: number): GcPause[];
  close(): Promise<void>;
}

/** One garbage collection in the operator, as gc-observer.mjs reports it. */
export interface GcPause {
  /** Epoch ms. */
  readonly startMs: number;
  readonly durationMs: number;
  /** perf_hooks' kind: 1 scavenge (minor), 2 mark-compact (major), 4 incremental marking, 8 weak callbacks. */
  readonly kind: number;
}

const GC_LINE = /^gatehouse-bench-gc (\S+) (\S+) (\d+)$/;

/** A line gc-observer.mjs printed, or undefined for any other line of the operator's stdout. */
export function parseGcLine(line: string): GcPause | undefined {
  const match = GC_LINE.exec(line);
  if (!match) return undefined;
  const pause = { startMs: Number(match[1]), durationMs: Number(match[2]), kind: Number(match[3]) };
  return Number.isFinite(pause.startMs) && Number.isFinite(pause.durationMs) ? pause : undefined;
}

type Manifest = Record<string, unknown> & { kind?: string; metadata?: { name?: string; namespace?: string } };

async function manifestsIn(folder: string): Promise<Manifest[]> {
  const manifests: Manifest[] = [];
  for (const file of (await readdir(folder)).filter((name) => /\.ya?ml$/.test(name)).sort()) {
    for (const document of parseAllDocuments(await readFile(path.join(folder, file), 'utf8'))) {
      const value = document.toJS() as Manifest | null;
      if (value?.kind) manifests.push(value);
    }
  }
  return manifests;
}

/** The loopback API server stores Secrets as given, so stringData is encoded here as kubectl would. */
function encodeStringData(secret: Manifest): Manifest {
  const { stringData, ...rest } = secret as Manifest & { stringData?: Record<string, string>; data?: Record<string, string> };
  if (!stringData) return secret;
  const encoded = Object.fromEntries(Object.entries(stringData).map(([key, value]) => [key, Buffer.from(value).toString('base64')]));
  return { ...rest, data: { ...(rest.data as Record<string, string> | undefined), ...encoded } };
}

const PLURALS: Record<string, string> = {
  NonHumanIdentity: 'nonhumanidentities',
  ProtectedResource: 'protectedresources',
  AccessPolicy: 'accesspolicies',
};

/** The NODE_OPTIONS images/operator.Dockerfile sets (webhook-cluster.test.ts holds the two together). */
export const OPERATOR_IMAGE_NODE_OPTIONS: readonly string[] = ['--max-semi-space-size=8'];

export interface WebhookClusterOptions {
  /** The operator's --log-level; by default info, what the chart and config/deploy run it with. */
  readonly operatorLogLevel?: string;
  /** Write a V8 CPU profile of the operator into this folder when it exits (node --cpu-prof). */
  readonly operatorCpuProfileDir?: string;
  /** node flags of the operator process; by default the operator image's NODE_OPTIONS (images/operator.Dockerfile). */
  readonly operatorNodeOptions?: readonly string[];
  /** More `gatehouse operator` flags, e.g. `--admission-warmup-reviews=0` to compare a cold start. */
  readonly operatorArgs?: readonly string[];
  /** Load gc-observer.mjs into the operator, so operatorGcPauses can tell the GC inside each burst. */
  readonly operatorGc?: boolean;
}

export async function startWebhookCluster(repoRoot: string, options: WebhookClusterOptions = {}): Promise<WebhookCluster> {
  const main = path.join(repoRoot, 'dist/cli/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'gatehouse-bench-webhook-'));
  const [webhookPort, adminPort, controlPlanePort] = [await freePort(), await freePort(), await freePort()];
  const apiServer: LoopbackApiServer = await startLoopbackApiServer({
    crdDir: path.join(repoRoot, 'crds'),
    logger: silentLogger(),
    resolveService: () => `https://127.0.0.1:${webhookPort}`,
  });
  const kubeconfigPath = path.join(workDir, 'kubeconfig');
  await apiServer.writeKubeconfig(kubeconfigPath);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const admission = kubeConfig.makeApiClient(AdmissionregistrationV1Api);
  let operator: ChildProcess | undefined;
  let logs = '';
  let stdoutRest = '';
  const gcPauses: GcPause[] = [];
  const close = async () => {
    if (operator && operator.exitCode === null) {
      const exited = new Promise((resolve) => operator?.once('exit', resolve));
      operator.kill('SIGTERM');
      const killer = setTimeout(() => operator?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
    await apiServer.close();
    await rm(workDir, { recursive: true, force: true });
  };
  try {
    await seed(repoRoot, core, custom, admission);
    const profiling = options.operatorCpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', options.operatorCpuProfileDir] : [];
    const gcObserver = options.operatorGc ? ['--import', pathToFileURL(path.join(repoRoot, 'bench/webhook/gc-observer.mjs')).href] : [];
    operator = spawn(process.execPath, [...(options.operatorNodeOptions ?? OPERATOR_IMAGE_NODE_OPTIONS), ...profiling, ...gcObserver, main, 'operator', '--kubeconfig', kubeconfigPath, '--namespace', OPERATOR_NAMESPACE,
      '--host', '127.0.0.1', '--webhook-port', String(webhookPort), '--admin-port', String(adminPort),
      '--control-plane-port', String(controlPlanePort), '--log-level', options.operatorLogLevel ?? 'info', ...(options.operatorArgs ?? [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    operator.stderr?.on('data', (chunk: Buffer) => { logs += chunk.toString('utf8'); });
    // Read, or a chatty V8 flag would fill the pipe and stall the operator.
    operator.stdout?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      if (!options.operatorGc) {
        logs += text;
        return;
      }
      // GC lines are kept apart from the logs; a line split across chunks is put back together.
      const lines = (stdoutRest + text).split('\n');
      stdoutRest = lines.pop() ?? '';
      for (const line of lines) {
        const pause = parseGcLine(line);
        if (pause) gcPauses.push(pause);
        else logs += `${line}\n`;
      }
    });
    const caBundle = await waitForReady(operator, admission, adminPort, () => logs);
    return {
      core,
      custom,
      webhookUrl: `https://127.0.0.1:${webhookPort}`,
      webhookCaPem: Buffer.from(caBundle, 'base64').toString('utf8'),
      removeValidatingWebhook: async () => {
        await admission.deleteValidatingWebhookConfiguration({ name: 'gatehouse-validation' });
      },
      operatorMetrics: async () => (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text(),
      operatorLogs: () => logs,
      operatorMainThreadCpuMs: async () => {
        const text = await readFile(`/proc/${operator?.pid}/schedstat`, 'utf8').catch(() => '');
        return text === '' ? Number.NaN : Number(text.split(' ')[0]) / 1e6;
      },
      operatorProcessCpuMs: async () => {
        const tasks = await readdir(`/proc/${operator?.pid}/task`).catch(() => [] as string[]);
        const times = await Promise.all(tasks.map((tid) => readFile(`/proc/${operator?.pid}/task/${tid}/schedstat`, 'utf8').then((text) => Number(text.split(' ')[0]), () => 0)));
        return tasks.length === 0 ? Number.NaN : times.reduce((sum, ns) => sum + ns, 0) / 1e6;
      },
      operatorGcPauses: (fromMs, toMs) => gcPauses.filter((pause) => pause.startMs >= fromMs && pause.startMs < toMs),
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

async function seed(repoRoot: string, core: CoreV1Api, custom: CustomObjectsApi, admission: AdmissionregistrationV1Api): Promise<void> {
  await core.createNamespace({ body: { metadata: { name: OPERATOR_NAMESPACE } } });
  await core.createNamespace({ body: { metadata: { name: INJECTED_NAMESPACE, labels: { 'gatehouse.dev/inject': 'enabled' } } } });
  await core.createNamespace({ body: { metadata: { name: BASELINE_NAMESPACE } } });
  for (const namespace of [INJECTED_NAMESPACE, BASELINE_NAMESPACE]) {
    for (const name of SERVICE_ACCOUNTS) await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  }
  const samples = path.join(repoRoot, 'config/samples');
  for (const secret of await manifestsIn(path.join(samples, 'secrets'))) {
    await core.createNamespacedSecret({ namespace: secret.metadata?.namespace ?? INJECTED_NAMESPACE, body: encodeStringData(secret) });
  }
  for (const folder of ['identities', 'resources', 'policies']) {
    for (const object of await manifestsIn(path.join(samples, folder))) {
      const plural = PLURALS[object.kind ?? ''];
      if (!plural) continue;
      await custom.createNamespacedCustomObject({ group: 'gatehouse.dev', version: 'v1alpha1', namespace: object.metadata?.namespace ?? INJECTED_NAMESPACE, plural, body: object });
    }
  }
  for (const configuration of await manifestsIn(path.join(repoRoot, 'config/deploy')).then((all) => all.filter((object) => /WebhookConfiguration$/.test(object.kind ?? '')))) {
    if (configuration.kind === 'MutatingWebhookConfiguration') await admission.createMutatingWebhookConfiguration({ body: configuration as V1MutatingWebhookConfiguration });
    else await admission.createValidatingWebhookConfiguration({ body: configuration as V1ValidatingWebhookConfiguration });
  }
}

/** The operator is ready once /readyz answers and it has put its CA into the webhook configuration. */
async function waitForReady(operator: ChildProcess, admission: AdmissionregistrationV1Api, adminPort: number, logs: () => string): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (operator.exitCode !== null) throw new Error(`the operator exited with ${operator.exitCode}:\n${logs().slice(-4000)}`);
    const ready = await fetch(`http://127.0.0.1:${adminPort}/readyz`).then((response) => response.ok, () => false);
    if (ready) {
      const configuration = await admission.readMutatingWebhookConfiguration({ name: 'gatehouse-sidecar-injector' });
      const caBundle = configuration.webhooks?.[0]?.clientConfig.caBundle;
      if (caBundle && configuration.webhooks?.every((webhook) => webhook.clientConfig.caBundle)) return caBundle;
    }
    if (Date.now() > deadline) throw new Error(`the operator was not ready within 60 s:\n${logs().slice(-4000)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
