// Admission webhooks called by the loopback API server over HTTPS: a mutating webhook that adds a
// label (via url) and a validating one that denies (via service, resolved to loopback), selectors,
// failurePolicy, and the denial message as kubectl prints it.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../api/logging/logger.js';
import { kubeTools, type KubeTools } from './kubectl-runner.js';
import { startLoopbackApiServer, type LoopbackApiServer } from './loopback-api-server.js';
import { createServingCertificate, type ServingCertificate } from './tls.js';

interface ReviewRequest {
  uid: string;
  operation: string;
  name: string;
  namespace?: string;
  kind: { kind: string };
  object: { metadata: { name: string; labels?: Record<string, string> }; data?: Record<string, string> } | null;
  oldObject: unknown;
  userInfo: { username: string };
  dryRun: boolean;
}

let server: LoopbackApiServer;
let tools: KubeTools;
let webhook: Server;
let webhookPort: number;
let certificate: ServingCertificate;
const received: ReviewRequest[] = [];

function respond(request: ReviewRequest, path: string): Record<string, unknown> {
  if (path === '/mutate') {
    const patch = [{ op: 'add', path: '/metadata/labels', value: { ...(request.object?.metadata.labels ?? {}), mutated: 'yes' } }];
    return { uid: request.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') };
  }
  if (request.operation === 'DELETE' || request.object?.data?.forbidden === undefined) return { uid: request.uid, allowed: true };
  return { uid: request.uid, allowed: false, status: { code: 403, reason: 'Forbidden', message: 'configmaps may not carry a forbidden key' } };
}

async function startWebhook(): Promise<void> {
  certificate = await createServingCertificate({ dnsNames: ['policy-webhook.gatehouse-system.svc'] });
  webhook = createServer({ cert: certificate.certPem, key: certificate.keyPem }, (request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: ReviewRequest };
      received.push(review.request);
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: respond(review.request, request.url ?? '') }));
    });
  });
  await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  webhookPort = (webhook.address() as AddressInfo).port;
}

beforeAll(async () => {
  await startWebhook();
  server = await startLoopbackApiServer({
    logger: silentLogger(),
    resolveService: (namespace, name, port) => {
      if (namespace !== 'gatehouse-system' || name !== 'policy-webhook' || port !== 443) throw new Error(`unexpected service ${name}.${namespace}:${port}`);
      return `https://127.0.0.1:${webhookPort}`;
    },
  });
  tools = await kubeTools(server);
  const caBundle = Buffer.from(certificate.caPem).toString('base64');
  const rule = { apiGroups: [''], apiVersions: ['v1'], resources: ['configmaps'], operations: ['CREATE', 'UPDATE', 'DELETE'], scope: 'Namespaced' };
  const configurations = [
    { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'mutate' }, webhooks: [{
      name: 'mutate.gatehouse.dev', admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Fail',
      clientConfig: { url: `https://127.0.0.1:${webhookPort}/mutate`, caBundle }, rules: [rule],
      objectSelector: { matchExpressions: [{ key: 'skip-webhooks', operator: 'DoesNotExist' }] },
    }] },
    { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'validate' }, webhooks: [{
      name: 'validate.gatehouse.dev', admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Fail',
      clientConfig: { service: { namespace: 'gatehouse-system', name: 'policy-webhook', path: '/validate' }, caBundle }, rules: [rule],
      namespaceSelector: { matchLabels: { 'gatehouse.dev/enforce': 'true' } },
    }] },
  ];
  const namespaces = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: enforced, labels: {gatehouse.dev/enforce: "true"}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: relaxed}\n';
  expect((await tools.kubectl(['apply', '-f', '-'], namespaces)).code).toBe(0);
  const applied = await tools.kubectl(['apply', '-f', '-'], configurations.map((item) => JSON.stringify(item)).join('\n---\n'));
  expect(applied.stderr).toBe('');
});

afterAll(async () => {
  await tools.cleanup();
  await server.close();
  await new Promise((resolve) => webhook.close(resolve));
});

const configMap = (namespace: string, name: string, data: Record<string, string>, labels: Record<string, string> = {}): string =>
  JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, labels }, data });

describe('admission webhooks', () => {
  it('applies the mutating webhook\'s JSON patch and sends a complete AdmissionReview', async () => {
    received.length = 0;
    expect((await tools.kubectl(['apply', '-f', '-'], configMap('enforced', 'ok', { a: '1' }))).code).toBe(0);
    const stored = JSON.parse((await tools.kubectl(['get', 'configmap', 'ok', '-n', 'enforced', '-o', 'json'])).stdout) as { metadata: { labels: Record<string, string> } };
    expect(stored.metadata.labels.mutated).toBe('yes');
    const mutateCall = received.find((request) => request.object?.metadata.name === 'ok' && request.operation === 'CREATE')!;
    expect(mutateCall).toMatchObject({ operation: 'CREATE', name: 'ok', namespace: 'enforced', kind: { kind: 'ConfigMap' }, dryRun: false, oldObject: null });
    expect(mutateCall.userInfo.username).toBeTruthy();
    // The validating webhook saw the object as mutated.
    expect(received.filter((request) => request.object?.metadata.labels?.mutated === 'yes')).not.toHaveLength(0);
  });

  it('denies with the webhook\'s message and code, as kubectl shows it', async () => {
    const denied = await tools.kubectl(['apply', '-f', '-'], configMap('enforced', 'bad', { forbidden: 'x' }));
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('admission webhook "validate.gatehouse.dev" denied the request: configmaps may not carry a forbidden key');
    expect((await tools.kubectl(['get', 'configmap', 'bad', '-n', 'enforced'])).code).not.toBe(0);
  });

  it('keeps the kubernetes.io/metadata.name label on namespaces, which namespaceSelectors often name', async () => {
    const namespace = JSON.parse((await tools.kubectl(['get', 'namespace', 'relaxed', '-o', 'json'])).stdout) as { metadata: { labels: Record<string, string> } };
    expect(namespace.metadata.labels['kubernetes.io/metadata.name']).toBe('relaxed');
  });

  it('skips webhooks whose namespaceSelector or objectSelector do not match', async () => {
    expect((await tools.kubectl(['apply', '-f', '-'], configMap('relaxed', 'bad', { forbidden: 'x' }))).code).toBe(0);
    received.length = 0;
    expect((await tools.kubectl(['apply', '-f', '-'], configMap('relaxed', 'plain', { a: '1' }, { 'skip-webhooks': 'yes' }))).code).toBe(0);
    expect(received).toHaveLength(0);
  });

  it('calls validating webhooks on delete with the old object', async () => {
    received.length = 0;
    expect((await tools.kubectl(['delete', 'configmap', 'ok', '-n', 'enforced'])).code).toBe(0);
    expect(received).toEqual([expect.objectContaining({ operation: 'DELETE', name: 'ok', object: null, oldObject: expect.objectContaining({ kind: 'ConfigMap' }) })]);
  });

  it('fails closed when a Fail webhook is unreachable, and lets requests through when it is Ignore', async () => {
    const broken = (policy: string): string => JSON.stringify({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'broken' }, webhooks: [{
      name: 'broken.gatehouse.dev', admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: policy, timeoutSeconds: 2,
      clientConfig: { url: 'https://127.0.0.1:1/nothing-here', caBundle: Buffer.from(certificate.caPem).toString('base64') },
      rules: [{ apiGroups: [''], apiVersions: ['v1'], resources: ['secrets'], operations: ['CREATE'] }],
    }] });
    expect((await tools.kubectl(['apply', '-f', '-'], broken('Fail'))).code).toBe(0);
    const secret = (name: string): string => JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'relaxed' }, stringData: { k: 'v' } });
    const refused = await tools.kubectl(['apply', '-f', '-'], secret('s1'));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('failed calling webhook "broken.gatehouse.dev"');
    expect((await tools.kubectl(['apply', '-f', '-'], broken('Ignore'))).code).toBe(0);
    expect((await tools.kubectl(['apply', '-f', '-'], secret('s2'))).code).toBe(0);
  });
});
