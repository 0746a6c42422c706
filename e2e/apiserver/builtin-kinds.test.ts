// Built-in kinds against the loopback API server with the real kubectl and client-node: the kinds a
// production chart renders are served (PodDisruptionBudget with its status, NetworkPolicy, HPA, …),
// built-in objects are decoded against the Kubernetes v1.34 schema (wrong types rejected, unknown
// fields rejected, warned about or dropped as fieldValidation says), and every way a namespace is
// written keeps its `kubernetes.io/metadata.name` label.
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, PolicyV1Api, type KubernetesObject, type V1Deployment } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { silentLogger } from '../../api/logging/logger.js';
import { kubeTools, type CommandResult, type KubeTools } from './kubectl-runner.js';
import { startLoopbackApiServer, type LoopbackApiServer } from './loopback-api-server.js';
import { createServingCertificate } from './tls.js';

let server: LoopbackApiServer;
let tools: KubeTools;
let dir: string;
let core: CoreV1Api;
let apps: AppsV1Api;
let policy: PolicyV1Api;
let objects: KubernetesObjectApi;

beforeAll(async () => {
  server = await startLoopbackApiServer({ logger: silentLogger() });
  tools = await kubeTools(server, { namespace: 'web' });
  dir = await mkdtemp(join(tmpdir(), 'gatehouse-builtin-kinds-'));
  await server.writeKubeconfig(join(dir, 'kubeconfig'));
  const kc = new KubeConfig();
  kc.loadFromFile(join(dir, 'kubeconfig'));
  core = kc.makeApiClient(CoreV1Api);
  apps = kc.makeApiClient(AppsV1Api);
  policy = kc.makeApiClient(PolicyV1Api);
  objects = KubernetesObjectApi.makeApiClient(kc);
  await core.createNamespace({ body: { metadata: { name: 'web' } } });
});

afterAll(async () => {
  await tools.cleanup();
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

function apply(objects: readonly object[], ...flags: string[]): Promise<CommandResult> {
  return tools.kubectl(['apply', ...flags, '-f', '-'], objects.map((object) => stringify(object)).join('---\n'));
}

async function ok(result: Promise<CommandResult>): Promise<string> {
  const { code, stdout, stderr } = await result;
  if (code !== 0) throw new Error(`exit ${code}: ${stderr}`);
  return stdout;
}

const POD_TEMPLATE = { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'web:1' }] } };

function deployment(name: string, container: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: 'web' },
    spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: { ...POD_TEMPLATE, spec: { containers: [{ name: 'web', image: 'web:1', ...container }] } } },
  };
}

describe('the kinds a production chart renders', () => {
  it('are listed by discovery', async () => {
    const resources = (await ok(tools.kubectl(['api-resources', '-o', 'name']))).split('\n');
    expect(resources).toEqual(expect.arrayContaining([
      'poddisruptionbudgets.policy', 'networkpolicies.networking.k8s.io', 'ingresses.networking.k8s.io', 'horizontalpodautoscalers.autoscaling',
      'statefulsets.apps', 'daemonsets.apps', 'replicasets.apps', 'jobs.batch', 'cronjobs.batch', 'endpointslices.discovery.k8s.io',
      'resourcequotas', 'limitranges', 'persistentvolumeclaims', 'priorityclasses.scheduling.k8s.io', 'storageclasses.storage.k8s.io',
    ]));
  });

  it('are stored and read back through kubectl', async () => {
    const selector = { matchLabels: { app: 'web' } };
    const meta = (name: string) => ({ name, namespace: 'web' });
    const objects = [
      { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: meta('web'), spec: { podSelector: selector, policyTypes: ['Ingress'], ingress: [{ ports: [{ port: 8080, protocol: 'TCP' }] }] } },
      { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: meta('web'), spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, minReplicas: 2, maxReplicas: 5,
        metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }] } },
      { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: meta('db'), spec: { serviceName: 'db', selector, template: POD_TEMPLATE } },
      { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: meta('agent'), spec: { selector, template: POD_TEMPLATE } },
      { apiVersion: 'batch/v1', kind: 'CronJob', metadata: meta('nightly'), spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template: { spec: { restartPolicy: 'OnFailure', containers: [{ name: 'job', image: 'job:1' }] } } } } } },
      { apiVersion: 'v1', kind: 'ResourceQuota', metadata: meta('quota'), spec: { hard: { pods: '10', 'requests.cpu': 4 } } },
      { apiVersion: 'v1', kind: 'LimitRange', metadata: meta('limits'), spec: { limits: [{ type: 'Container', default: { memory: '128Mi' } }] } },
      { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: meta('web-abc'), addressType: 'IPv4', endpoints: [{ addresses: ['10.0.0.1'] }] },
    ];
    const applied = await ok(apply(objects));
    expect(applied).toContain('networkpolicy.networking.k8s.io/web created');
    expect(applied).toContain('cronjob.batch/nightly created');
    const names = (await ok(tools.kubectl(['get', 'netpol,hpa,sts,ds,cj,quota,limits,endpointslices', '-o', 'name']))).trim().split('\n');
    expect(names.sort()).toEqual([
      'cronjob.batch/nightly', 'daemonset.apps/agent', 'endpointslice.discovery.k8s.io/web-abc', 'horizontalpodautoscaler.autoscaling/web',
      'limitrange/limits', 'networkpolicy.networking.k8s.io/web', 'resourcequota/quota', 'statefulset.apps/db',
    ]);
    expect(await ok(tools.kubectl(['get', 'hpa', 'web', '-o', 'jsonpath={.spec.metrics[0].resource.target.averageUtilization}']))).toBe('80');
  });

  it('are explained from the served OpenAPI v3 schemas', async () => {
    const periodSeconds = await ok(tools.kubectl(['explain', 'deployment.spec.template.spec.containers.readinessProbe.periodSeconds']));
    expect(periodSeconds).toMatch(/FIELD:\s+periodSeconds <integer>/);
    expect(periodSeconds).toContain('How often (in seconds) to perform the probe.');
    const pdbSpec = await ok(tools.kubectl(['explain', 'pdb.spec']));
    expect(pdbSpec).toMatch(/KIND:\s+PodDisruptionBudget/);
    expect(pdbSpec).toMatch(/FIELD:\s+spec <PodDisruptionBudgetSpec>/);
    expect(pdbSpec).toMatch(/minAvailable\s+<string>/);
    expect(pdbSpec).toMatch(/selector\s+<LabelSelector>/);
    expect(await ok(tools.kubectl(['explain', 'namespace']))).toContain('Namespace provides a scope for Names.');
  });

  it('serves policy/v1 PodDisruptionBudgets with a status subresource', async () => {
    const pdb = { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'web', namespace: 'web' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'web' } } } };
    // A status in the manifest is the server's to set, not the client's.
    expect(await ok(apply([{ ...pdb, status: { currentHealthy: 9, desiredHealthy: 9, disruptionsAllowed: 9, expectedPods: 9 } }]))).toContain('poddisruptionbudget.policy/web created');
    const created = await policy.readNamespacedPodDisruptionBudget({ name: 'web', namespace: 'web' });
    expect(created.status).toBeUndefined();
    expect(created.spec?.minAvailable).toBe(1);
    await policy.replaceNamespacedPodDisruptionBudgetStatus({ name: 'web', namespace: 'web', body: { ...created, status: { currentHealthy: 2, desiredHealthy: 1, disruptionsAllowed: 1, expectedPods: 2 } } });
    // A spec write keeps the status; the status write did not touch the spec.
    expect(await ok(apply([{ ...pdb, spec: { ...pdb.spec, minAvailable: '50%' } }]))).toContain('configured');
    const read = await policy.readNamespacedPodDisruptionBudget({ name: 'web', namespace: 'web' });
    expect(read.spec?.minAvailable).toBe('50%');
    expect(read.status).toEqual({ currentHealthy: 2, desiredHealthy: 1, disruptionsAllowed: 1, expectedPods: 2 });
    expect(await ok(tools.kubectl(['get', 'pdb', '-o', 'name']))).toBe('poddisruptionbudget.policy/web\n');
  });
});

describe('built-in objects are decoded against the Kubernetes schema', () => {
  const unknownField = 'spec.template.spec.containers[0].securityContext.readOnlyRootFS';

  it('rejects an unknown field under kubectl\'s default Strict validation, even on a server dry run', async () => {
    const result = await apply([deployment('strict', { securityContext: { readOnlyRootFS: true } })], '--dry-run=server');
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "${unknownField}"`);
    const created = await apply([deployment('strict', { securityContext: { readOnlyRootFS: true } })]);
    expect(created.code).not.toBe(0);
    expect((await tools.kubectl(['get', 'deployment', 'strict'])).stderr).toContain('NotFound');
  });

  it('rejects wrong types whatever the field validation', async () => {
    for (const validate of ['--validate=strict', '--validate=false']) {
      const result = await apply([deployment('typed', { readinessProbe: { httpGet: { path: '/readyz', port: 8080 }, periodSeconds: '20' } })], '--dry-run=server', validate);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('cannot unmarshal string into Go struct field Probe.spec.template.spec.containers.readinessProbe.periodSeconds of type int32');
    }
    const patched = await ok(apply([deployment('typed')]));
    expect(patched).toContain('deployment.apps/typed created');
    // Patches are checked on their result: a merge patch and a JSON patch with a string count.
    const merge = await tools.kubectl(['patch', 'deployment', 'typed', '--type=merge', '-p', '{"spec":{"replicas":"3"}}']);
    expect(merge.stderr).toContain('cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32');
    const json = await tools.kubectl(['patch', 'deployment', 'typed', '--type=json', '-p', '[{"op":"add","path":"/spec/template/spec/containers/0/ports","value":[{"containerPort":"80"}]}]']);
    expect(json.stderr).toContain('cannot unmarshal string into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32');
    expect((await apps.readNamespacedDeployment({ name: 'typed', namespace: 'web' })).spec?.replicas).toBe(1);
  });

  it('warns about and drops unknown fields under Warn, drops them silently under Ignore', async () => {
    const warned = await apply([deployment('warned', { securityContext: { readOnlyRootFS: true, runAsNonRoot: true } })], '--validate=warn');
    expect(warned.code).toBe(0);
    expect(warned.stderr).toContain(`Warning: unknown field "${unknownField}"`);
    const stored = await apps.readNamespacedDeployment({ name: 'warned', namespace: 'web' });
    expect(stored.spec?.template.spec?.containers[0].securityContext).toEqual({ runAsNonRoot: true });
    const ignored = await apply([deployment('ignored', { securityContext: { readOnlyRootFS: true } })], '--validate=false');
    expect(ignored.code).toBe(0);
    expect(ignored.stderr).toBe('');
    expect((await apps.readNamespacedDeployment({ name: 'ignored', namespace: 'web' })).spec?.template.spec?.containers[0].securityContext).toEqual({});
  });

  it('answers client-node with 400 for a wrong type, and drops unknown fields under the default Warn', async () => {
    const wrongType = { ...deployment('client'), spec: { ...(deployment('client').spec as object), replicas: 'two' } } as unknown as V1Deployment;
    const typeError = await apps.createNamespacedDeployment({ namespace: 'web', body: wrongType }).catch((caught: unknown) => caught) as { code: number; body: string };
    expect(typeError.code).toBe(400);
    expect((JSON.parse(typeError.body) as { reason: string; message: string })).toMatchObject({
      reason: 'BadRequest', message: expect.stringContaining('cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32'),
    });
    // The typed clients drop unknown fields themselves; the generic one sends them as written.
    const unknown = { ...deployment('client'), spec: { ...(deployment('client').spec as object), replica: 2 } } as KubernetesObject;
    const created = await objects.create(unknown) as Record<string, unknown>;
    expect(created.spec).not.toHaveProperty('replica');
    expect((await apps.readNamespacedDeployment({ name: 'client', namespace: 'web' })).spec).not.toHaveProperty('replica');
    const current = await apps.readNamespacedDeployment({ name: 'client', namespace: 'web' });
    const update = await apps.replaceNamespacedDeployment({ name: 'client', namespace: 'web', body: { ...current, spec: { ...current.spec!, minReadySeconds: 'soon' as unknown as number } } })
      .catch((caught: unknown) => caught) as { code: number; body: string };
    expect(update.code).toBe(400);
    expect(update.body).toContain('cannot unmarshal string into Go struct field DeploymentSpec.spec.minReadySeconds of type int32');
  });
});

describe('the kubernetes.io/metadata.name label of namespaces', () => {
  const labelOf = async (name: string): Promise<string | undefined> => (await core.readNamespace({ name })).metadata?.labels?.['kubernetes.io/metadata.name'];

  it('is set on every create path: kubectl create (protobuf), kubectl apply, server-side apply, client-node (JSON), helm --create-namespace', async () => {
    await ok(tools.kubectl(['create', 'namespace', 'by-create']));
    await ok(apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'by-apply', labels: { team: 'a' } } }]));
    await ok(apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'by-ssa' } }], '--server-side'));
    await core.createNamespace({ body: { metadata: { name: 'by-client' } } });
    // A one-ConfigMap chart: helm creates the namespace itself, with a typed client.
    await mkdir(join(dir, 'chart', 'templates'), { recursive: true });
    await writeFile(join(dir, 'chart', 'Chart.yaml'), 'apiVersion: v2\nname: tiny\nversion: 0.1.0\n');
    await writeFile(join(dir, 'chart', 'templates', 'cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: tiny}\ndata: {a: b}\n');
    await ok(tools.helm(['install', 'tiny', join(dir, 'chart'), '-n', 'by-helm', '--create-namespace']));
    for (const name of ['by-create', 'by-apply', 'by-ssa', 'by-client', 'by-helm', 'default', 'kube-system']) expect(await labelOf(name)).toBe(name);
    expect(await ok(tools.kubectl(['create', 'namespace', 'dry', '--dry-run=server', '-o', 'jsonpath={.metadata.labels}']))).toBe('{"kubernetes.io/metadata.name":"dry"}');
  });

  it('survives every write that drops or changes it', async () => {
    await ok(apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'by-apply' } }]));
    await ok(tools.kubectl(['label', 'namespace', 'by-apply', 'kubernetes.io/metadata.name-']));
    await ok(tools.kubectl(['label', 'namespace', 'by-create', '--overwrite', 'kubernetes.io/metadata.name=other']));
    await ok(apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'by-ssa', labels: { team: 'b' } } }], '--server-side'));
    await ok(apply([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'by-ssa' } }], '--server-side'));
    const current = await core.readNamespace({ name: 'by-client' });
    await core.replaceNamespace({ name: 'by-client', body: { ...current, metadata: { name: 'by-client', resourceVersion: current.metadata?.resourceVersion } } });
    await ok(tools.kubectl(['patch', 'namespace', 'default', '--type=json', '-p', '[{"op":"remove","path":"/metadata/labels"}]']));
    await ok(tools.kubectl(['patch', 'namespace', 'kube-system', '--type=merge', '-p', '{"metadata":{"labels":null}}']));
    for (const name of ['by-apply', 'by-create', 'by-ssa', 'by-client', 'default', 'kube-system']) expect(await labelOf(name)).toBe(name);
    expect((await core.readNamespace({ name: 'by-apply' })).metadata?.labels).toEqual({ 'kubernetes.io/metadata.name': 'by-apply' });
  });

  it('survives a mutating webhook that replaces the labels', async () => {
    const certificate = await createServingCertificate();
    const webhook: Server = createServer({ cert: certificate.certPem, key: certificate.keyPem }, (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const review = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: { uid: string } };
        const patch = Buffer.from(JSON.stringify([{ op: 'replace', path: '/metadata/labels', value: { stamped: 'yes' } }])).toString('base64');
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch', patch } }));
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    try {
      await ok(apply([{ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'stamp' }, webhooks: [{
        name: 'stamp.gatehouse.dev', admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Fail',
        clientConfig: { url: `https://127.0.0.1:${(webhook.address() as AddressInfo).port}/`, caBundle: Buffer.from(certificate.caPem).toString('base64') },
        rules: [{ apiGroups: [''], apiVersions: ['v1'], resources: ['namespaces'], operations: ['CREATE', 'UPDATE'] }],
      }] }]));
      await core.createNamespace({ body: { metadata: { name: 'stamped' } } });
      expect((await core.readNamespace({ name: 'stamped' })).metadata?.labels).toEqual({ stamped: 'yes', 'kubernetes.io/metadata.name': 'stamped' });
    } finally {
      await ok(tools.kubectl(['delete', 'mutatingwebhookconfiguration', 'stamp']));
      await new Promise<void>((resolve) => webhook.close(() => resolve()));
    }
  });
});
