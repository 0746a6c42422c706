// Test fixture: the loopback API server with Gatehouse's CRDs and our accessrequests/status
// admission webhook registered as the Helm chart registers it, plus a namespace with the identity
// `app` (ServiceAccount app) and a policy whose delete rule needs 2 approvals and whose write rule
// needs 1, from group system:serviceaccounts:dba (ServiceAccounts in namespace dba) or oncall/pager,
// on resources orders-db and db (the sidecar fixture's).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { NonHumanIdentity } from '../../../api/kinds/kinds.js';
import { silentLogger } from '../../../api/logging/logger.js';
import { kubeTools, type KubeTools } from '../../../e2e/apiserver/kubectl-runner.js';
import { startLoopbackApiServer, type LoopbackApiServer } from '../../../e2e/apiserver/loopback-api-server.js';
import { ACCESS_REQUEST_STATUS_PATH } from '../../admission/access-request-webhook.js';
import { startWebhookServer, type WebhookServer } from '../../admission/webhook-server.js';
import { issueCa, issueServingCertificate } from '../../certs/certificate-authority.js';
import { StaticCertificateSource } from '../../certs/certificate-source.js';
import { createKubeClient, RESOURCE_TYPES, type KubeClient } from '../../kube/kube-client.js';

export const NS = 'payments';
const DAY = 24 * 60 * 60_000;

export const APP_IDENTITY: NonHumanIdentity = {
  apiVersion: 'gatehouse.dev/v1alpha1', kind: 'NonHumanIdentity', metadata: { name: 'app', namespace: NS }, spec: { serviceAccountName: 'app', groups: ['apps'] },
};

export interface ApprovalCluster {
  readonly api: LoopbackApiServer;
  /** As the loopback admin, which the webhook knows as the operator. */
  readonly kube: KubeClient;
  readonly dir: string;
  /** kubectl (and helm) as ServiceAccount `namespace:name`, whose groups the API server authenticates. */
  kubectlAs(namespace: string, serviceAccount: string): Promise<KubeTools>;
  close(): Promise<void>;
}

export async function startApprovalCluster(): Promise<ApprovalCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'gh-approvals-'));
  const api = await startLoopbackApiServer({ crdDir: 'crds' });
  const kubeconfigPath = join(dir, 'admin.kubeconfig');
  await api.writeKubeconfig(kubeconfigPath);
  const kube = createKubeClient({ kubeconfigPath });
  const now = new Date();
  const ca = await issueCa({ commonName: 'approvals-test-ca', now, validityMs: DAY });
  const serving = await issueServingCertificate({ ca, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], now, validityMs: DAY });
  const webhooks: WebhookServer = await startWebhookServer({
    host: '127.0.0.1', port: 0, tls: new StaticCertificateSource({ cert: serving.certPem, key: serving.keyPem }),
    injection: () => undefined, clusterView: () => ({ identities: [], resources: [], policies: [], secrets: [] }),
    logger: silentLogger(), registry: new Registry(),
    accessRequests: { operatorUsers: ['gatehouse-loopback-admin'] },
  });
  await kube.create(RESOURCE_TYPES.mutatingWebhookConfigurations, {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: 'gatehouse-accessrequest-decisions' },
    webhooks: [{
      name: 'accessrequest-status.gatehouse.dev',
      clientConfig: { url: `https://127.0.0.1:${webhooks.port}${ACCESS_REQUEST_STATUS_PATH}`, caBundle: Buffer.from(ca.certPem).toString('base64') },
      rules: [{ apiGroups: ['gatehouse.dev'], apiVersions: ['v1alpha1'], operations: ['UPDATE'], resources: ['accessrequests', 'accessrequests/status'] }],
      failurePolicy: 'Fail', sideEffects: 'None', admissionReviewVersions: ['v1'],
    }],
  });
  await kube.create(RESOURCE_TYPES.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  await kube.create(RESOURCE_TYPES.nonHumanIdentities, APP_IDENTITY as never);
  await kube.create(RESOURCE_TYPES.accessPolicies, {
    apiVersion: 'gatehouse.dev/v1alpha1', kind: 'AccessPolicy', metadata: { name: 'app-policy', namespace: NS },
    spec: {
      subjects: [{ identity: 'app' }], resources: ['orders-db', 'db'],
      rules: [
        { name: 'reads', effect: 'allow', operations: ['read'] },
        { name: 'deletes', effect: 'require-approval', operations: ['delete'], approval: { approvers: { groups: ['system:serviceaccounts:dba'], users: ['system:serviceaccount:oncall:pager'] }, minApprovals: 2, timeout: '5m' } },
        { name: 'writes', effect: 'require-approval', operations: ['write'], approval: { approvers: { groups: ['system:serviceaccounts:dba'] } } },
      ],
    },
  });
  const tools: KubeTools[] = [];
  return {
    api,
    kube,
    dir,
    async kubectlAs(namespace, serviceAccount) {
      const token = await api.issueServiceAccountToken({ namespace, serviceAccount, audiences: [api.serviceAccountIssuer] });
      const made = await kubeTools(api, { token, namespace: NS });
      tools.push(made);
      return made;
    },
    async close() {
      await webhooks.close(100);
      await Promise.all(tools.map((made) => made.cleanup()));
      kube.close?.();
      await api.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
