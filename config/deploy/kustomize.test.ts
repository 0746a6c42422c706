// The kustomize bases (config/deploy, config/prometheus, config/grafana) build with the real
// kubectl, hold the same objects as the Helm chart with matching values (minus Helm's own labels),
// carry CRDs identical to crds/, and match the Kubernetes schemas.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { V1ConfigMap, V1Deployment } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { silentLogger } from '../../api/logging/logger.js';
import { kubeTools, REPO_ROOT, type KubeTools } from '../../e2e/apiserver/kubectl-runner.js';
import { startLoopbackApiServer, type LoopbackApiServer } from '../../e2e/apiserver/loopback-api-server.js';
import { isBuiltinKind, validateBuiltinManifest } from '../../charts/testing/kube-schema.js';
import { parseManifests, Rendered, withoutHelmLabels, type Manifest } from '../../charts/testing/rendered.js';

let server: LoopbackApiServer;
let tools: KubeTools;

beforeAll(async () => {
  server = await startLoopbackApiServer({ logger: silentLogger() });
  tools = await kubeTools(server);
});

afterAll(async () => {
  await tools.cleanup();
  await server.close();
});

async function build(folder: string): Promise<Rendered> {
  const result = await tools.kubectl(['kustomize', folder]);
  if (result.code !== 0) throw new Error(`kubectl kustomize ${folder}: ${result.stderr}`);
  return new Rendered(parseManifests(result.stdout));
}

async function helmTemplate(args: readonly string[]): Promise<Rendered> {
  const result = await tools.helm(['template', 'gatehouse', 'charts/gatehouse', '-n', 'gatehouse-system', ...args]);
  if (result.code !== 0) throw new Error(`helm template: ${result.stderr}`);
  return new Rendered(parseManifests(result.stdout).map(withoutHelmLabels));
}

function byId(manifests: readonly Manifest[]): Map<string, Manifest> {
  return new Map(manifests.map((manifest) => [`${manifest.kind}/${manifest.metadata.name}`, manifest]));
}

describe('config/deploy', () => {
  let base: Rendered;
  beforeAll(async () => {
    base = await build('config/deploy');
  });

  it('equals the chart with default values (dashboard off), plus the namespace Helm creates', async () => {
    const chart = byId((await helmTemplate(['--include-crds', '--set', 'grafana.dashboard.enabled=false'])).manifests);
    const kustomized = byId(base.manifests);
    expect([...kustomized.keys()].sort()).toEqual([...chart.keys(), 'Namespace/gatehouse-system'].sort());
    for (const [id, manifest] of chart) expect({ id, manifest: kustomized.get(id) }).toEqual({ id, manifest });
  });

  it('starts the operator in the namespace it creates, with the Service name the webhooks call', () => {
    const deployment = base.get<V1Deployment>('Deployment');
    expect(deployment.metadata?.namespace).toBe(base.get<Manifest>('Namespace').metadata.name);
    expect(deployment.spec?.template.spec?.containers[0].args).toEqual(expect.arrayContaining(['--namespace=gatehouse-system', '--service-name=gatehouse-operator']));
  });

  it('carries CRDs byte-identical to crds/', async () => {
    const source = (await readdir(join(REPO_ROOT, 'crds'))).filter((file) => file.endsWith('.yaml')).sort();
    const copies = (await readdir(join(REPO_ROOT, 'config', 'deploy', 'crds'))).filter((file) => file.startsWith('gatehouse.dev_')).sort();
    expect(copies).toEqual(source);
    for (const file of source) {
      const copy = await readFile(join(REPO_ROOT, 'config', 'deploy', 'crds', file), 'utf8');
      expect({ file, same: copy === (await readFile(join(REPO_ROOT, 'crds', file), 'utf8')) }).toEqual({ file, same: true });
    }
  });

  it('matches the Kubernetes schemas', () => {
    const builtins = base.manifests.filter((manifest) => isBuiltinKind(manifest.kind));
    expect(builtins).toHaveLength(base.manifests.length);
    expect(builtins.flatMap((manifest) => validateBuiltinManifest(manifest))).toEqual([]);
  });

  it('is accepted by kubectl apply --dry-run=server, except the PodDisruptionBudget the loopback API server does not serve', async () => {
    const served = base.manifests.filter((manifest) => manifest.kind !== 'PodDisruptionBudget');
    // Namespaced objects need their namespace to exist even in a dry run.
    await tools.kubectl(['apply', '-f', '-'], stringify(base.get<Manifest>('Namespace')));
    const result = await tools.kubectl(['apply', '--dry-run=server', '--server-side', '-f', '-'], served.map((manifest) => stringify(manifest)).join('---\n'));
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  });
});

describe('config/prometheus', () => {
  it('holds the chart\'s ServiceMonitor, PodMonitor and PrometheusRule', async () => {
    const kustomized = await build('config/prometheus');
    const chart = byId((await helmTemplate([
      '--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.sidecarPodMonitor.enabled=true', '--set', 'metrics.prometheusRule.enabled=true',
      '--show-only', 'templates/monitoring.yaml',
    ])).manifests);
    expect(kustomized.ids()).toEqual([...chart.keys()].sort());
    for (const manifest of kustomized.manifests) {
      const id = `${manifest.kind}/${manifest.metadata.name}`;
      expect({ id, manifest }).toEqual({ id, manifest: chart.get(id) });
    }
  });
});

describe('config/grafana', () => {
  it('generates the dashboard ConfigMap the chart ships, labelled for the Grafana sidecar', async () => {
    const configMap = (await build('config/grafana')).get<V1ConfigMap>('ConfigMap');
    const chart = (await helmTemplate([])).get<V1ConfigMap>('ConfigMap');
    expect(configMap.metadata?.name).toBe(chart.metadata?.name);
    expect(configMap.metadata?.namespace).toBe('gatehouse-system');
    expect(configMap.metadata?.labels?.grafana_dashboard).toBe('1');
    expect(JSON.parse(configMap.data?.['gatehouse.json'] ?? '')).toEqual(JSON.parse(chart.data?.['gatehouse.json'] ?? ''));
  });
});
