// The certificate manager and the webhooks against the loopback API server (e2e/apiserver) through
// the real KubeClient: the Secret and caBundles land in the API server, and the API server then
// calls the webhook server over HTTPS, trusting it only through the caBundle the manager patched.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { silentLogger } from '../../api/logging/logger.js';
import { startLoopbackApiServer, type LoopbackApiServer } from '../../e2e/apiserver/loopback-api-server.js';
import { createKubeClient, RESOURCE_TYPES, type KubeClient, type KubeObject } from '../kube/kube-client.js';
import { injectionContext } from '../admission/testing/injection-fixtures.js';
import { startWebhookServer, type WebhookServer } from '../admission/webhook-server.js';
import { webhookTlsClusterFrom } from './kube-client-adapter.js';
import { WebhookCertManager } from './webhook-cert-manager.js';

const OPERATOR_NS = 'gatehouse-system';
const APP_NS = 'payments';

function webhookConfiguration(kind: 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration'): KubeObject {
  const mutating = kind === 'MutatingWebhookConfiguration';
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind,
    metadata: { name: 'gatehouse' },
    webhooks: [
      {
        name: mutating ? 'pods.gatehouse.dev' : 'kinds.gatehouse.dev',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        timeoutSeconds: 5,
        clientConfig: { service: { namespace: OPERATOR_NS, name: 'gatehouse-webhook', path: mutating ? '/mutate-pods' : '/validate-gatehouse', port: 443 } },
        rules: mutating
          ? [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }]
          : [{ apiGroups: ['gatehouse.dev'], apiVersions: ['v1alpha1'], operations: ['CREATE', 'UPDATE', 'DELETE'], resources: ['*'] }],
      },
    ],
  };
}

describe('webhook TLS and admission through a Kubernetes API server', () => {
  let apiServer: LoopbackApiServer;
  let dir: string;
  let client: KubeClient;
  let webhooks: WebhookServer | undefined;
  let webhookPort = 0;

  beforeAll(async () => {
    apiServer = await startLoopbackApiServer({
      crdDir: 'crds',
      logger: silentLogger(),
      resolveService: () => `https://127.0.0.1:${webhookPort}`,
    });
    dir = await mkdtemp(join(tmpdir(), 'gatehouse-certs-'));
    await apiServer.writeKubeconfig(join(dir, 'kubeconfig'));
    client = createKubeClient({ kubeconfigPath: join(dir, 'kubeconfig') });
    await client.create(RESOURCE_TYPES.namespaces, { metadata: { name: OPERATOR_NS } });
    await client.create(RESOURCE_TYPES.namespaces, { metadata: { name: APP_NS, labels: { 'gatehouse.dev/inject': 'enabled' } } });
  });

  afterAll(async () => {
    await webhooks?.close(100);
    client.close?.();
    await apiServer.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports AlreadyExists and stale replaces as conflicts, and round-trips Secret data', async () => {
    const cluster = webhookTlsClusterFrom(client);
    expect(await cluster.getSecret(APP_NS, 'probe')).toBeUndefined();
    expect(await cluster.createSecret(APP_NS, 'probe', { 'tls.crt': 'a\nb' })).toBe('written');
    expect(await cluster.createSecret(APP_NS, 'probe', { 'tls.crt': 'c' })).toBe('conflict');
    const stored = (await cluster.getSecret(APP_NS, 'probe'))!;
    expect(stored.data).toEqual({ 'tls.crt': 'a\nb' });
    expect(await cluster.replaceSecret(APP_NS, 'probe', { 'tls.crt': 'd' }, stored.resourceVersion)).toBe('written');
    expect(await cluster.replaceSecret(APP_NS, 'probe', { 'tls.crt': 'e' }, stored.resourceVersion)).toBe('conflict');
    expect((await cluster.getSecret(APP_NS, 'probe'))!.data).toEqual({ 'tls.crt': 'd' });
  });

  it('creates the Secret, patches caBundles, and the API server then admits through the webhooks', async () => {
    await client.create(RESOURCE_TYPES.mutatingWebhookConfigurations, webhookConfiguration('MutatingWebhookConfiguration'));
    await client.create(RESOURCE_TYPES.validatingWebhookConfigurations, webhookConfiguration('ValidatingWebhookConfiguration'));
    const manager = new WebhookCertManager({
      cluster: webhookTlsClusterFrom(client),
      namespace: OPERATOR_NS,
      serviceName: 'gatehouse-webhook',
      mutatingWebhookConfigurations: ['gatehouse'],
      validatingWebhookConfigurations: ['gatehouse'],
      logger: silentLogger(),
    });
    expect((await manager.reconcile()).action).toBe('created');
    const secret = await client.get<KubeObject & { type: string; data: Record<string, string> }>(RESOURCE_TYPES.secrets, OPERATOR_NS, 'gatehouse-webhook-tls');
    expect(secret!.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secret!.data).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    const mutating = await client.get<KubeObject & { webhooks: { clientConfig: { caBundle: string } }[] }>(RESOURCE_TYPES.mutatingWebhookConfigurations, undefined, 'gatehouse');
    expect(Buffer.from(mutating!.webhooks[0]!.clientConfig.caBundle, 'base64').toString()).toBe(manager.caBundle());
    // A second replica finds everything in order and writes nothing.
    const replica = new WebhookCertManager({
      cluster: webhookTlsClusterFrom(client), namespace: OPERATOR_NS, serviceName: 'gatehouse-webhook',
      mutatingWebhookConfigurations: ['gatehouse'], validatingWebhookConfigurations: ['gatehouse'], logger: silentLogger(),
    });
    expect(await replica.reconcile()).toMatchObject({ action: 'reused', patched: [] });

    webhooks = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      tls: manager,
      injection: (_pod, namespace) => injectionContext({ namespace, namespaceLabels: { 'gatehouse.dev/inject': 'enabled' } }),
      clusterView: () => ({ identities: [], resources: [], policies: [], secrets: [] }),
      logger: silentLogger(),
      registry: new Registry(),
    });
    webhookPort = webhooks.port;

    type Pod = KubeObject & { spec: { serviceAccountName: string; containers: unknown[]; initContainers?: { name: string }[] } };
    const pod = await client.create<Pod>(RESOURCE_TYPES.pods, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'ci-job', namespace: APP_NS },
      spec: { serviceAccountName: 'ci-runner', containers: [{ name: 'app', image: 'registry.example/ci:1' }] },
    });
    expect(pod.spec.initContainers?.map((container) => container.name)).toEqual(['gatehouse-sidecar']);
    expect(pod.metadata.annotations).toMatchObject({ 'gatehouse.dev/injected': 'true', 'gatehouse.dev/identity': 'ci-runner' });

    const invalid = client.create(RESOURCE_TYPES.nonHumanIdentities, {
      apiVersion: 'gatehouse.dev/v1alpha1',
      kind: 'NonHumanIdentity',
      metadata: { name: 'bot', namespace: APP_NS },
      spec: { serviceAccountName: 'bot', maxCredentialTTL: '0s' },
    });
    await expect(invalid).rejects.toThrow(/GH_ERR_DURATION_ZERO/);
  });
});
