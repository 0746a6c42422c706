// The operator in-process against the loopback API server (real HTTPS, list/watch, status
// subresource, TokenReview): the samples applied with the KubeClient become Ready, a deleted
// resource turns its policy Ready=False ResourceNotFound, and a pod with the sidecar gets its
// snapshot over TLS, proven by its ServiceAccount token, and loses a deleted policy within 2 s; the
// injection webhook's (cached) answer follows new identities, policies, resources and namespace labels.
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChannelCredentials } from '@grpc/grpc-js';
import { parseAllDocuments } from 'yaml';
import { createLogger, silentLogger } from '../api/logging/logger.js';
import { LogCapture } from '../testing/log-capture.js';
import { WARMUP_NAMESPACE } from './admission/admission-warmup.js';
import { loadDiscoveryProto } from '../api/proto/discovery-proto.js';
import { ALL_TYPE_URLS, TYPE_URLS, type IdentityPolicyPayload } from '../api/proto/snapshot-resources.js';
import { SIDECAR_CONTAINER } from './admission/pod-injection.js';
import { applyJsonPatch } from './admission/testing/apply-json-patch.js';
import type { JsonPatchOperation, JsonValue } from './admission/json-patch.js';
import { DEFAULT_TLS_SECRET } from './certs/webhook-cert-manager.js';
import { startLoopbackApiServer, type LoopbackApiServer } from '../e2e/apiserver/loopback-api-server.js';
import { RawDiscoveryStream, TEST_TLS } from './control-plane/testing/discovery-fixture.js';
import { INJECTED_ANNOTATION } from './cluster-control-plane/sidecar-pods.js';
import { INJECTED_LABEL } from './admission/pod-injection.js';
import { createKubeClient, RESOURCE_TYPES, type KubeClient, type KubeObject, type ResourceType } from './kube/kube-client.js';
import { LEASE_NAME, startOperator, type RunningOperator } from './operator.js';
import { CREDENTIALS_FINALIZER } from './reconcile/resource-reconciler.js';

const NS = 'payments';
const OPERATOR_NS = 'gatehouse-system';

let apiServer: LoopbackApiServer;
/** Where the loopback API server sends webhook calls for the operator's Service (set once an operator listens). */
let webhookBase = 'https://127.0.0.1:1';
let workDir: string;
let kubeconfigPath: string;
let client: KubeClient;
const operators: RunningOperator[] = [];
const streams: RawDiscoveryStream[] = [];

const TYPES: Record<string, ResourceType> = {
  Secret: RESOURCE_TYPES.secrets,
  NonHumanIdentity: RESOURCE_TYPES.nonHumanIdentities,
  ProtectedResource: RESOURCE_TYPES.protectedResources,
  AccessPolicy: RESOURCE_TYPES.accessPolicies,
};

/** The sample manifests as the API server takes them (stringData encoded: the loopback server leaves that to clients). */
async function sampleObjects(): Promise<KubeObject[]> {
  const dir = join(process.cwd(), 'config', 'samples');
  const objects: KubeObject[] = [];
  for (const folder of ['secrets', 'identities', 'resources', 'policies']) {
    for (const file of (await readdir(join(dir, folder))).sort()) {
      for (const document of parseAllDocuments(await readFile(join(dir, folder, file), 'utf8'))) {
        const object = document.toJS() as KubeObject & { stringData?: Record<string, string>; data?: Record<string, string> };
        if (object.stringData) {
          object.data = Object.fromEntries(Object.entries(object.stringData).map(([key, value]) => [key, Buffer.from(value).toString('base64')]));
          delete object.stringData;
        }
        objects.push(object);
      }
    }
  }
  return objects;
}

async function create(type: ResourceType, object: KubeObject): Promise<KubeObject> {
  return client.create(type, object);
}

beforeAll(async () => {
  apiServer = await startLoopbackApiServer({ crdDir: 'crds', logger: silentLogger(), resolveService: () => webhookBase });
  workDir = await mkdtemp(join(tmpdir(), 'gatehouse-operator-test-'));
  kubeconfigPath = join(workDir, 'kubeconfig');
  await apiServer.writeKubeconfig(kubeconfigPath);
  client = createKubeClient({ kubeconfigPath });
  for (const name of [NS, OPERATOR_NS]) await create(RESOURCE_TYPES.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  for (const name of ['ci-runner', 'backup-agent', 'billing']) {
    await create(RESOURCE_TYPES.serviceAccounts, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: NS } });
  }
  for (const object of await sampleObjects()) await create(TYPES[object.kind!]!, object);
});

afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await Promise.all(operators.splice(0).map((operator) => operator.close()));
});

afterAll(async () => {
  client.close?.();
  await apiServer.close();
  await rm(workDir, { recursive: true, force: true });
});

async function operator(overrides: { leaderElect?: boolean; identity?: string; ownCertificate?: boolean } = {}): Promise<RunningOperator> {
  const running = await startOperator({
    kubeconfigPath,
    namespace: OPERATOR_NS,
    serviceName: 'gatehouse-operator',
    leaderElect: overrides.leaderElect ?? false,
    identity: overrides.identity ?? 'replica-a',
    host: '127.0.0.1',
    controlPlanePort: 0,
    webhookPort: 0,
    adminPort: 0,
    ...(overrides.ownCertificate ? {} : { certificates: TEST_TLS }),
    logger: silentLogger(),
    leaseTiming: { leaseDurationMs: 1_500, renewDeadlineMs: 1_000, retryPeriodMs: 200 },
    controlPlaneDebounceMs: 10,
    drainMs: 200,
  });
  operators.push(running);
  return running;
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 8_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Sends a Pod CREATE AdmissionReview straight to the operator's /mutate-pods; answers the env names the patched pod's app container gets, or undefined when unpatched. */
function injectedEnv(port: number, pod: { name: string; serviceAccountName: string; labels?: Record<string, string> }): Promise<string[] | undefined> {
  const object = { apiVersion: 'v1', kind: 'Pod', metadata: { name: pod.name, namespace: NS, labels: pod.labels ?? {} }, spec: { serviceAccountName: pod.serviceAccountName, containers: [{ name: 'app', image: 'example/app' }] } };
  const body = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview',
    request: { uid: `uid-${pod.name}`, kind: { group: '', version: 'v1', kind: 'Pod' }, namespace: NS, name: pod.name, operation: 'CREATE', object },
  });
  return new Promise((resolve, reject) => {
    const call = httpsRequest({ host: '127.0.0.1', port, path: '/mutate-pods', method: 'POST', ca: TEST_TLS.caPem, headers: { 'content-type': 'application/json' } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => { text += chunk; });
      response.on('end', () => {
        const answer = (JSON.parse(text) as { response: { allowed: boolean; patch?: string } }).response;
        if (!answer.allowed) return reject(new Error(`pod ${pod.name} was refused: ${text}`));
        if (!answer.patch) return resolve(undefined);
        const patched = applyJsonPatch(object as JsonValue, JSON.parse(Buffer.from(answer.patch, 'base64').toString('utf8')) as JsonPatchOperation[]) as { spec: { containers: { env?: { name: string }[] }[] } };
        resolve((patched.spec.containers[0]!.env ?? []).map((variable) => variable.name));
      });
    });
    call.once('error', reject);
    call.end(body);
  });
}

interface Ready {
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
}

async function readyOf(type: ResourceType, name: string): Promise<Ready | undefined> {
  const object = await client.get<KubeObject & { status?: { conditions?: (Ready & { type: string })[] } }>(type, NS, name);
  return object?.status?.conditions?.find((condition) => condition.type === 'Ready');
}

function readyIs(type: ResourceType, name: string, status: string, reason: string): () => Promise<Ready | undefined> {
  return async () => {
    const ready = await readyOf(type, name);
    return ready?.status === status && ready.reason === reason ? ready : undefined;
  };
}

describe('gatehouse operator against the loopback API server', () => {
  test('the samples become Ready; a deleted resource turns its policy Ready=False ResourceNotFound; /metrics and /readyz answer', async () => {
    const running = await operator();
    expect(running.isLeader()).toBe(true);
    for (const [type, name] of [
      [RESOURCE_TYPES.nonHumanIdentities, 'ci-runner'],
      [RESOURCE_TYPES.protectedResources, 'orders-db'],
      [RESOURCE_TYPES.protectedResources, 'billing-api'],
      [RESOURCE_TYPES.accessPolicies, 'ci-read-only'],
      [RESOURCE_TYPES.accessPolicies, 'billing-service-api'],
    ] as const) {
      const ready = await eventually(`${name} Ready`, readyIs(type, name, 'True', 'Ready'));
      expect(ready.observedGeneration).toBe(1);
    }

    await client.delete(RESOURCE_TYPES.protectedResources, NS, 'billing-api');
    const notReady = await eventually('billing-service-api ResourceNotFound', readyIs(RESOURCE_TYPES.accessPolicies, 'billing-service-api', 'False', 'ResourceNotFound'));
    expect(notReady.message).toContain('ProtectedResource billing-api does not exist in namespace payments');

    const admin = `http://127.0.0.1:${running.ports.admin}`;
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    expect(metrics).toContain('gatehouse_operator_reconcile_duration_seconds');
    expect(metrics).toContain('gatehouse_control_plane_recomputes_total');
  });

  test('postgres-dynamic resources get the credentials finalizer; a deleted Secret or ServiceAccount turns its dependant not Ready, and back', async () => {
    await operator();
    await client.patch(RESOURCE_TYPES.protectedResources, NS, 'orders-db', { spec: { credentials: { strategy: 'postgres-dynamic' } } }, 'merge');
    await eventually('finalizer', async () => {
      const resource = await client.get(RESOURCE_TYPES.protectedResources, NS, 'orders-db');
      return resource?.metadata.finalizers?.includes(CREDENTIALS_FINALIZER) ? true : undefined;
    });
    await client.patch(RESOURCE_TYPES.protectedResources, NS, 'orders-db', { spec: { credentials: { strategy: 'static' } } }, 'merge');
    await eventually('finalizer removed', async () => {
      const resource = await client.get(RESOURCE_TYPES.protectedResources, NS, 'orders-db');
      return resource?.metadata.finalizers?.includes(CREDENTIALS_FINALIZER) ? undefined : true;
    });

    const secret = await client.get<KubeObject & { data?: Record<string, string> }>(RESOURCE_TYPES.secrets, NS, 'orders-db-admin');
    await client.delete(RESOURCE_TYPES.secrets, NS, 'orders-db-admin');
    await eventually('orders-db SecretNotFound', readyIs(RESOURCE_TYPES.protectedResources, 'orders-db', 'False', 'SecretNotFound'));
    await create(RESOURCE_TYPES.secrets, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'orders-db-admin', namespace: NS }, data: secret!.data! });
    await eventually('orders-db Ready again', readyIs(RESOURCE_TYPES.protectedResources, 'orders-db', 'True', 'Ready'));

    await client.delete(RESOURCE_TYPES.serviceAccounts, NS, 'backup-agent');
    await eventually('backup-agent ServiceAccountNotFound', readyIs(RESOURCE_TYPES.nonHumanIdentities, 'backup-agent', 'False', 'ServiceAccountNotFound'));
    await create(RESOURCE_TYPES.serviceAccounts, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'backup-agent', namespace: NS } });
    await eventually('backup-agent Ready again', readyIs(RESOURCE_TYPES.nonHumanIdentities, 'backup-agent', 'True', 'Ready'));
  });

  test('a pod with the sidecar gets its snapshot over TLS with its token; a deleted policy reaches it within 2 s; a deleted pod is dropped', async () => {
    const running = await operator();
    // The operator watches labelled pods only: an unlabelled one (not injected by the webhook) never reaches its
    // cache. Created first, so a watch of every pod would deliver it before the labelled one below.
    await create(RESOURCE_TYPES.pods, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'unlabelled-1', namespace: NS, annotations: { [INJECTED_ANNOTATION]: 'true' } },
      spec: { serviceAccountName: 'ci-runner', containers: [{ name: 'app', image: 'example/app' }] },
    });
    const pod = await create(RESOURCE_TYPES.pods, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'ci-job-1', namespace: NS, labels: { [INJECTED_LABEL]: 'true' }, annotations: { [INJECTED_ANNOTATION]: 'true' } },
      spec: { serviceAccountName: 'ci-runner', containers: [{ name: 'app', image: 'example/app' }] },
    });
    const token = await apiServer.issueServiceAccountToken({ namespace: NS, serviceAccount: 'ci-runner', audiences: ['gatehouse'], pod: { name: 'ci-job-1', uid: pod.metadata.uid! } });
    await eventually('the pod is served', async () => (running.controlPlane.nodeIds().includes(`${NS}/ci-job-1`) ? true : undefined));
    expect(running.controlPlane.nodeIds()).not.toContain(`${NS}/unlabelled-1`);

    const stream = new RawDiscoveryStream(loadDiscoveryProto(), `127.0.0.1:${running.ports.controlPlane}`, ChannelCredentials.createSsl(Buffer.from(TEST_TLS.caPem)));
    streams.push(stream);
    stream.subscribe(`${NS}/ci-job-1`, ALL_TYPE_URLS, {}, token);
    const first = new Map<string, IdentityPolicyPayload>();
    for (let index = 0; index < ALL_TYPE_URLS.length; index += 1) {
      const response = await stream.next(5_000);
      if (response.type_url === TYPE_URLS.identityPolicy) first.set('policy', JSON.parse(Buffer.from(response.resources[0]!.payload).toString('utf8')) as IdentityPolicyPayload);
      stream.ack(response);
    }
    const policy = first.get('policy')!;
    expect(policy.identity.metadata.name).toBe('ci-runner');
    expect(policy.bindings.find((binding) => binding.resource === 'orders-db')!.policies.map((entry) => entry.metadata.name)).toContain('ci-read-only');

    const deletedAt = Date.now();
    await client.delete(RESOURCE_TYPES.accessPolicies, NS, 'ci-read-only');
    const push = await stream.next(2_000);
    expect(Date.now() - deletedAt).toBeLessThan(2_000);
    expect(push.type_url).toBe(TYPE_URLS.identityPolicy);
    const pushed = JSON.parse(Buffer.from(push.resources[0]!.payload).toString('utf8')) as IdentityPolicyPayload;
    expect(pushed.bindings.flatMap((binding) => binding.policies.map((entry) => entry.metadata.name))).not.toContain('ci-read-only');
    stream.ack(push);

    await client.delete(RESOURCE_TYPES.pods, NS, 'ci-job-1');
    await eventually('the pod is dropped', async () => (running.controlPlane.nodeIds().includes(`${NS}/ci-job-1`) ? undefined : true));
  });

  test('with --leader-elect only the Lease holder reconciles; the other takes over when it leaves', async () => {
    const first = await operator({ leaderElect: true, identity: 'replica-a' });
    await eventually('first leads', async () => (first.isLeader() ? true : undefined));
    const second = await operator({ leaderElect: true, identity: 'replica-b' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(second.isLeader()).toBe(false);
    const lease = await client.get<KubeObject & { spec?: { holderIdentity?: string } }>(RESOURCE_TYPES.leases, OPERATOR_NS, LEASE_NAME);
    expect(lease?.spec?.holderIdentity).toBe('replica-a');
    await first.close();
    await eventually('second leads', async () => (second.isLeader() ? true : undefined));
  });

  test('the injection webhook\'s answer follows new identities, policies, resources and namespace labels', async () => {
    const running = await operator();
    const port = running.ports.webhook;
    let pods = 0;
    const optedIn = () => injectedEnv(port, { name: `late-bot-${pods++}`, serviceAccountName: 'late-bot', labels: { 'gatehouse.dev/inject': 'enabled' } });
    const created: [ResourceType, string][] = [];
    const createHere = async (type: ResourceType, object: KubeObject) => {
      await create(type, object);
      created.push([type, object.metadata.name]);
    };
    try {
      await createHere(RESOURCE_TYPES.serviceAccounts, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'late-bot', namespace: NS } });
      expect(await optedIn()).toBeUndefined(); // no identity claims the ServiceAccount yet

      await createHere(RESOURCE_TYPES.nonHumanIdentities, { apiVersion: 'gatehouse.dev/v1alpha1', kind: 'NonHumanIdentity', metadata: { name: 'late-bot', namespace: NS }, spec: { serviceAccountName: 'late-bot' } });
      const first = await eventually('a new identity gets its pods injected', optedIn);
      expect(first).not.toContain('GATEHOUSE_LATE_DB_URL');

      const lateDb = (name: string, sidecarPort: number): KubeObject => ({
        apiVersion: 'gatehouse.dev/v1alpha1', kind: 'ProtectedResource', metadata: { name, namespace: NS },
        spec: { protocol: 'tcp', address: `${name}.payments.svc:5432`, credentials: { strategy: 'none' }, sidecar: { port: sidecarPort } },
      });
      await createHere(RESOURCE_TYPES.protectedResources, lateDb('late-db', 15901));
      await createHere(RESOURCE_TYPES.accessPolicies, {
        apiVersion: 'gatehouse.dev/v1alpha1', kind: 'AccessPolicy', metadata: { name: 'late-bot-dbs', namespace: NS },
        spec: { subjects: [{ identity: 'late-bot' }], resources: ['late-db', 'late-db-2'], rules: [{ name: 'read', effect: 'allow', operations: ['read'] }] },
      });
      const granted = await eventually('a new policy reaches the next injection', async () => ((await optedIn())?.includes('GATEHOUSE_LATE_DB_URL') ? true : undefined));
      expect(granted).toBe(true);
      expect(await optedIn()).not.toContain('GATEHOUSE_LATE_DB_2_URL');

      await createHere(RESOURCE_TYPES.protectedResources, lateDb('late-db-2', 15902));
      await eventually('a new resource reaches the next injection', async () => ((await optedIn())?.includes('GATEHOUSE_LATE_DB_2_URL') ? true : undefined));

      // Without the pod's own label, the namespace's label decides.
      const unlabelled = () => injectedEnv(port, { name: `late-bot-${pods++}`, serviceAccountName: 'late-bot' });
      expect(await unlabelled()).toBeUndefined();
      await client.patch(RESOURCE_TYPES.namespaces, undefined, NS, { metadata: { labels: { 'gatehouse.dev/inject': 'enabled' } } }, 'merge');
      const viaNamespace = await eventually('a new namespace label reaches the next injection', unlabelled);
      expect(viaNamespace).toEqual(expect.arrayContaining(['GATEHOUSE_LATE_DB_URL', 'GATEHOUSE_LATE_DB_2_URL']));

      await client.delete(RESOURCE_TYPES.accessPolicies, NS, 'late-bot-dbs');
      created.splice(created.findIndex(([, name]) => name === 'late-bot-dbs'), 1);
      await eventually('a deleted policy leaves the next injection', async () => ((await optedIn())?.includes('GATEHOUSE_LATE_DB_URL') === false ? true : undefined));
    } finally {
      await client.patch(RESOURCE_TYPES.namespaces, undefined, NS, { metadata: { labels: { 'gatehouse.dev/inject': null } } }, 'merge');
      for (const [type, name] of created.reverse()) await client.delete(type, NS, name);
    }
  });

  test('its own certificate: kept in a Secret, patched into the webhook configuration; the API server injects a pod through it, which is then served', async () => {
    const webhook = (path: string) => ({ service: { namespace: OPERATOR_NS, name: 'gatehouse-operator', path, port: 443 } });
    await create(RESOURCE_TYPES.mutatingWebhookConfigurations, {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: 'gatehouse-sidecar-injector' },
      webhooks: [{
        name: 'namespace.inject.gatehouse.dev', admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Fail', timeoutSeconds: 5,
        clientConfig: webhook('/mutate-pods'),
        rules: [{ apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE'], scope: 'Namespaced' }],
        namespaceSelector: { matchLabels: { 'gatehouse.dev/inject': 'enabled' } },
      }],
    });
    try {
      const running = await operator({ ownCertificate: true });
      webhookBase = `https://127.0.0.1:${running.ports.webhook}`;
      const secret = await client.get<KubeObject & { data?: Record<string, string> }>(RESOURCE_TYPES.secrets, OPERATOR_NS, DEFAULT_TLS_SECRET);
      expect(Buffer.from(secret!.data!['ca.crt']!, 'base64').toString('utf8')).toBe(running.caBundle());
      const configuration = await client.get<KubeObject & { webhooks: { clientConfig: { caBundle?: string } }[] }>(RESOURCE_TYPES.mutatingWebhookConfigurations, undefined, 'gatehouse-sidecar-injector');
      expect(Buffer.from(configuration!.webhooks[0]!.clientConfig.caBundle!, 'base64').toString('utf8')).toBe(running.caBundle());

      await client.patch(RESOURCE_TYPES.namespaces, undefined, NS, { metadata: { labels: { 'gatehouse.dev/inject': 'enabled' } } }, 'merge');
      const pod = await create(RESOURCE_TYPES.pods, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'billing-web-1', namespace: NS },
        spec: { serviceAccountName: 'billing', containers: [{ name: 'app', image: 'example/app' }] },
      }) as KubeObject & { spec: { initContainers?: { name: string }[] } };
      expect(pod.metadata.annotations?.[INJECTED_ANNOTATION]).toBe('true');
      expect(pod.metadata.labels?.[INJECTED_LABEL]).toBe('true');
      expect(pod.spec.initContainers?.map((container) => container.name)).toContain(SIDECAR_CONTAINER);
      await eventually('the injected pod is served', async () => (running.controlPlane.nodeIds().includes(`${NS}/billing-web-1`) ? true : undefined));

      // The control plane presents the operator's own certificate, which the CA bundle verifies.
      const token = await apiServer.issueServiceAccountToken({ namespace: NS, serviceAccount: 'billing', audiences: ['gatehouse'], pod: { name: 'billing-web-1', uid: pod.metadata.uid! } });
      const stream = new RawDiscoveryStream(loadDiscoveryProto(), `127.0.0.1:${running.ports.controlPlane}`, ChannelCredentials.createSsl(Buffer.from(running.caBundle())));
      streams.push(stream);
      stream.subscribe(`${NS}/billing-web-1`, [TYPE_URLS.identityPolicy], {}, token);
      const response = await stream.next(5_000);
      expect((JSON.parse(Buffer.from(response.resources[0]!.payload).toString('utf8')) as IdentityPolicyPayload).identity.metadata.name).toBe('billing-service');
    } finally {
      await client.delete(RESOURCE_TYPES.mutatingWebhookConfigurations, undefined, 'gatehouse-sidecar-injector');
      await client.patch(RESOURCE_TYPES.namespaces, undefined, NS, { metadata: { labels: { 'gatehouse.dev/inject': null } } }, 'merge');
    }
  });

  test('warms the admission path before it is ready: one log line, no fake review in its metrics, nothing in the cluster; 0 turns it off', async () => {
    const start = async (admissionWarmupReviews?: number) => {
      const capture = new LogCapture();
      const running = await startOperator({
        kubeconfigPath, namespace: OPERATOR_NS, serviceName: 'gatehouse-operator', leaderElect: false, identity: 'replica-warm',
        host: '127.0.0.1', controlPlanePort: 0, webhookPort: 0, adminPort: 0, certificates: TEST_TLS,
        logger: createLogger({ destination: capture }), drainMs: 200,
        ...(admissionWarmupReviews === undefined ? {} : { admissionWarmupReviews }),
      });
      operators.push(running);
      const lines = capture.text.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
      return { running, lines };
    };
    const admissionSamples = async (running: RunningOperator) => (await (await fetch(`http://127.0.0.1:${running.ports.admin}/metrics`)).text())
      .split('\n').filter((line) => line.startsWith('gatehouse_admission_requests_total{'));

    const { running, lines } = await start();
    const warmed = lines.filter((line) => line.msg === 'admission path warmed up');
    expect(warmed).toHaveLength(1);
    expect(warmed[0]!.reviews).toBeGreaterThan(0);
    // Logged before ready: the warm-up runs while /readyz still says not ready.
    expect(lines.findIndex((line) => line.msg === 'admission path warmed up')).toBeLessThan(lines.findIndex((line) => line.msg === 'operator ready'));
    expect(await admissionSamples(running)).toEqual([]);
    expect(await client.get(RESOURCE_TYPES.namespaces, undefined, WARMUP_NAMESPACE)).toBeUndefined();
    expect(running.controlPlane.nodeIds().filter((id) => id.startsWith(`${WARMUP_NAMESPACE}/`))).toEqual([]);
    // A real review is counted, so the empty metrics above are the warm-up's doing, not a registry that counts nothing.
    expect(await injectedEnv(running.ports.webhook, { name: 'after-warmup', serviceAccountName: 'ci-runner', labels: { 'gatehouse.dev/inject': 'enabled' } })).toBeDefined();
    expect(await admissionSamples(running)).toEqual(['gatehouse_admission_requests_total{webhook="mutate-pods",operation="CREATE",outcome="patched"} 1']);

    await operators.splice(operators.indexOf(running), 1)[0]!.close();
    const off = await start(0);
    expect(off.lines.filter((line) => line.msg === 'admission warm-up disabled')).toHaveLength(1);
    expect(off.lines.filter((line) => line.msg === 'admission path warmed up')).toEqual([]);
  });
});
