// The chart with Helm 3 (3.17, from scripts/kube-tools.sh) as well as Helm 4: it lints, renders the
// same objects as Helm 4 for the same values, installs into the loopback API server, upgrades and
// uninstalls. The Helm 4 tests (chart.test.ts, install.test.ts) check what the objects say.
import { silentLogger } from '../../api/logging/logger.js';
import { kubeTools, type KubeTools } from '../../e2e/apiserver/kubectl-runner.js';
import { startLoopbackApiServer, type LoopbackApiServer } from '../../e2e/apiserver/loopback-api-server.js';
import { parseManifests, withoutHelmLabels, type Manifest } from '../testing/rendered.js';

const CHART = 'charts/gatehouse';
const NAMESPACE = 'gatehouse-system';
const VALUE_SETS: readonly (readonly string[])[] = [[], ['-f', `${CHART}/ci/full-values.yaml`], ['-f', `${CHART}/ci/cluster-issuer-values.yaml`]];

let server: LoopbackApiServer;
let tools: KubeTools;

beforeAll(async () => {
  server = await startLoopbackApiServer({ logger: silentLogger() });
  tools = await kubeTools(server);
  const version = await tools.helm3(['version', '--short']);
  expect(version.stdout).toMatch(/^v3\./);
});

afterAll(async () => {
  await tools?.cleanup();
  await server?.close();
});

async function rendered(helm: 'helm' | 'helm3', values: readonly string[]): Promise<Manifest[]> {
  const result = await tools[helm](['template', 'gatehouse', CHART, '-n', NAMESPACE, ...values]);
  if (result.code !== 0) throw new Error(`${helm} template failed: ${result.stderr}`);
  // The two majors order kinds they do not know (cert-manager's, Prometheus Operator's) differently.
  const key = (manifest: Manifest) => `${manifest.kind}/${manifest.metadata.namespace ?? ''}/${manifest.metadata.name}`;
  return parseManifests(result.stdout).map(withoutHelmLabels).sort((a, b) => key(a).localeCompare(key(b)));
}

describe('the chart with Helm 3', () => {
  it.each(VALUE_SETS.map((values) => [values]))('lints with --strict and renders what Helm 4 renders, values %j', async (values) => {
    const lint = await tools.helm3(['lint', '--strict', CHART, ...values]);
    expect(lint.stderr).not.toMatch(/\[ERROR\]/);
    expect(lint.code).toBe(0);
    expect(await rendered('helm3', values)).toEqual(await rendered('helm', values));
  });

  it('refuses values the schema refuses', async () => {
    const result = await tools.helm3(['template', 'gatehouse', CHART, '-n', NAMESPACE, '--set', 'webhooks.injection.failurePolicy=Sometimes']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/failurePolicy/);
  });

  it('installs, upgrades and uninstalls', async () => {
    const install = await tools.helm3(['install', 'gatehouse', CHART, '-n', NAMESPACE, '--create-namespace']);
    expect(install.stderr).toBe('');
    expect(install.code).toBe(0);
    const deployment = await tools.kubectl(['get', 'deployment', 'gatehouse-operator', '-n', NAMESPACE, '-o', 'jsonpath={.spec.replicas}']);
    expect(deployment.stdout).toBe('2');
    const upgrade = await tools.helm3(['upgrade', 'gatehouse', CHART, '-n', NAMESPACE, '--set', 'replicaCount=3']);
    expect(upgrade.code).toBe(0);
    expect((await tools.kubectl(['get', 'deployment', 'gatehouse-operator', '-n', NAMESPACE, '-o', 'jsonpath={.spec.replicas}'])).stdout).toBe('3');
    const list = await tools.helm3(['list', '-n', NAMESPACE, '-o', 'json']);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ name: 'gatehouse', revision: '2', status: 'deployed' })]);
    const uninstall = await tools.helm3(['uninstall', 'gatehouse', '-n', NAMESPACE]);
    expect(uninstall.code).toBe(0);
    expect((await tools.kubectl(['get', 'deployment', 'gatehouse-operator', '-n', NAMESPACE])).code).not.toBe(0);
  }, 120_000);
});
