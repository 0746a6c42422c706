// The little of Kubernetes the webhook certificate manager needs, as one narrow interface: read and
// write one Secret, read and patch the webhook configurations. The operator adapts its KubeClient to
// it (kube-client-adapter.ts); tests use an in-memory implementation.
import type { JsonPatchOperation } from '../admission/json-patch.js';

export interface TlsSecret {
  /** Decoded values (the adapter does the base64 of Secret.data). */
  readonly data: Readonly<Record<string, string>>;
  readonly resourceVersion?: string;
}

export type WebhookConfigurationKind = 'MutatingWebhookConfiguration' | 'ValidatingWebhookConfiguration';

export interface WebhookEntry {
  readonly name: string;
  /** clientConfig.caBundle as the API holds it: base64 of the PEM bundle. */
  readonly caBundle?: string;
}

export interface WebhookConfigurationView {
  readonly webhooks: readonly WebhookEntry[];
}

/** A write that lost a race (AlreadyExists on create, Conflict on replace) reports `conflict`, not an error. */
export type WriteOutcome = 'written' | 'conflict';

export interface WebhookTlsCluster {
  getSecret(namespace: string, name: string): Promise<TlsSecret | undefined>;
  createSecret(namespace: string, name: string, data: Readonly<Record<string, string>>): Promise<WriteOutcome>;
  /** Replaces the Secret's data if it is still at `resourceVersion`. */
  replaceSecret(namespace: string, name: string, data: Readonly<Record<string, string>>, resourceVersion: string | undefined): Promise<WriteOutcome>;
  getWebhookConfiguration(kind: WebhookConfigurationKind, name: string): Promise<WebhookConfigurationView | undefined>;
  /** Applies an RFC 6902 patch to the named configuration (cluster-scoped). */
  patchWebhookConfiguration(kind: WebhookConfigurationKind, name: string, patch: readonly JsonPatchOperation[]): Promise<void>;
}
