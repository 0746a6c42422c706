// `helm install` of the chart into the loopback API server, then the e2e scenario on what it
// installed: the real operator, started with the flags the installed Deployment carries, serves the
// chart's webhook configurations (it patches their caBundle); Gatehouse objects are validated, pods in
// opted-in namespaces get the sidecar image the values name; with the operator gone the pod webhook
// fails closed, and a `helm upgrade` to failurePolicy Ignore admits pods unchanged. Then `helm list`
// and `helm uninstall`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Deployment, V1MutatingWebhookConfiguration, V1Pod } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { silentLogger } from '../../api/logging/logger.js';
import { runCli } from '../../cli/main.js';
import type { CliIO } from '../../cli/io.js';
import { kubeTools, REPO_ROOT, type KubeTools } from '../../e2e/apiserver/kubectl-runner.js';
import { startLoopbackApiServer, type LoopbackApiServer } from '../../e2e/apiserver/loopback-api-server.js';

const NAMESPACE = 'gatehouse-system';
const SIDECAR_IMAGE = 'registry.example.com/gatehouse/sidecar:e2e';
const INSTALL_VALUES = ['--set', `sidecar.image=${SIDECAR_IMAGE}`];

let server: LoopbackApiServer;
let tools: KubeTools;
let workDir: string;
/** Where the in-process operator's webhook server listens, once started. */
let webhookUrl: string | undefined;

beforeAll(async () => {
  server = await startLoopbackApiServer({
    crdDir: join(REPO_ROOT, 'crds'),
    logger: silentLogger(),
    // Cluster DNS for the one Service the chart's webhooks name.
    resolveService: (namespace, name, port) => {
      if (namespace === NAMESPACE && name === 'gatehouse-operator' && port === 443 && webhookUrl) return webhookUrl;
      throw new Error(`service ${name}.${namespace}:${port} has no endpoints`);
    },
  });
  tools = await kubeTools(server);
  workDir = await mkdtemp(join(tmpdir(), 'gatehouse-chart-install-'));
});

afterAll(async () => {
  await tools.cleanup();
  await server.close();
  await rm(workDir, { recursive: true, force: true });
});

async function ok(result: Promise<{ code: number; stdout: string; stderr: string }>): Promise<string> {
  const { code, stdout, stderr } = await result;
  if (code !== 0) throw new Error(`exit ${code}: ${stderr}`);
  return stdout;
}

async function apply(objects: readonly object[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return tools.kubectl(['apply', '-f', '-'], objects.map((object) => stringify(object)).join('---\n'));
}

function namespace(name: string, labels: Record<string, string> = {}): object {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

function pod(name: string, namespaceName: string, labels: Record<string, string> = {}): object {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: namespaceName, labels },
    spec: { serviceAccountName: 'ci-runner', containers: [{ name: 'app', image: 'example/app:1' }] },
  };
}

async function getPod(name: string, namespaceName: string): Promise<V1Pod> {
  return JSON.parse(await ok(tools.kubectl(['get', 'pod', name, '-n', namespaceName, '-o', 'json']))) as V1Pod;
}

function cliIO(): CliIO & { out: () => string; err: () => string; abort: () => void } {
  let out = '';
  let err = '';
  const controller = new AbortController();
  return {
    stdout: (text) => (out += text), stderr: (text) => (err += text), cwd: workDir, signal: controller.signal,
    out: () => out, err: () => err, abort: () => controller.abort(),
  };
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('helm install into the loopback API server, then the e2e scenario', () => {
  it('installs, runs the operator as installed, enforces the webhooks, upgrades, lists and uninstalls', async () => {
    await ok(apply([namespace(NAMESPACE)]));
    const installed = await ok(tools.helm(['install', 'gatehouse', 'charts/gatehouse', '-n', NAMESPACE, ...INSTALL_VALUES]));
    expect(installed).toContain('STATUS: deployed');
    expect(installed).toContain('kubectl label namespace payments gatehouse.dev/inject=enabled');
    const releases = JSON.parse(await ok(tools.helm(['list', '-n', NAMESPACE, '-o', 'json']))) as { name: string; status: string; chart: string }[];
    expect(releases).toEqual([expect.objectContaining({ name: 'gatehouse', status: 'deployed', chart: 'gatehouse-0.1.0' })]);
    expect(await ok(tools.kubectl(['get', 'poddisruptionbudget', '-n', NAMESPACE, '-o', 'name']))).toBe('poddisruptionbudget.policy/gatehouse-operator\n');

    // The operator, with exactly the installed Deployment's arguments; only ports and the bind
    // address change, since every replica here shares one loopback interface.
    const deployment = JSON.parse(await ok(tools.kubectl(['get', 'deployment', 'gatehouse-operator', '-n', NAMESPACE, '-o', 'json']))) as V1Deployment;
    const args = deployment.spec?.template.spec?.containers[0].args ?? [];
    expect(args[0]).toBe('operator');
    expect(args).toContain(`--sidecar-image=${SIDECAR_IMAGE}`);
    const io = cliIO();
    const exited = runCli([...args, '--kubeconfig', tools.kubeconfig, '--host', '127.0.0.1', '--control-plane-port=0', '--webhook-port=0', '--admin-port=0', '--log-level=silent'], io);
    try {
      await until(() => io.out().includes('ready\n') || io.err() !== '', 'the operator to be ready');
      expect(io.err()).toBe('');
      const webhookPort = /webhooks on :(\d+)/.exec(io.out())?.[1];
      expect(webhookPort).toBeDefined();
      webhookUrl = `https://127.0.0.1:${webhookPort}`;

      // The operator trusts its own CA into the chart's webhook configurations.
      await until(async () => {
        const config = JSON.parse(await ok(tools.kubectl(['get', 'mutatingwebhookconfiguration', 'gatehouse-sidecar-injector', '-o', 'json']))) as V1MutatingWebhookConfiguration;
        return (config.webhooks ?? []).every((webhook) => (webhook.clientConfig.caBundle ?? '') !== '');
      }, 'caBundle in the webhook configuration');

      // Gatehouse objects pass through the validating webhook.
      await ok(apply([namespace('payments', { 'gatehouse.dev/inject': 'enabled' }), { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'ci-runner', namespace: 'payments' } }]));
      await ok(tools.kubectl(['apply', '-f', 'config/samples/secrets', '-f', 'config/samples/identities', '-f', 'config/samples/resources', '-f', 'config/samples/policies']));
      // The webhook judges against the operator's caches: wait until it has reconciled the sample.
      await until(async () => (await ok(tools.kubectl(['get', 'nonhumanidentity', 'ci-runner', '-n', 'payments', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']))) === 'True', 'ci-runner to be Ready');
      const conflict = await apply([{
        apiVersion: 'gatehouse.dev/v1alpha1', kind: 'NonHumanIdentity', metadata: { name: 'impostor', namespace: 'payments' },
        spec: { serviceAccountName: 'ci-runner', groups: ['ci'], maxCredentialTTL: '15m' },
      }]);
      expect(conflict.code).not.toBe(0);
      expect(conflict.stderr).toContain('GH_ERR_IDENTITY_CONFLICT');

      // A pod in the opted-in namespace gets the sidecar image the chart's values named.
      await ok(apply([pod('ci-1', 'payments')]));
      const injected = await getPod('ci-1', 'payments');
      expect(injected.spec?.initContainers?.[0]).toMatchObject({ name: 'gatehouse-sidecar', image: SIDECAR_IMAGE, restartPolicy: 'Always' });
      // The operator's own namespace is never injected, even for a pod asking for it.
      await ok(apply([{ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'ci-runner', namespace: NAMESPACE } }, pod('own-1', NAMESPACE, { 'gatehouse.dev/inject': 'enabled' })]));
      expect((await getPod('own-1', NAMESPACE)).spec?.initContainers ?? []).toEqual([]);
    } finally {
      io.abort();
      expect(await exited).toBe(0);
    }

    // The operator is gone: injection fails closed (failurePolicy Fail) ...
    webhookUrl = undefined;
    const refused = await apply([pod('ci-2', 'payments')]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('namespace.inject.gatehouse.dev');
    // ... while pods in namespaces that did not opt in are untouched by the outage.
    await ok(apply([namespace('elsewhere'), { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'ci-runner', namespace: 'elsewhere' } }, pod('other-1', 'elsewhere')]));

    // failurePolicy Ignore, by helm upgrade: the pod is admitted unchanged.
    const upgraded = await ok(tools.helm(['upgrade', 'gatehouse', 'charts/gatehouse', '-n', NAMESPACE, ...INSTALL_VALUES, '--set', 'webhooks.injection.failurePolicy=Ignore']));
    expect(upgraded).toContain('REVISION: 2');
    await ok(apply([pod('ci-3', 'payments')]));
    expect((await getPod('ci-3', 'payments')).spec?.initContainers ?? []).toEqual([]);

    expect(await ok(tools.helm(['uninstall', 'gatehouse', '-n', NAMESPACE]))).toContain('release "gatehouse" uninstalled');
    expect((await ok(tools.kubectl(['get', 'deployments,services,serviceaccounts,roles,rolebindings,configmaps,poddisruptionbudgets', '-n', NAMESPACE, '-o', 'name']))).trim()).toBe('serviceaccount/ci-runner');
    expect((await ok(tools.kubectl(['get', 'mutatingwebhookconfigurations,validatingwebhookconfigurations,clusterroles,clusterrolebindings', '-o', 'name']))).trim()).toBe('');
    // Helm never deletes CRDs it installed from crds/ (it would delete every policy with them).
    expect(await ok(tools.kubectl(['get', 'crd', 'accesspolicies.gatehouse.dev', '-o', 'name']))).toContain('accesspolicies.gatehouse.dev');
    expect((await ok(tools.helm(['list', '-n', NAMESPACE, '-o', 'json']))).trim()).toBe('[]');
  }, 120_000);
});
