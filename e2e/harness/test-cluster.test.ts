// The harness against the loopback API server with the real kubectl: CRDs from crds/ served, kubectl
// results returned (failures included), and waits that succeed or explain why they did not.
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { stringify } from 'yaml';
import { isGatehouseError } from '../../api/errors.js';
import { silentLogger } from '../../api/logging/logger.js';
import { startStandInKubelet } from '../kubelet/stand-in-kubelet.js';
import { injectedPod } from '../kubelet/testdata/injected-pod.js';
import { startTestCluster, type TestCluster } from './test-cluster.js';
import { waitForDeletion, waitForJsonPath, waitForObject } from './wait-for.js';

const fakeSidecar = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'kubelet', 'testdata', 'fake-sidecar.mjs');

describe('startTestCluster', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startTestCluster({ logger: silentLogger() });
  });

  afterAll(async () => {
    await cluster?.close();
  });

  it('serves the Gatehouse CRDs to the real kubectl', async () => {
    const result = await cluster.kubectl(['api-resources', '--api-group=gatehouse.dev', '-o', 'name']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout.split('\n').filter(Boolean).sort()).toEqual([
      'accesspolicies.gatehouse.dev', 'accessrequests.gatehouse.dev', 'nonhumanidentities.gatehouse.dev', 'protectedresources.gatehouse.dev',
    ]);
  });

  it('returns kubectl failures as results, and json() turns them into a clear error', async () => {
    const missing = await cluster.kubectl(['get', 'pod', 'nope', '-n', 'default']);
    expect(missing.exitCode).not.toBe(0);
    expect(missing.stderr).toContain('"nope" not found');
    const error = await cluster.kubectl.json(['get', 'pod', 'nope', '-n', 'default']).then(() => undefined, (caught: unknown) => caught);
    expect(isGatehouseError(error, 'GH_ERR_E2E_KUBECTL_FAILED')).toBe(true);
    expect((error as Error).message).toContain('get pod nope -n default');
  });

  it('applies manifests from stdin and waits on them', async () => {
    const manifest = stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'default' }, data: { mode: 'strict' } });
    const applied = await cluster.kubectl(['apply', '-f', '-'], { stdin: manifest });
    expect([applied.exitCode, applied.stderr]).toEqual([0, '']);
    const found = await waitForObject<{ data: Record<string, string> }>(cluster.kubectl, { resource: 'configmap', name: 'settings', namespace: 'default' }, (object) => object.data.mode === 'strict', { timeoutMs: 5000 });
    expect(found.data).toEqual({ mode: 'strict' });
    expect((await cluster.kubectl(['delete', 'configmap', 'settings', '-n', 'default'])).exitCode).toBe(0);
    await waitForDeletion(cluster.kubectl, { resource: 'configmap', name: 'settings', namespace: 'default' }, { timeoutMs: 5000 });
  });

  it('times out with the object as last seen', async () => {
    const stuck = stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'stuck', namespace: 'default' }, data: { phase: 'Pending' } });
    expect((await cluster.kubectl(['apply', '-f', '-'], { stdin: stuck })).exitCode).toBe(0);
    const error = await waitForJsonPath(cluster.kubectl, { resource: 'configmap', name: 'stuck', namespace: 'default' }, '{.data.phase}', 'Done', { timeoutMs: 600, intervalMs: 100 })
      .then(() => undefined, (caught: unknown) => caught);
    expect(isGatehouseError(error, 'GH_ERR_E2E_WAIT_TIMEOUT')).toBe(true);
    expect((error as Error).message).toContain('configmap default/stuck {.data.phase} = "Done"');
    expect((error as Error).message).toContain('"phase": "Pending"');
  });

  it('drives a pod through the stand-in kubelet to Ready as kubectl sees it', async () => {
    const kubelet = await startStandInKubelet({
      kubeconfigPath: cluster.kubeconfigPath,
      repoRoot: path.resolve(fakeSidecar, '..', '..', '..', '..'),
      namespace: 'default',
      imageCommands: { '*': [process.execPath, fakeSidecar] },
      logger: silentLogger(),
    });
    try {
      const account = stringify({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'ci-runner', namespace: 'default' } });
      expect((await cluster.kubectl(['apply', '-f', '-'], { stdin: account })).exitCode).toBe(0);
      const applied = await cluster.kubectl(['apply', '-f', '-'], { stdin: stringify(injectedPod({ name: 'web-1', namespace: 'default' })) });
      expect([applied.exitCode, applied.stderr]).toEqual([0, '']);
      const ref = { resource: 'pod', name: 'web-1', namespace: 'default' };
      await waitForJsonPath(cluster.kubectl, ref, '{.status.conditions[?(@.type=="Ready")].status}', 'True', { timeoutMs: 15_000 });
      const waited = await cluster.kubectl(['wait', '--for=condition=Ready', 'pod/web-1', '-n', 'default', '--timeout=5s']);
      expect([waited.exitCode, waited.stdout.trim()]).toEqual([0, 'pod/web-1 condition met']);
      const pid = kubelet.podProcess('default', 'web-1')?.pid;
      expect(pid).toBeGreaterThan(0);
      expect((await cluster.kubectl(['delete', 'pod', 'web-1', '-n', 'default', '--wait=false'])).exitCode).toBe(0);
      await kubelet.podProcess('default', 'web-1')?.exited;
      expect(() => process.kill(pid ?? 0, 0)).toThrow();
    } finally {
      await kubelet.stop();
    }
  });
});
