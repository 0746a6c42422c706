// The end-to-end scenario of issue 5 (operator-scenario.ts, the same steps and assertions) on a
// Gatehouse installed by `helm install` of charts/gatehouse into the loopback API server (issue 7): the
// chart's CRDs, RBAC and webhook configurations, and the operator process started with the installed
// Deployment's arguments plus only what loopback needs (loopback-cluster.ts). Then what only a Helm
// installation has: the release, its `<release>-operator` Service behind the webhooks, the Lease.
import type { V1MutatingWebhookConfiguration, V1ValidatingWebhookConfiguration } from '@kubernetes/client-node';
import { HELM_OPERATOR, HELM_RELEASE, startLoopbackCluster } from './loopback-cluster.js';
import { operatorScenario } from './operator-scenario.js';

const RELEASE_NAMESPACE = 'gatehouse-system';

const scenarioCluster = operatorScenario(() => startLoopbackCluster({ install: 'helm' }));

describe('the Helm installation the scenario ran on', () => {
  it('is a deployed release of the chart', async () => {
    const result = await scenarioCluster().kubectl.helm(['list', '-n', RELEASE_NAMESPACE, '-o', 'json']);
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([expect.objectContaining({ name: HELM_RELEASE, status: 'deployed', chart: 'gatehouse-0.1.0' })]);
  });

  it('has the chart\'s webhook configurations pointing at the release\'s Service, with the caBundle the operator patched in', async () => {
    const { kubectl } = scenarioCluster();
    const mutating = await kubectl.json<V1MutatingWebhookConfiguration>(['get', 'mutatingwebhookconfiguration', 'gatehouse-sidecar-injector']);
    const validating = await kubectl.json<V1ValidatingWebhookConfiguration>(['get', 'validatingwebhookconfiguration', 'gatehouse-validation']);
    const webhooks = [...(mutating.webhooks ?? []), ...(validating.webhooks ?? [])];
    expect(webhooks.length).toBeGreaterThan(1);
    for (const webhook of webhooks) {
      expect(webhook.clientConfig.service).toMatchObject({ namespace: RELEASE_NAMESPACE, name: HELM_OPERATOR });
      expect(webhook.clientConfig.caBundle ?? '').not.toBe('');
    }
    expect(mutating.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('Helm');
  });

  it('ran the operator with the chart\'s leader election, holding the release\'s Lease', async () => {
    const cluster = scenarioCluster();
    // --leader-elect comes only from the installed Deployment's arguments, never from the loopback's own.
    expect(await cluster.operatorLog()).toContain('reconcilers on the Lease holder');
    const leases = await cluster.kubectl.json<{ items: { metadata: { name: string }; spec?: { holderIdentity?: string } }[] }>(['get', 'leases', '-n', RELEASE_NAMESPACE]);
    expect(leases.items.map((lease) => lease.spec?.holderIdentity)).toContain('gatehouse-operator-e2e');
  });
});
