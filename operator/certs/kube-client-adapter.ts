// WebhookTlsCluster over the operator's KubeClient: the Secret's base64 data decoded and encoded
// here, AlreadyExists/Conflict turned into the `conflict` outcome, webhook configurations patched
// with a JSON patch. Everything else a KubeClient can fail with passes through as its GatehouseError.
import { isConflict } from '../kube/kube-errors.js';
import { RESOURCE_TYPES, type KubeClient, type KubeObject } from '../kube/kube-client.js';
import type { JsonPatchOperation } from '../admission/json-patch.js';
import type { TlsSecret, WebhookConfigurationKind, WebhookConfigurationView, WebhookTlsCluster, WriteOutcome } from './webhook-tls-cluster.js';

interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

interface WebhookConfigurationObject extends KubeObject {
  webhooks?: { name: string; clientConfig?: { caBundle?: string } }[];
}

function configurationType(kind: WebhookConfigurationKind) {
  return kind === 'MutatingWebhookConfiguration' ? RESOURCE_TYPES.mutatingWebhookConfigurations : RESOURCE_TYPES.validatingWebhookConfigurations;
}

function encode(data: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value, 'utf8').toString('base64')]));
}

function decode(data: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(data ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64').toString('utf8')]));
}

/** A create that finds the object there (409 AlreadyExists) or a replace that lost the race (409 Conflict). */
async function orConflict(write: () => Promise<unknown>): Promise<WriteOutcome> {
  try {
    await write();
    return 'written';
  } catch (error) {
    if (isConflict(error)) return 'conflict';
    throw error;
  }
}

export function webhookTlsClusterFrom(client: KubeClient): WebhookTlsCluster {
  const secretObject = (namespace: string, name: string, data: Readonly<Record<string, string>>, resourceVersion?: string): SecretObject => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace, ...(resourceVersion ? { resourceVersion } : {}), labels: { 'app.kubernetes.io/managed-by': 'gatehouse' } },
    // kubernetes.io/tls requires tls.crt and tls.key; ca.crt and ca.key ride along.
    type: 'kubernetes.io/tls',
    data: encode(data),
  });
  return {
    async getSecret(namespace, name): Promise<TlsSecret | undefined> {
      const secret = await client.get<SecretObject>(RESOURCE_TYPES.secrets, namespace, name);
      if (!secret) return undefined;
      const resourceVersion = secret.metadata.resourceVersion;
      return { data: decode(secret.data), ...(resourceVersion ? { resourceVersion } : {}) };
    },
    createSecret: (namespace, name, data) => orConflict(() => client.create(RESOURCE_TYPES.secrets, secretObject(namespace, name, data))),
    replaceSecret: (namespace, name, data, resourceVersion) =>
      orConflict(() => client.replace(RESOURCE_TYPES.secrets, secretObject(namespace, name, data, resourceVersion))),
    async getWebhookConfiguration(kind, name): Promise<WebhookConfigurationView | undefined> {
      const configuration = await client.get<WebhookConfigurationObject>(configurationType(kind), undefined, name);
      if (!configuration) return undefined;
      return {
        webhooks: (configuration.webhooks ?? []).map((webhook) => ({
          name: webhook.name,
          ...(webhook.clientConfig?.caBundle ? { caBundle: webhook.clientConfig.caBundle } : {}),
        })),
      };
    },
    async patchWebhookConfiguration(kind, name, patch: readonly JsonPatchOperation[]): Promise<void> {
      await client.patch(configurationType(kind), undefined, name, patch, 'json');
    },
  };
}
