import { connect } from 'node:net';
import { jest } from '@jest/globals';
import { register as defaultRegistry, Registry } from 'prom-client';
import { isGatehouseError } from '../../api/errors.js';
import { createLogger } from '../../api/logging/logger.js';
import { LogCapture } from '../../testing/log-capture.js';
import { issueCa, issueServingCertificate, type KeyedCertificate } from '../certs/certificate-authority.js';
import { StaticCertificateSource } from '../certs/certificate-source.js';
import { runAdmissionWarmup, warmUpAdmission, warmupReview, WARMUP_NAMESPACE, WARMUP_POD_SHAPES, type AdmissionWarmupOptions } from './admission-warmup.js';
import { parseAdmissionReview } from './admission-review.js';
import { injectSidecar, type PodLike } from './pod-injection.js';
import { startWebhookServer, type WebhookServer, type WebhookServerOptions } from './webhook-server.js';

const DAY = 86_400_000;

function linesOf(capture: LogCapture): Record<string, unknown>[] {
  return capture.text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
}
let ca: KeyedCertificate;
let tls: StaticCertificateSource;

beforeAll(async () => {
  const now = new Date();
  ca = await issueCa({ commonName: 'warmup-test-ca', now, validityMs: DAY });
  // As the operator's own certificate names it: the Service, not the loopback address the warm-up dials.
  const serving = await issueServingCertificate({ ca, dnsNames: ['gatehouse-operator.gatehouse-system.svc'], ipAddresses: [], now, validityMs: DAY });
  tls = new StaticCertificateSource({ cert: serving.certPem, key: serving.keyPem });
});

function options(overrides: Partial<AdmissionWarmupOptions> = {}): AdmissionWarmupOptions {
  return {
    reviews: 250,
    concurrency: 100,
    tls,
    caBundle: ca.certPem,
    sidecar: { operatorNamespace: 'gatehouse-system', sidecarImage: 'ghcr.io/gatehouse/sidecar:0.1.0', controlPlaneAddress: 'gatehouse-operator.gatehouse-system.svc:15010', controlPlaneCa: ca.certPem },
    logger: createLogger({ level: 'silent' }),
    ...overrides,
  };
}

/** Starts the private server as the warm-up would, remembering it so a test can check it was closed. */
function recordingStarts(started: WebhookServer[], change: (options: WebhookServerOptions) => WebhookServerOptions = (same) => same) {
  return async (serverOptions: WebhookServerOptions) => {
    const server = await startWebhookServer(change(serverOptions));
    started.push(server);
    return server;
  };
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(false); });
    socket.once('error', () => resolve(true));
  });
}

describe('the synthetic review', () => {
  test('is a valid pod CREATE review in the synthetic namespace, a new uid each time', () => {
    const request = parseAdmissionReview(warmupReview(6));
    expect(request).toMatchObject({ operation: 'CREATE', namespace: WARMUP_NAMESPACE, name: 'warmup-6', kind: { group: '', version: 'v1', kind: 'Pod' } });
    expect((request.object as PodLike).metadata?.namespace).toBe(WARMUP_NAMESPACE);
    expect(parseAdmissionReview(warmupReview(9)).uid).not.toBe(request.uid);
  });

  test('cycles through pods of different shapes, each of which gets the sidecar', () => {
    const context = {
      namespace: WARMUP_NAMESPACE,
      namespaceLabels: { 'gatehouse.dev/inject': 'enabled' },
      operatorNamespace: 'gatehouse-system',
      sidecarImage: 'ghcr.io/gatehouse/sidecar:0.1.0',
      controlPlaneAddress: 'gatehouse-operator.gatehouse-system.svc:15010',
      controlPlaneCa: 'ca',
      identity: 'gatehouse-admission-warmup',
      resources: [],
    };
    const pods = Array.from({ length: WARMUP_POD_SHAPES * 2 }, (_, index) => parseAdmissionReview(warmupReview(index)).object as PodLike);
    // A shape is which fields a pod has, at any depth: what V8 optimises property reads for.
    const shape = (value: unknown): string => (Array.isArray(value) ? `[${value.map(shape).join(',')}]`
      : typeof value === 'object' && value !== null ? `{${Object.entries(value).map(([key, field]) => `${key}:${shape(field)}`).join(',')}}` : typeof value);
    const shapes = pods.map(shape);
    expect(new Set(shapes).size).toBe(WARMUP_POD_SHAPES);
    // The cycle repeats.
    expect(shapes.slice(WARMUP_POD_SHAPES)).toEqual(shapes.slice(0, WARMUP_POD_SHAPES));
    for (const pod of pods) expect(injectSidecar(pod, context)).toMatchObject({ injected: true });
  });
});

describe('warmUpAdmission', () => {
  test('sends the reviews over loopback HTTP/2, every one answered with a patch, then closes its server', async () => {
    const started: WebhookServer[] = [];
    const result = await warmUpAdmission(options({ startServer: recordingStarts(started) }));
    expect(result).toMatchObject({ reviews: 250, stoppedBy: 'count' });
    expect(result.cpuMs).toBeGreaterThan(0);
    expect(started).toHaveLength(1);
    expect(await refused(started[0]!.port)).toBe(true);
  });

  test('counts nothing in the operator\'s metrics and asks nothing of its caches', async () => {
    const registry = new Registry();
    const injection = jest.fn(() => undefined);
    const clusterView = jest.fn(() => ({ identities: [], resources: [], policies: [], secrets: [] }));
    // The real webhook server, with the same certificate source the warm-up uses.
    const real = await startWebhookServer({ host: '127.0.0.1', port: 0, tls, injection, clusterView, logger: createLogger({ level: 'silent' }), registry });
    try {
      const before = await registry.metrics();
      const defaultBefore = await defaultRegistry.metrics();
      const result = await warmUpAdmission(options({ reviews: 150 }));
      expect(result.reviews).toBe(150);
      expect(await registry.metrics()).toBe(before);
      expect(await defaultRegistry.metrics()).toBe(defaultBefore);
      expect(injection).not.toHaveBeenCalled();
      expect(clusterView).not.toHaveBeenCalled();
    } finally {
      await real.close(0);
    }
  });

  test('stops at the CPU budget or the wall-clock budget, whichever comes first', async () => {
    const byCpu = await warmUpAdmission(options({ reviews: 1_000_000, cpuBudgetMs: 1 }));
    expect(byCpu.stoppedBy).toBe('cpu-budget');
    expect(byCpu.reviews).toBeLessThan(1_000_000);
    const byWall = await warmUpAdmission(options({ reviews: 1_000_000, wallBudgetMs: 0 }));
    expect(byWall).toMatchObject({ stoppedBy: 'wall-budget', reviews: 0 });
  });

  test('0 reviews starts nothing; a count that is not a whole number is refused', async () => {
    const startServer = jest.fn(startWebhookServer);
    expect(await warmUpAdmission(options({ reviews: 0, startServer }))).toMatchObject({ reviews: 0 });
    expect(startServer).not.toHaveBeenCalled();
    for (const reviews of [-1, 1.5, Number.NaN]) {
      await expect(warmUpAdmission(options({ reviews }))).rejects.toMatchObject({ code: 'GH_ERR_ADMISSION_WARMUP' });
    }
  });

  test('an answer without a patch fails it, and its server is closed anyway', async () => {
    const started: WebhookServer[] = [];
    // A namespace not opted in: the handler admits the pod unchanged, which the warm-up must notice.
    const notInjecting = recordingStarts(started, (serverOptions) => ({
      ...serverOptions,
      injection: async (pod, namespace) => ({ ...(await serverOptions.injection(pod, namespace))!, namespaceLabels: {} }),
    }));
    const failure = await warmUpAdmission(options({ startServer: notInjecting })).catch((error: unknown) => error);
    expect(isGatehouseError(failure, 'GH_ERR_ADMISSION_WARMUP')).toBe(true);
    expect((failure as Error).message).toMatch(/answered 200 without an injection patch/);
    expect(await refused(started[0]!.port)).toBe(true);
  });
});

describe('runAdmissionWarmup (as the operator calls it)', () => {
  test('logs one info line with the count and the time', async () => {
    const capture = new LogCapture();
    const logger = createLogger({ level: 'debug', destination: capture });
    const result = await runAdmissionWarmup(options({ logger }));
    expect(result?.reviews).toBe(250);
    const lines = linesOf(capture);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, msg: 'admission path warmed up', reviews: 250, stoppedBy: 'count' });
    expect(typeof lines[0]!.cpuMs).toBe('number');
    expect(typeof lines[0]!.wallMs).toBe('number');
  });

  test('disabled with 0: no server, one line saying so', async () => {
    const capture = new LogCapture();
    const startServer = jest.fn(startWebhookServer);
    expect(await runAdmissionWarmup(options({ reviews: 0, startServer, logger: createLogger({ destination: capture }) }))).toBeUndefined();
    expect(startServer).not.toHaveBeenCalled();
    expect(linesOf(capture).map((line) => line.msg)).toEqual(['admission warm-up disabled']);
  });

  test('a failure inside it is logged and does not throw: the operator goes on starting', async () => {
    for (const failing of [
      // The loopback client does not trust the serving certificate.
      options({ caBundle: '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n' }),
      // The private server cannot start.
      options({ startServer: () => Promise.reject(new Error('no port for you')) }),
      // No serving certificate yet.
      options({ tls: new StaticCertificateSource() }),
      // A handler that never answers: given up on shortly after the wall-clock budget.
      options({ wallBudgetMs: 100, startServer: recordingStarts([], (serverOptions) => ({ ...serverOptions, decisionTimeoutMs: 1_500, injection: () => new Promise(() => undefined) })) }),
    ]) {
      const capture = new LogCapture();
      await expect(runAdmissionWarmup({ ...failing, logger: createLogger({ destination: capture }) })).resolves.toBeUndefined();
      const lines = linesOf(capture);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: 40, msg: 'admission warm-up failed; starting without it' });
    }
  });
});
