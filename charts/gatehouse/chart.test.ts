// The Helm chart with the real helm (v4): lint, templates with default and non-default values,
// values.schema.json refusing bad values, CRDs and monitoring files identical to their sources, and
// every rendered manifest checked against the Kubernetes schemas (client-node's v1.34 models) and by
// `kubectl apply --dry-run=server` against the loopback API server.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type {
  V1ClusterRole, V1ClusterRoleBinding, V1ConfigMap, V1Deployment, V1MutatingWebhookConfiguration, V1PodDisruptionBudget,
  V1Role, V1Secret, V1Service, V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { silentLogger } from '../../api/logging/logger.js';
import { kubeTools, REPO_ROOT, type KubeTools } from '../../e2e/apiserver/kubectl-runner.js';
import { startLoopbackApiServer, type LoopbackApiServer } from '../../e2e/apiserver/loopback-api-server.js';
import { isBuiltinKind, validateBuiltinManifest } from '../testing/kube-schema.js';
import { parseManifests, Rendered, type Manifest } from '../testing/rendered.js';

const CHART = 'charts/gatehouse';
const NAMESPACE = 'gatehouse-system';
/** Kinds the loopback API server does not serve (it says so with "no matches for kind"). */
const NOT_SERVED_BY_LOOPBACK = new Set(['PodDisruptionBudget', 'ServiceMonitor', 'PodMonitor', 'PrometheusRule', 'Certificate', 'Issuer']);

let server: LoopbackApiServer;
let tools: KubeTools;

beforeAll(async () => {
  server = await startLoopbackApiServer({ crdDir: join(REPO_ROOT, 'crds'), logger: silentLogger() });
  tools = await kubeTools(server);
  const namespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE, labels: { 'kubernetes.io/metadata.name': NAMESPACE } } };
  const created = await tools.kubectl(['apply', '-f', '-'], stringify(namespace));
  if (created.code !== 0) throw new Error(created.stderr);
});

afterAll(async () => {
  await tools.cleanup();
  await server.close();
});

async function template(args: readonly string[] = []): Promise<Rendered> {
  const result = await tools.helm(['template', 'gatehouse', CHART, '-n', NAMESPACE, ...args]);
  if (result.code !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  return new Rendered(parseManifests(result.stdout));
}

function container(deployment: V1Deployment) {
  const containers = deployment.spec?.template.spec?.containers ?? [];
  expect(containers).toHaveLength(1);
  return containers[0];
}

describe('helm lint', () => {
  it.each([[[]], [['-f', `${CHART}/ci/full-values.yaml`]], [['-f', `${CHART}/ci/cluster-issuer-values.yaml`]]])('passes --strict with values %j', async (args) => {
    const result = await tools.helm(['lint', '--strict', CHART, ...args]);
    expect({ code: result.code, out: result.stdout + result.stderr }).toMatchObject({ code: 0 });
    expect(result.stdout).toContain('0 chart(s) failed');
  });
});

describe('helm template with default values', () => {
  let rendered: Rendered;
  beforeAll(async () => {
    rendered = await template();
  });

  it('renders the operator, its RBAC, Services, PDB, webhooks and the dashboard, and nothing optional', () => {
    expect(rendered.ids()).toEqual([
      'ClusterRole/gatehouse-operator', 'ClusterRole/gatehouse-operator-approver', 'ClusterRoleBinding/gatehouse-operator', 'ConfigMap/gatehouse-operator-dashboard',
      'Deployment/gatehouse-operator', 'MutatingWebhookConfiguration/gatehouse-accessrequest-decisions', 'MutatingWebhookConfiguration/gatehouse-sidecar-injector',
      'PodDisruptionBudget/gatehouse-operator',
      'Role/gatehouse-operator', 'RoleBinding/gatehouse-operator', 'Service/gatehouse-operator', 'Service/gatehouse-operator-metrics',
      'ServiceAccount/gatehouse-operator', 'ValidatingWebhookConfiguration/gatehouse-validation',
    ]);
  });

  it('runs two hardened, spread, probed replicas with the flags the operator takes', () => {
    const deployment = rendered.get<V1Deployment>('Deployment');
    expect(deployment.spec?.replicas).toBe(2);
    const pod = deployment.spec!.template.spec!;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.[0].podAffinityTerm.labelSelector?.matchLabels)
      .toEqual(deployment.spec?.selector.matchLabels);
    const operator = container(deployment);
    expect(operator.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(operator.image).toBe('gatehouse/operator:0.1.0');
    expect(operator.args).toEqual([
      'operator', `--namespace=${NAMESPACE}`, '--service-name=gatehouse-operator', '--leader-elect', '--control-plane-port=15010',
      '--webhook-port=9443', '--admin-port=9464', '--sidecar-image=gatehouse/sidecar:0.1.0', '--identity-verification=token-review',
      '--log-level=info', '--drain-seconds=10',
      '--recordings-dir=/var/lib/gatehouse/recordings', '--recordings-retention-days=30', '--recordings-max-bytes=10737418240',
    ]);
    // Recordings live on a volume of their own (the root file system is read-only).
    expect(operator.volumeMounts).toContainEqual({ name: 'recordings', mountPath: '/var/lib/gatehouse/recordings' });
    expect(pod.volumes).toContainEqual({ name: 'recordings', emptyDir: { sizeLimit: '1Gi' } });
    expect(operator.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(operator.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(operator.resources).toEqual({ requests: { cpu: '100m', memory: '192Mi' }, limits: { memory: '384Mi' } });
    expect(operator.env).toEqual([{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }]);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(10 + 10);
  });

  it('puts webhooks and gRPC behind the Service the certificate names, and metrics on their own', () => {
    const deployment = rendered.get<V1Deployment>('Deployment');
    const podLabels = deployment.spec!.template.metadata!.labels!;
    const portNames = new Set(container(deployment).ports?.map((port) => port.name));
    for (const name of ['gatehouse-operator', 'gatehouse-operator-metrics']) {
      const service = rendered.get<V1Service>('Service', name);
      for (const [key, value] of Object.entries(service.spec?.selector ?? {})) expect(podLabels[key]).toBe(value);
      for (const port of service.spec?.ports ?? []) expect(portNames).toContain(port.targetPort);
    }
    expect(rendered.get<V1Service>('Service', 'gatehouse-operator').spec?.ports?.map((port) => [port.name, port.port])).toEqual([['webhook', 443], ['grpc-control-plane', 15010]]);
    expect(rendered.get<V1Service>('Service', 'gatehouse-operator-metrics').spec?.ports?.map((port) => [port.name, port.port])).toEqual([['metrics', 9464]]);
  });

  it('keeps one replica through voluntary disruptions', () => {
    const budget = rendered.get<V1PodDisruptionBudget>('PodDisruptionBudget');
    expect(budget.spec?.minAvailable).toBe(1);
    expect(budget.spec?.selector?.matchLabels).toEqual(rendered.get<V1Deployment>('Deployment').spec?.selector.matchLabels);
  });

  it('registers the injection and validation webhooks at the operator, failing closed, scoped to opted-in namespaces and pods', () => {
    const mutating = rendered.get<V1MutatingWebhookConfiguration>('MutatingWebhookConfiguration', 'gatehouse-sidecar-injector');
    expect(mutating.webhooks?.map((webhook) => webhook.name)).toEqual(['namespace.inject.gatehouse.dev', 'pod.inject.gatehouse.dev']);
    for (const webhook of mutating.webhooks ?? []) {
      expect(webhook.clientConfig).toEqual({ service: { namespace: NAMESPACE, name: 'gatehouse-operator', path: '/mutate-pods', port: 443 } });
      expect(webhook).toMatchObject({ failurePolicy: 'Fail', sideEffects: 'None', admissionReviewVersions: ['v1'], timeoutSeconds: 5 });
      expect(webhook.namespaceSelector?.matchExpressions).toContainEqual({ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [NAMESPACE, 'kube-system'] });
    }
    expect(mutating.webhooks?.[0].namespaceSelector?.matchExpressions).toContainEqual({ key: 'gatehouse.dev/inject', operator: 'In', values: ['enabled'] });
    expect(mutating.webhooks?.[0].objectSelector).toEqual({ matchExpressions: [{ key: 'gatehouse.dev/inject', operator: 'NotIn', values: ['disabled'] }] });
    expect(mutating.webhooks?.[1].objectSelector).toEqual({ matchLabels: { 'gatehouse.dev/inject': 'enabled' } });
    const validating = rendered.get<V1ValidatingWebhookConfiguration>('ValidatingWebhookConfiguration');
    expect(validating.webhooks?.[0]).toMatchObject({
      failurePolicy: 'Fail',
      clientConfig: { service: { namespace: NAMESPACE, name: 'gatehouse-operator', path: '/validate-gatehouse', port: 443 } },
      rules: [{ apiGroups: ['gatehouse.dev'], apiVersions: ['v1alpha1'], operations: ['CREATE', 'UPDATE', 'DELETE'] }],
    });
    // The operator fills in caBundle; a chart that set one would fight it on every upgrade.
    expect(JSON.stringify(rendered.all('MutatingWebhookConfiguration').concat(validating as Manifest))).not.toContain('caBundle');
  });

  it('registers the AccessRequest decision webhook for updates of requests and their status, failing closed', () => {
    const decisions = rendered.get<V1MutatingWebhookConfiguration>('MutatingWebhookConfiguration', 'gatehouse-accessrequest-decisions');
    expect(decisions.webhooks).toEqual([{
      name: 'accessrequest-status.gatehouse.dev', admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Fail', timeoutSeconds: 5,
      clientConfig: { service: { namespace: NAMESPACE, name: 'gatehouse-operator', path: '/mutate-accessrequest-status', port: 443 } },
      rules: [{ apiGroups: ['gatehouse.dev'], apiVersions: ['v1alpha1'], resources: ['accessrequests', 'accessrequests/status'], operations: ['UPDATE'], scope: 'Namespaced' }],
    }]);
  });

  it('lets approvers see and decide AccessRequests through an aggregated ClusterRole, and the operator create and expire them', () => {
    const approver = rendered.get<V1ClusterRole>('ClusterRole', 'gatehouse-operator-approver');
    expect(approver.rules).toEqual([
      { apiGroups: ['gatehouse.dev'], resources: ['accessrequests'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['gatehouse.dev'], resources: ['accessrequests/status'], verbs: ['get', 'patch'] },
    ]);
    expect(approver.metadata?.labels).toMatchObject({ 'rbac.authorization.k8s.io/aggregate-to-admin': 'true', 'rbac.authorization.k8s.io/aggregate-to-edit': 'true' });
    expect(approver.metadata?.labels?.['rbac.authorization.k8s.io/aggregate-to-view']).toBeUndefined();
    // No group is bound by default: who approves is the cluster admin's choice.
    expect(rendered.all('ClusterRoleBinding').map((binding) => binding.metadata.name)).toEqual(['gatehouse-operator']);
    const operatorRules = rendered.get<V1ClusterRole>('ClusterRole', 'gatehouse-operator').rules ?? [];
    const allows = (resource: string, verb: string, group = 'gatehouse.dev') => operatorRules.some((rule) => rule.apiGroups?.includes(group) && rule.resources?.includes(resource) && rule.verbs.includes(verb));
    for (const verb of ['create', 'get', 'list', 'watch']) expect({ verb, allowed: allows('accessrequests', verb) }).toEqual({ verb, allowed: true });
    expect(allows('accessrequests/status', 'patch')).toBe(true);
    for (const resource of ['nonhumanidentities', 'accesspolicies']) expect(allows(resource, 'get')).toBe(true);
    expect(allows('pods', 'get', '')).toBe(true);
  });

  it('sends no approval notifications unless a URL is given', () => {
    expect(rendered.all('Secret')).toEqual([]);
    expect(JSON.stringify(rendered.get<V1Deployment>('Deployment'))).not.toContain('GATEHOUSE_APPROVALS_');
  });

  it('grants the operator only its own webhook configurations and its own namespace for writes', () => {
    const clusterRole = rendered.get<V1ClusterRole>('ClusterRole', 'gatehouse-operator');
    const webhookRule = clusterRole.rules?.find((rule) => rule.resourceNames !== undefined);
    expect(webhookRule).toEqual({
      apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'],
      resourceNames: ['gatehouse-sidecar-injector', 'gatehouse-validation', 'gatehouse-accessrequest-decisions'], verbs: ['get', 'patch', 'update'],
    });
    const coreRule = clusterRole.rules?.find((rule) => rule.apiGroups?.includes('') && rule.resources?.includes('secrets'));
    expect(coreRule?.verbs).toEqual(['get', 'list', 'watch']);
    expect(clusterRole.rules?.flatMap((rule) => rule.verbs)).not.toContain('*');
    expect(rendered.get<V1Role>('Role').metadata?.namespace).toBe(NAMESPACE);
    expect(rendered.get<V1Role>('Role').rules?.find((rule) => rule.resources?.includes('secrets'))?.verbs).toEqual(['create', 'update', 'patch']);
    expect(rendered.get<V1ClusterRoleBinding>('ClusterRoleBinding', 'gatehouse-operator').subjects).toEqual([{ kind: 'ServiceAccount', name: 'gatehouse-operator', namespace: NAMESPACE }]);
  });

  it('ships the dashboard for the Grafana sidecar loader', async () => {
    const configMap = rendered.get<V1ConfigMap>('ConfigMap');
    expect(configMap.metadata?.labels?.grafana_dashboard).toBe('1');
    const source = JSON.parse(await readFile(join(REPO_ROOT, 'config', 'grafana', 'gatehouse-dashboard.json'), 'utf8')) as unknown;
    expect(JSON.parse(configMap.data?.['gatehouse.json'] ?? '')).toEqual(source);
  });
});

describe('helm template with non-default values (ci/full-values.yaml)', () => {
  let rendered: Rendered;
  beforeAll(async () => {
    rendered = await template(['-f', `${CHART}/ci/full-values.yaml`]);
  });

  it('adds cert-manager, ServiceMonitor, PodMonitor and PrometheusRule objects', () => {
    expect(rendered.ids()).toEqual(expect.arrayContaining([
      'Certificate/gatehouse-operator', 'Certificate/gatehouse-operator-ca', 'Issuer/gatehouse-operator-ca', 'Issuer/gatehouse-operator-selfsigned',
      'ServiceMonitor/gatehouse-operator', 'PodMonitor/gatehouse-sidecars', 'PrometheusRule/gatehouse-operator',
    ]));
  });

  it('runs three replicas spread hard across nodes, by digest, with the flags the values ask for', () => {
    const deployment = rendered.get<V1Deployment>('Deployment');
    expect(deployment.spec?.replicas).toBe(3);
    expect(deployment.spec?.template.spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.[0].topologyKey).toBe('kubernetes.io/hostname');
    expect(deployment.spec?.template.spec?.priorityClassName).toBe('system-cluster-critical');
    expect(deployment.spec?.template.spec?.terminationGracePeriodSeconds).toBe(40);
    const operator = container(deployment);
    expect(operator.image).toBe('gatehouse/operator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef');
    expect(operator.args).toEqual(expect.arrayContaining([
      '--sidecar-image=registry.example.com/gatehouse/sidecar:0.1.0', '--control-plane-address=gatehouse.example.internal:15010',
      '--identity-verification=jwks', '--log-level=debug', '--drain-seconds=30',
    ]));
    expect(operator.args).toEqual(expect.arrayContaining(['--recordings-retention-days=90', '--recordings-max-bytes=53687091200']));
    expect(deployment.spec?.template.spec?.volumes).toContainEqual({ name: 'recordings', persistentVolumeClaim: { claimName: 'gatehouse-recordings' } });
    expect(rendered.get<V1PodDisruptionBudget>('PodDisruptionBudget').spec).toMatchObject({ maxUnavailable: 1 });
    expect(rendered.get<V1PodDisruptionBudget>('PodDisruptionBudget').spec?.minAvailable).toBeUndefined();
  });

  it('starts the operator on the cert-manager certificate and has the CA injector fill the webhooks', () => {
    const certificate = rendered.get<Manifest & { spec: { secretName: string; dnsNames: string[]; issuerRef: { name: string; kind: string } } }>('Certificate', 'gatehouse-operator');
    expect(certificate.spec.dnsNames).toEqual([`gatehouse-operator.${NAMESPACE}.svc`, `gatehouse-operator.${NAMESPACE}.svc.cluster.local`]);
    expect(certificate.spec.issuerRef).toMatchObject({ kind: 'Issuer', name: 'gatehouse-operator-ca' });
    const caIssuer = rendered.get<Manifest & { spec: { ca: { secretName: string } } }>('Issuer', 'gatehouse-operator-ca');
    const caCertificate = rendered.get<Manifest & { spec: { isCA: boolean; secretName: string; issuerRef: { name: string } } }>('Certificate', 'gatehouse-operator-ca');
    expect(caCertificate.spec).toMatchObject({ isCA: true, secretName: caIssuer.spec.ca.secretName, issuerRef: { name: 'gatehouse-operator-selfsigned' } });
    const deployment = rendered.get<V1Deployment>('Deployment');
    const operator = container(deployment);
    expect(operator.args).toEqual(expect.arrayContaining(['--tls-cert-file=/etc/gatehouse/tls/tls.crt', '--tls-key-file=/etc/gatehouse/tls/tls.key', '--tls-ca-file=/etc/gatehouse/tls/ca.crt']));
    expect(operator.volumeMounts).toContainEqual({ name: 'tls', mountPath: '/etc/gatehouse/tls', readOnly: true });
    expect(deployment.spec?.template.spec?.volumes?.find((volume) => volume.name === 'tls')?.secret?.secretName).toBe(certificate.spec.secretName);
    const webhookConfigurations = [...rendered.all('MutatingWebhookConfiguration'), ...rendered.all('ValidatingWebhookConfiguration')];
    expect(webhookConfigurations).toHaveLength(3);
    for (const configuration of webhookConfigurations) {
      expect(configuration.metadata.annotations).toEqual({ 'cert-manager.io/inject-ca-from': `${NAMESPACE}/gatehouse-operator` });
    }
    // With cert-manager the operator writes no Secret of its own.
    expect(rendered.get<V1Role>('Role').rules?.some((rule) => rule.resources?.includes('secrets'))).toBe(false);
  });

  it('applies the failure policies and selector overrides', () => {
    const mutating = rendered.get<V1MutatingWebhookConfiguration>('MutatingWebhookConfiguration', 'gatehouse-sidecar-injector');
    expect(mutating.webhooks?.map((webhook) => [webhook.failurePolicy, webhook.timeoutSeconds])).toEqual([['Ignore', 10], ['Ignore', 10]]);
    // Failing open is offered for injection and validation only: decisions without their webhook are unchecked.
    const decisions = rendered.get<V1MutatingWebhookConfiguration>('MutatingWebhookConfiguration', 'gatehouse-accessrequest-decisions');
    expect(decisions.webhooks?.map((webhook) => [webhook.failurePolicy, webhook.timeoutSeconds])).toEqual([['Fail', 10]]);
    expect(mutating.webhooks?.[0].namespaceSelector).toEqual({ matchLabels: { team: 'payments' } });
    expect(mutating.webhooks?.[0].objectSelector).toEqual({ matchExpressions: [{ key: 'gatehouse.dev/inject', operator: 'In', values: ['enabled'] }] });
    expect(mutating.webhooks?.[1].namespaceSelector?.matchExpressions).toContainEqual({ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [NAMESPACE, 'kube-system', 'monitoring'] });
    const validating = rendered.get<V1ValidatingWebhookConfiguration>('ValidatingWebhookConfiguration');
    expect(validating.webhooks?.[0].failurePolicy).toBe('Ignore');
    expect(validating.webhooks?.[0].namespaceSelector).toEqual({ matchExpressions: [{ key: 'gatehouse.dev/validate', operator: 'NotIn', values: ['disabled'] }] });
  });

  it('points the ServiceMonitor at the metrics Service under the job name the alerts select', async () => {
    const monitor = rendered.get<Manifest & { spec: { jobLabel: string; selector: { matchLabels: Record<string, string> }; endpoints: { port: string; path: string }[] } }>('ServiceMonitor');
    expect(monitor.metadata.labels?.release).toBe('kube-prometheus-stack');
    const metricsService = rendered.get<V1Service>('Service', 'gatehouse-operator-metrics');
    for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) expect(metricsService.metadata?.labels?.[key]).toBe(value);
    expect(rendered.get<V1Service>('Service', 'gatehouse-operator').metadata?.labels?.['gatehouse.dev/metrics']).toBeUndefined();
    expect(metricsService.spec?.ports?.map((port) => port.name)).toContain(monitor.spec.endpoints[0].port);
    expect(monitor.spec.endpoints[0].path).toBe('/metrics');
    const job = metricsService.metadata?.labels?.[monitor.spec.jobLabel];
    expect(job).toBe('gatehouse-operator');
    expect(await readFile(join(REPO_ROOT, 'config', 'prometheus', 'gatehouse-alerts.yaml'), 'utf8')).toContain(`up{job="${job}"}`);
  });

  it('scrapes sidecars by the admin port name the injector gives them', async () => {
    const monitor = rendered.get<Manifest & { spec: { namespaceSelector: { any: boolean }; podMetricsEndpoints: { port: string }[] } }>('PodMonitor');
    expect(monitor.spec.namespaceSelector).toEqual({ any: true });
    const injector = await readFile(join(REPO_ROOT, 'operator', 'admission', 'pod-injection.ts'), 'utf8');
    expect(injector).toContain(`name: '${monitor.spec.podMetricsEndpoints[0].port}', containerPort: SIDECAR_ADMIN_PORT`);
  });

  it('ships the alert rules unchanged as a PrometheusRule', async () => {
    const rule = rendered.get<Manifest & { spec: unknown }>('PrometheusRule');
    expect(rule.spec).toEqual(parse(await readFile(join(REPO_ROOT, 'config', 'prometheus', 'gatehouse-alerts.yaml'), 'utf8')));
  });

  it('puts the dashboard where the values say Grafana looks', () => {
    expect(rendered.get<V1ConfigMap>('ConfigMap').metadata?.namespace).toBe('monitoring');
  });

  it('passes the approval notification URLs through a Secret, never in the args', () => {
    const secret = rendered.get<V1Secret>('Secret', 'gatehouse-operator-approval-notifications');
    expect(secret.metadata?.namespace).toBe(NAMESPACE);
    expect(secret.stringData).toEqual({ 'webhook-url': 'https://approvals.example.internal/gatehouse', 'slack-url': 'https://hooks.slack.example.com/services/T000/B000/XXXX' });
    const operator = container(rendered.get<V1Deployment>('Deployment'));
    expect(operator.env).toEqual(expect.arrayContaining([
      { name: 'GATEHOUSE_APPROVALS_WEBHOOK_URL', valueFrom: { secretKeyRef: { name: secret.metadata?.name, key: 'webhook-url', optional: true } } },
      { name: 'GATEHOUSE_APPROVALS_SLACK_URL', valueFrom: { secretKeyRef: { name: secret.metadata?.name, key: 'slack-url', optional: true } } },
    ]));
    expect(JSON.stringify(operator.args)).not.toContain('hooks.slack');
  });

  it('binds the approver role to the groups given, aggregated only where asked', () => {
    const binding = rendered.get<V1ClusterRoleBinding>('ClusterRoleBinding', 'gatehouse-operator-approver');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'gatehouse-operator-approver' });
    expect(binding.subjects).toEqual([
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'dba' }, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'oncall@example.com' },
    ]);
    const labels = rendered.get<V1ClusterRole>('ClusterRole', 'gatehouse-operator-approver').metadata?.labels ?? {};
    expect(Object.keys(labels).filter((key) => key.startsWith('rbac.authorization.k8s.io/'))).toEqual(['rbac.authorization.k8s.io/aggregate-to-admin']);
  });
});

describe('helm template with an existing ClusterIssuer (ci/cluster-issuer-values.yaml)', () => {
  it('uses it instead of creating a CA, and the ServiceAccount name given', async () => {
    const rendered = await template(['-f', `${CHART}/ci/cluster-issuer-values.yaml`]);
    expect(rendered.all('Issuer')).toEqual([]);
    expect(rendered.all('ConfigMap')).toEqual([]);
    expect(rendered.get<Manifest & { spec: { issuerRef: unknown } }>('Certificate').spec.issuerRef).toEqual({ name: 'corp-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' });
    expect(rendered.get<V1Deployment>('Deployment').spec?.template.spec?.serviceAccountName).toBe('gatehouse');
    expect(rendered.get<V1ClusterRoleBinding>('ClusterRoleBinding', 'gatehouse-operator').subjects?.[0].name).toBe('gatehouse');
  });
});

describe('approval notifications from an existing Secret', () => {
  it('reads the URLs from it and creates none', async () => {
    const rendered = await template(['--set', 'approvals.notifications.existingSecret=team-hooks', '--set', 'approvals.notifications.slackUrl=https://ignored.example.com']);
    expect(rendered.all('Secret')).toEqual([]);
    const env = container(rendered.get<V1Deployment>('Deployment')).env ?? [];
    expect(env.filter((variable) => variable.name.startsWith('GATEHOUSE_APPROVALS_')).map((variable) => variable.valueFrom?.secretKeyRef?.name)).toEqual(['team-hooks', 'team-hooks']);
  });
});

describe('values.schema.json', () => {
  it.each([
    [['--set', 'webhooks.injection.failurePolicy=Sometimes'], 'failurePolicy'],
    [['--set', 'webhooks.validation.failurePolicy=fail'], 'failurePolicy'],
    [['--set', 'replicaCount=0'], 'replicaCount'],
    [['--set', 'replicaCount=two'], 'replicaCount'],
    [['--set', 'replicas=3'], 'replicas'],
    [['--set', 'image.digest=latest'], 'digest'],
    [['--set', 'identityVerification=trust-me'], 'identityVerification'],
    [['--set', 'controlPlane.port=70000'], 'port'],
    [['--set', 'certManager.issuerRef.kind=Vault'], 'kind'],
    [['--set', 'webhooks.injection.namespaceSelector.matchExpressions[0].key=team', '--set', 'webhooks.injection.namespaceSelector.matchExpressions[0].operator=Like'], 'operator'],
    [['--set', 'metrics.serviceMonitor.interval=often'], 'interval'],
    [['--set', 'approvals.notifications.webhookUrl=ftp://hooks.example.com'], 'webhookUrl'],
    [['--set', 'approvals.notifications.slackUrl=hooks.slack.com/services/x'], 'slackUrl'],
    [['--set', 'approvals.approverRole.aggregateTo={view}'], 'aggregateTo'],
    [['--set', 'approvals.minApprovals=2'], 'minApprovals'],
  ])('refuses %j', async (args, field) => {
    const result = await tools.helm(['template', 'gatehouse', CHART, ...args]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("values don't meet the specifications of the schema");
    expect(result.stderr).toContain(field);
  });

  it('refuses several replicas without leader election, saying why', async () => {
    const result = await tools.helm(['template', 'gatehouse', CHART, '--set', 'leaderElection=false']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('leaderElection must be true when replicaCount > 1');
    expect((await tools.helm(['template', 'gatehouse', CHART, '--set', 'leaderElection=false', '--set', 'replicaCount=1'])).code).toBe(0);
  });
});

describe('CRDs', () => {
  it('are byte-identical to crds/', async () => {
    const source = (await readdir(join(REPO_ROOT, 'crds'))).filter((file) => file.endsWith('.yaml')).sort();
    const chart = (await readdir(join(REPO_ROOT, CHART, 'crds'))).sort();
    expect(chart).toEqual(source);
    for (const file of source) {
      expect({ file, text: await readFile(join(REPO_ROOT, CHART, 'crds', file), 'utf8') }).toEqual({ file, text: await readFile(join(REPO_ROOT, 'crds', file), 'utf8') });
    }
  });

  it('are installed by helm (--include-crds renders them)', async () => {
    const rendered = await template(['--include-crds']);
    expect(rendered.all('CustomResourceDefinition').map((crd) => crd.metadata.name).sort()).toEqual([
      'accesspolicies.gatehouse.dev', 'accessrequests.gatehouse.dev', 'nonhumanidentities.gatehouse.dev', 'protectedresources.gatehouse.dev',
    ]);
  });
});

describe('rendered manifests against the Kubernetes schemas', () => {
  const VALUES: readonly [string, readonly string[]][] = [
    ['default values with CRDs', ['--include-crds']],
    ['ci/full-values.yaml', ['-f', `${CHART}/ci/full-values.yaml`]],
    ['ci/cluster-issuer-values.yaml', ['-f', `${CHART}/ci/cluster-issuer-values.yaml`]],
  ];

  it.each(VALUES)('built-in kinds match the v1.34 API models: %s', async (_label, args) => {
    const rendered = await template(args);
    const builtins = rendered.manifests.filter((manifest) => isBuiltinKind(manifest.kind));
    expect(builtins.length).toBeGreaterThan(8);
    expect(builtins.flatMap((manifest) => validateBuiltinManifest(manifest))).toEqual([]);
  });

  it.each(VALUES)('kubectl apply --dry-run=server accepts what the loopback API server serves: %s', async (_label, args) => {
    const rendered = await template(args);
    const served = rendered.manifests.filter((manifest) => !NOT_SERVED_BY_LOOPBACK.has(manifest.kind) && (manifest.metadata.namespace ?? NAMESPACE) === NAMESPACE);
    const result = await tools.kubectl(['apply', '--dry-run=server', '--server-side', '-f', '-'], served.map((manifest) => stringify(manifest)).join('---\n'));
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(result.stdout.trim().split('\n')).toHaveLength(served.length);
  });

  it('custom kinds the loopback API server does not serve have the structure their CRDs require', async () => {
    const rendered = await template(['-f', `${CHART}/ci/full-values.yaml`]);
    const required: Record<string, { apiVersion: string; spec: string[] }> = {
      ServiceMonitor: { apiVersion: 'monitoring.coreos.com/v1', spec: ['selector', 'endpoints'] },
      PodMonitor: { apiVersion: 'monitoring.coreos.com/v1', spec: ['selector', 'podMetricsEndpoints'] },
      PrometheusRule: { apiVersion: 'monitoring.coreos.com/v1', spec: ['groups'] },
      Certificate: { apiVersion: 'cert-manager.io/v1', spec: ['secretName', 'issuerRef'] },
      Issuer: { apiVersion: 'cert-manager.io/v1', spec: [] },
    };
    const custom = rendered.manifests.filter((manifest) => !isBuiltinKind(manifest.kind));
    expect(custom.map((manifest) => manifest.kind).sort()).toEqual(['Certificate', 'Certificate', 'Issuer', 'Issuer', 'PodMonitor', 'PrometheusRule', 'ServiceMonitor']);
    for (const manifest of custom) {
      const shape = required[manifest.kind];
      expect(manifest.apiVersion).toBe(shape.apiVersion);
      expect(manifest.metadata.namespace).toBe(NAMESPACE);
      const spec = manifest.spec as Record<string, unknown>;
      for (const field of shape.spec) expect({ kind: manifest.kind, field, present: spec[field] !== undefined }).toEqual({ kind: manifest.kind, field, present: true });
    }
    // An Issuer is exactly one of its issuer types.
    for (const issuer of rendered.all('Issuer')) expect(Object.keys(issuer.spec as object)).toHaveLength(1);
  });
});
