// An in-memory WebhookTlsCluster for the certificate manager's tests: Secrets with resourceVersions
// and optimistic writes, webhook configurations patched with the RFC 6902 applier the admission
// tests use, and a log of every write so a test can tell "reused" from "rewrote the same thing".
import { applyJsonPatch } from '../../admission/testing/apply-json-patch.js';
import type { JsonPatchOperation, JsonValue } from '../../admission/json-patch.js';
import type { TlsSecret, WebhookConfigurationKind, WebhookConfigurationView, WebhookTlsCluster, WriteOutcome } from '../webhook-tls-cluster.js';

interface StoredConfiguration {
  webhooks: { name: string; clientConfig: { caBundle?: string; service?: unknown } }[];
}

export class InMemoryTlsCluster implements WebhookTlsCluster {
  readonly secrets = new Map<string, { data: Record<string, string>; resourceVersion: string }>();
  readonly configurations = new Map<string, StoredConfiguration>();
  readonly writes: string[] = [];
  private version = 1;

  addWebhookConfiguration(kind: WebhookConfigurationKind, name: string, webhookNames: string[]): void {
    this.configurations.set(`${kind}/${name}`, { webhooks: webhookNames.map((webhook) => ({ name: webhook, clientConfig: { service: { name: 'gatehouse-webhook' } } })) });
  }

  caBundles(kind: WebhookConfigurationKind, name: string): (string | undefined)[] {
    return this.configurations.get(`${kind}/${name}`)!.webhooks.map((webhook) => webhook.clientConfig.caBundle);
  }

  async getSecret(namespace: string, name: string): Promise<TlsSecret | undefined> {
    const stored = this.secrets.get(`${namespace}/${name}`);
    return stored ? { data: { ...stored.data }, resourceVersion: stored.resourceVersion } : undefined;
  }

  async createSecret(namespace: string, name: string, data: Readonly<Record<string, string>>): Promise<WriteOutcome> {
    const key = `${namespace}/${name}`;
    if (this.secrets.has(key)) return 'conflict';
    this.secrets.set(key, { data: { ...data }, resourceVersion: String(this.version++) });
    this.writes.push(`create ${key}`);
    return 'written';
  }

  async replaceSecret(namespace: string, name: string, data: Readonly<Record<string, string>>, resourceVersion: string | undefined): Promise<WriteOutcome> {
    const key = `${namespace}/${name}`;
    const stored = this.secrets.get(key);
    if (!stored || stored.resourceVersion !== resourceVersion) return 'conflict';
    this.secrets.set(key, { data: { ...data }, resourceVersion: String(this.version++) });
    this.writes.push(`replace ${key}`);
    return 'written';
  }

  /** Changes a Secret behind the manager's back, as a person or another controller might. */
  tamper(namespace: string, name: string, change: (data: Record<string, string>) => void): void {
    const stored = this.secrets.get(`${namespace}/${name}`)!;
    change(stored.data);
    stored.resourceVersion = String(this.version++);
  }

  async getWebhookConfiguration(kind: WebhookConfigurationKind, name: string): Promise<WebhookConfigurationView | undefined> {
    const stored = this.configurations.get(`${kind}/${name}`);
    return stored ? { webhooks: stored.webhooks.map((webhook) => ({ name: webhook.name, caBundle: webhook.clientConfig.caBundle })) } : undefined;
  }

  async patchWebhookConfiguration(kind: WebhookConfigurationKind, name: string, patch: readonly JsonPatchOperation[]): Promise<void> {
    const key = `${kind}/${name}`;
    const stored = this.configurations.get(key);
    if (!stored) throw new Error(`${key} not found`);
    this.configurations.set(key, applyJsonPatch(stored as unknown as JsonValue, patch) as unknown as StoredConfiguration);
    this.writes.push(`patch ${key}`);
  }
}
