// Warms the admission path before the operator reports ready. A fresh process answers its first few
// thousand reviews markedly slower (V8 has not optimised the JSON, injection, TLS and HTTP/2 code yet,
// and the heap is still growing), and those reviews are the pods of the first scale-up. So synthetic
// reviews of synthetic pods go over loopback HTTP/2 to a private instance of the webhook server: the
// same handler, TLS and h2 code as the real one, with its own throwaway metrics registry and a
// synthetic injection context. No cluster state is read or written and the operator's metrics count
// no fake review. Bounded by a review count, a CPU budget and a wall-clock budget.
import { connect, constants as h2, type ClientHttp2Session } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import type { ProtectedResource } from '../../api/kinds/kinds.js';
import type { Logger } from '../../api/logging/logger.js';
import type { CertificateSource } from '../certs/certificate-source.js';
import { injectionContextOf, type InjectionContext } from './pod-injection.js';
import { podCreationReview } from './admission-review.js';
import { MUTATE_PODS_PATH, startWebhookServer, type WebhookServer, type WebhookServerOptions } from './webhook-server.js';

/**
 * Reviews before ready. A function called once per review reaches V8's optimising compiler after
 * roughly 2,500-3,000 calls (Node 20), so with the CPU budget (~1,000 reviews on a benchmark core)
 * the warm-up gets the path out of the interpreter, not all of it optimised: the rest is compiled on
 * a background thread during the first real bursts. Warming up to full optimisation (3,000 reviews,
 * ~1.5 s of CPU, and a full GC after) was measured and not kept: the first burst's p99 did not move,
 * and startup CPU and resident memory went up (bench/webhook/README.md, 2026-11-23).
 */
export const DEFAULT_WARMUP_REVIEWS = 2_000;
/** Process CPU (server and loopback client) the warm-up may spend before it stops early. */
export const DEFAULT_WARMUP_CPU_BUDGET_MS = 500;
/** Startup never waits longer than this for the warm-up, however busy the machine. */
export const DEFAULT_WARMUP_WALL_BUDGET_MS = 5_000;
/** How far past the wall-clock budget a burst may run before the warm-up gives up on it. */
const OVERRUN_GRACE_MS = 1_000;
/** Streams in flight at once, as a scale-up's concurrent pod creations arrive on one API server connection. */
const DEFAULT_CONCURRENCY = 100;

/** The synthetic pod's namespace and ServiceAccount: names no cluster object has. */
export const WARMUP_NAMESPACE = 'gatehouse-admission-warmup';
const WARMUP_SERVICE_ACCOUNT = 'gatehouse-admission-warmup';

export interface AdmissionWarmupOptions {
  /** Most synthetic reviews to send; 0 skips the warm-up. */
  readonly reviews: number;
  readonly cpuBudgetMs?: number;
  readonly wallBudgetMs?: number;
  readonly concurrency?: number;
  /** The real webhook server's certificate source, so the TLS code warmed is the one serving. */
  readonly tls: CertificateSource;
  /** The CA that signed the serving certificate: the loopback client verifies the chain with it. */
  readonly caBundle: string;
  /** What injected sidecars are given, as in the real answers, so the patch has its real size. */
  readonly sidecar: Pick<InjectionContext, 'operatorNamespace' | 'sidecarImage' | 'controlPlaneAddress' | 'controlPlaneCa'>;
  readonly logger: Logger;
  /** Starts the private server; tests replace it to provoke a failure inside the warm-up. */
  readonly startServer?: (options: WebhookServerOptions) => Promise<WebhookServer>;
}

export type WarmupStop = 'count' | 'cpu-budget' | 'wall-budget';

export interface AdmissionWarmupResult {
  readonly reviews: number;
  /** Process CPU time spent (user + system), server and client together. */
  readonly cpuMs: number;
  readonly wallMs: number;
  readonly stoppedBy: WarmupStop;
}

/** A ProtectedResource that exists only in the synthetic injection context. */
function warmupResource(): ProtectedResource {
  return {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'ProtectedResource',
    metadata: { name: 'warmup-db', namespace: WARMUP_NAMESPACE },
    spec: {
      protocol: 'postgres',
      address: 'warmup-db.invalid:5432',
      database: 'warmup',
      credentials: { strategy: 'static', secretRef: { name: 'warmup-db-admin' } },
      sidecar: { port: 15432 },
    },
  } as ProtectedResource;
}

const DEFAULTED_CONTAINER = {
  terminationMessagePath: '/dev/termination-log',
  terminationMessagePolicy: 'File',
  imagePullPolicy: 'IfNotPresent',
};
const DEFAULTED_SPEC = {
  restartPolicy: 'Always',
  terminationGracePeriodSeconds: 30,
  dnsPolicy: 'ClusterFirst',
  securityContext: {},
  schedulerName: 'default-scheduler',
  enableServiceLinks: true,
  preemptionPolicy: 'PreemptLowerPriority',
  priority: 0,
};
const CONTROLLER = { username: 'system:serviceaccount:kube-system:replicaset-controller', groups: ['system:serviceaccounts', 'system:authenticated'] };
const PERSON = { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] };

/** How many pod shapes warmupReview cycles through. */
export const WARMUP_POD_SHAPES = 3;

/**
 * The AdmissionReview the API server sends for a pod creation. Pods arrive in several shapes, and V8
 * optimises for the shapes it has seen: code that met one shape only is thrown back to the
 * interpreter by the first pod of another. So the reviews cycle through three: a controller's pod
 * with the fields defaulting adds, a bare pod as a manifest or `kubectl run` posts it, and a
 * ReplicaSet's pod as it reaches webhooks after ServiceAccount admission (generateName, owner,
 * projected token volume, an init container).
 */
export function warmupReview(index: number): string {
  const shape = index % WARMUP_POD_SHAPES;
  const name = `warmup-${index}`;
  if (shape === 1) {
    return podCreationReview(WARMUP_NAMESPACE, {
      metadata: { name },
      spec: { serviceAccountName: WARMUP_SERVICE_ACCOUNT, containers: [{ name: 'app', image: 'registry.invalid/warmup:1' }] },
    }, PERSON);
  }
  if (shape === 2) return podCreationReview(WARMUP_NAMESPACE, replicaSetPod(index), CONTROLLER);
  return podCreationReview(WARMUP_NAMESPACE, {
    metadata: { name, labels: { app: 'warmup', 'pod-template-hash': '5d8f7c9b6' } },
    spec: {
      serviceAccountName: WARMUP_SERVICE_ACCOUNT,
      containers: [{
        name: 'app',
        image: 'registry.invalid/warmup:1',
        ports: [{ containerPort: 8080, protocol: 'TCP' }],
        env: [{ name: 'LOG_LEVEL', value: 'info' }],
        resources: { requests: { cpu: '100m', memory: '128Mi' } },
        ...DEFAULTED_CONTAINER,
      }],
      ...DEFAULTED_SPEC,
    },
  }, CONTROLLER);
}

/** A ReplicaSet's pod as webhooks see it: no name yet, an owner, the projected API token volume, an init container. */
function replicaSetPod(index: number): { metadata: { name?: string; [field: string]: unknown } } & Record<string, unknown> {
  const token = `kube-api-access-${(index % 100_000).toString(36)}`;
  const mount = { name: token, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' };
  return {
    metadata: {
      generateName: 'warmup-7c9d5b8f6-',
      labels: { app: 'warmup', 'pod-template-hash': '7c9d5b8f6' },
      annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-01-01T00:00:00Z' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'warmup-7c9d5b8f6', uid: '00000000-0000-4000-8000-000000000000', controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      volumes: [{ name: token, projected: { defaultMode: 420, sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }, { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }] } }],
      initContainers: [{ name: 'migrate', image: 'registry.invalid/warmup-migrate:1', args: ['--once'], volumeMounts: [mount], ...DEFAULTED_CONTAINER }],
      containers: [{
        name: 'app',
        image: 'registry.invalid/warmup:1',
        env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } }],
        volumeMounts: [mount],
        ...DEFAULTED_CONTAINER,
      }],
      serviceAccountName: WARMUP_SERVICE_ACCOUNT,
      serviceAccount: WARMUP_SERVICE_ACCOUNT,
      tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
      ...DEFAULTED_SPEC,
    },
    status: {},
  };
}

function warmupError(detail: string, cause?: unknown): GatehouseError {
  return new GatehouseError('GH_ERR_ADMISSION_WARMUP', { detail }, cause === undefined ? undefined : { cause });
}

/** The session at once (so the caller can always destroy it) and a promise of its connection. */
function openSession(port: number, caBundle: string): { session: ClientHttp2Session; connected: Promise<void> } {
  // The chain is verified against the CA; the host name is not, since this dials the listener the
  // warm-up itself just opened on loopback, which a certificate for the Service's name need not list.
  const session = connect(`https://127.0.0.1:${port}`, { ca: caBundle, checkServerIdentity: () => undefined });
  const connected = new Promise<void>((resolve, reject) => {
    // Kept for the session's life: a later error event with no listener would crash the process.
    session.on('error', (error) => reject(warmupError(`the loopback HTTP/2 connection failed (${error.message})`, error)));
    session.once('connect', () => resolve());
  });
  return { session, connected };
}

function admissionResponseOf(text: string): { allowed?: unknown; patch?: unknown } | undefined {
  try {
    const review = JSON.parse(text) as { response?: { allowed?: unknown; patch?: unknown } } | null;
    return review?.response ?? undefined;
  } catch {
    return undefined;
  }
}

/** Sends one review and checks that it came back admitted with a patch, as every synthetic pod must. */
function sendReview(session: ClientHttp2Session, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ [h2.HTTP2_HEADER_METHOD]: 'POST', [h2.HTTP2_HEADER_PATH]: MUTATE_PODS_PATH, 'content-type': 'application/json' });
    let status = 0;
    let text = '';
    stream.setEncoding('utf8');
    stream.on('response', (headers) => { status = Number(headers[h2.HTTP2_HEADER_STATUS]); });
    stream.on('data', (chunk: string) => { text += chunk; });
    stream.on('error', (error: Error) => reject(warmupError(`a synthetic review failed (${error.message})`, error)));
    stream.on('end', () => {
      // Never throws: a stream cut short when an earlier failure closed the session ends here too.
      const answer = status === 200 ? admissionResponseOf(text) : undefined;
      if (answer?.allowed === true && typeof answer.patch === 'string') resolve();
      else reject(warmupError(`a synthetic review was answered ${status} without an injection patch: ${text.slice(0, 300)}`));
    });
    stream.end(body);
  });
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

async function sendBursts(session: ClientHttp2Session, options: AdmissionWarmupOptions): Promise<Omit<AdmissionWarmupResult, 'cpuMs' | 'wallMs'> & { cpu: NodeJS.CpuUsage; started: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const cpuBudgetMs = options.cpuBudgetMs ?? DEFAULT_WARMUP_CPU_BUDGET_MS;
  const wallBudgetMs = options.wallBudgetMs ?? DEFAULT_WARMUP_WALL_BUDGET_MS;
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
  let sent = 0;
  while (sent < options.reviews) {
    // Checked between bursts, so the budget can be overrun by at most one burst.
    if (cpuMsSince(cpu) >= cpuBudgetMs) return { reviews: sent, stoppedBy: 'cpu-budget', cpu, started };
    if (performance.now() - started >= wallBudgetMs) return { reviews: sent, stoppedBy: 'wall-budget', cpu, started };
    const size = Math.min(concurrency, options.reviews - sent);
    await Promise.all(Array.from({ length: size }, (_, offset) => sendReview(session, warmupReview(sent + offset))));
    sent += size;
  }
  return { reviews: sent, stoppedBy: 'count', cpu, started };
}

/** Runs the warm-up; throws GH_ERR_ADMISSION_WARMUP when it cannot (see runAdmissionWarmup for the caller that must not fail). */
export async function warmUpAdmission(options: AdmissionWarmupOptions): Promise<AdmissionWarmupResult> {
  if (!Number.isInteger(options.reviews) || options.reviews < 0) throw warmupError(`reviews must be a whole number ≥ 0, not ${options.reviews}`);
  if (options.reviews === 0) return { reviews: 0, cpuMs: 0, wallMs: 0, stoppedBy: 'count' };
  // Built as the operator builds its real contexts, so injection is optimised for their shape.
  const context = injectionContextOf({
    namespace: WARMUP_NAMESPACE,
    namespaceLabels: { 'gatehouse.dev/inject': 'enabled' },
    operatorNamespace: options.sidecar.operatorNamespace,
    sidecarImage: options.sidecar.sidecarImage,
    controlPlaneAddress: options.sidecar.controlPlaneAddress,
    controlPlaneCa: options.sidecar.controlPlaneCa,
    identity: 'gatehouse-admission-warmup',
    resources: [warmupResource()],
  });
  const server = await (options.startServer ?? startWebhookServer)({
    host: '127.0.0.1',
    port: 0,
    tls: options.tls,
    // Only synthetic pods reach this server: anything else is answered from nothing, never from the caches.
    // Async, as the operator's cache lookup is: the handler awaits a promise either way.
    injection: async () => context,
    clusterView: () => ({ identities: [], resources: [], policies: [], secrets: [] }),
    // Per-review lines stay quiet even at debug; errors still show.
    logger: options.logger.child({ warmup: true }, { level: 'warn' }),
    registry: new Registry(),
  });
  let session: ClientHttp2Session | undefined;
  // The budgets are checked between bursts; this bounds a burst that never comes back (a stuck handler).
  const hardLimitMs = (options.wallBudgetMs ?? DEFAULT_WARMUP_WALL_BUDGET_MS) + OVERRUN_GRACE_MS;
  let timer: NodeJS.Timeout | undefined;
  const overrun = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(warmupError(`it did not finish within ${hardLimitMs} ms`)), hardLimitMs);
  });
  try {
    const opened = openSession(server.port, options.caBundle);
    session = opened.session;
    await Promise.race([opened.connected, overrun]);
    const { reviews, stoppedBy, cpu, started } = await Promise.race([sendBursts(session, options), overrun]);
    return { reviews, stoppedBy, cpuMs: cpuMsSince(cpu), wallMs: performance.now() - started };
  } finally {
    clearTimeout(timer);
    session?.destroy();
    await server.close(0);
  }
}

/**
 * The warm-up as the operator runs it: logs one line with what it did, and never throws, since an
 * operator that answers its first reviews a little slower is better than one that does not start.
 */
export async function runAdmissionWarmup(options: AdmissionWarmupOptions): Promise<AdmissionWarmupResult | undefined> {
  if (options.reviews === 0) {
    options.logger.info('admission warm-up disabled');
    return undefined;
  }
  try {
    const result = await warmUpAdmission(options);
    options.logger.info({ reviews: result.reviews, cpuMs: Math.round(result.cpuMs), wallMs: Math.round(result.wallMs), stoppedBy: result.stoppedBy }, 'admission path warmed up');
    return result;
  } catch (error) {
    const code = isGatehouseError(error) ? error.code : undefined;
    options.logger.warn({ code, err: error instanceof Error ? error.message : String(error) }, 'admission warm-up failed; starting without it');
    return undefined;
  }
}
