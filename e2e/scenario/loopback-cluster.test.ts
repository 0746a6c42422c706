// The Helm installation's operator command line, from the Deployment the chart really renders: what
// the loopback driver takes from it and what it refuses to run.
import path from 'node:path';
import type { V1Deployment } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { kubeToolsFolder, runTool } from '../harness/kubectl.js';
import { REPO_ROOT } from '../harness/test-cluster.js';
import { HELM_OPERATOR, HELM_RELEASE, HELM_VALUES, installedOperatorArgs, loopbackOperatorArgs } from './loopback-cluster.js';

async function renderedDeployment(): Promise<V1Deployment> {
  const helm = path.join(await kubeToolsFolder(REPO_ROOT), 'helm');
  // `helm template` talks to no cluster; the kubeconfig path is never read.
  const result = await runTool(helm, ['template', HELM_RELEASE, 'charts/gatehouse', '-n', 'gatehouse-system', ...HELM_VALUES], { kubeconfigPath: '/nonexistent', cwd: REPO_ROOT });
  expect(result.stderr).toBe('');
  const objects = parseAllDocuments(result.stdout).map((document) => document.toJS() as { kind?: string } | null);
  const deployments = objects.filter((object): object is V1Deployment => object?.kind === 'Deployment');
  expect(deployments).toHaveLength(1);
  return deployments[0]!;
}

function withArgs(args: string[] | undefined, extraContainers = 0): V1Deployment {
  const container = { name: 'operator', image: 'gatehouse/operator:e2e', ...(args ? { args } : {}) };
  return { spec: { selector: {}, template: { spec: { containers: [container, ...Array.from({ length: extraContainers }, (_, index) => ({ name: `extra-${index}` }))] } } } };
}

describe('installedOperatorArgs', () => {
  it('takes the chart\'s operator arguments as rendered, named after the release and carrying the values', async () => {
    const deployment = await renderedDeployment();
    expect(deployment.metadata?.name).toBe(HELM_OPERATOR);
    const args = installedOperatorArgs(deployment);
    expect(args[0]).toBe('operator');
    expect(args).toEqual(expect.arrayContaining([`--service-name=${HELM_OPERATOR}`, '--namespace=gatehouse-system', '--sidecar-image=gatehouse/sidecar:e2e', '--leader-elect']));
    expect(deployment.spec?.template.spec?.containers[0]?.image).toBe('gatehouse/operator:e2e');
  });

  it('refuses a Deployment that does not run `gatehouse operator` alone', () => {
    expect(() => installedOperatorArgs(withArgs(['dev', '--config', 'x']))).toThrow(/not `gatehouse operator`/);
    expect(() => installedOperatorArgs(withArgs(undefined))).toThrow(/not `gatehouse operator`/);
    expect(() => installedOperatorArgs(withArgs(['operator'], 1))).toThrow(/2 containers/);
  });
});

describe('loopbackOperatorArgs', () => {
  it('changes only where the operator listens, what sidecars dial, the kubeconfig and the recordings folder', () => {
    const args = loopbackOperatorArgs('/tmp/kubeconfig', '/tmp/recordings', { webhook: 1001, controlPlane: 1002, admin: 1003 });
    const flags = args.filter((arg) => arg.startsWith('--')).sort();
    expect(flags).toEqual(['--admin-port', '--control-plane-address', '--control-plane-port', '--host', '--kubeconfig', '--recordings-dir', '--webhook-port']);
    expect(args).toEqual(expect.arrayContaining(['127.0.0.1:1002', '/tmp/recordings', '/tmp/kubeconfig']));
  });
});
