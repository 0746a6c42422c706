// Keeps the admission webhooks' TLS in order without outside help: a long-lived self-signed CA and a
// short-lived serving certificate in one Secret (created when absent, reused while valid, re-issued
// before expiry or when tampered with), the CA bundle patched into every webhook of the named
// Mutating/ValidatingWebhookConfigurations, and a change signal the HTTPS server reloads on.
// Every replica runs it: writes are optimistic (resourceVersion), and a replica that loses a race
// reads and serves what the winner wrote.
import { EventEmitter } from 'node:events';
import { GatehouseError, isGatehouseError } from '../../api/errors.js';
import type { Logger } from '../../api/logging/logger.js';
import { pointerSegment, type JsonPatchOperation } from '../admission/json-patch.js';
import {
  caProblem,
  fingerprintOf,
  issueCa,
  issueServingCertificate,
  notAfterOf,
  servingProblem,
  splitPemBundle,
  type KeyedCertificate,
} from './certificate-authority.js';
import type { CertificateSource, ServingCertificate } from './certificate-source.js';
import type { TlsSecret, WebhookConfigurationKind, WebhookTlsCluster } from './webhook-tls-cluster.js';

export const DEFAULT_TLS_SECRET = 'gatehouse-webhook-tls';
/** Secret keys: tls.crt/tls.key as kubernetes.io/tls has them, ca.crt the trust bundle, ca.key the CA's key. */
export const TLS_CERT_KEY = 'tls.crt';
export const TLS_KEY_KEY = 'tls.key';
export const CA_BUNDLE_KEY = 'ca.crt';
export const CA_KEY_KEY = 'ca.key';

const DAY = 86_400_000;

export interface CertificateLifetimes {
  readonly caValidityMs: number;
  /** A CA with less than this left is replaced; the old one stays in the bundle until it expires. */
  readonly caRotateBeforeMs: number;
  readonly servingValidityMs: number;
  readonly servingRotateBeforeMs: number;
}

export const DEFAULT_LIFETIMES: CertificateLifetimes = {
  caValidityMs: 10 * 365 * DAY,
  caRotateBeforeMs: 365 * DAY,
  servingValidityMs: 30 * DAY,
  servingRotateBeforeMs: 10 * DAY,
};

export interface WebhookCertManagerOptions {
  readonly cluster: WebhookTlsCluster;
  /** The operator's namespace: where the Secret and the webhook Service live. */
  readonly namespace: string;
  /** The Service the API server calls the webhooks through. */
  readonly serviceName: string;
  readonly secretName?: string;
  readonly mutatingWebhookConfigurations?: readonly string[];
  readonly validatingWebhookConfigurations?: readonly string[];
  readonly lifetimes?: Partial<CertificateLifetimes>;
  readonly now?: () => Date;
  readonly logger: Logger;
}

export type SecretAction = 'created' | 'reused' | 'serving-rotated' | 'ca-rotated' | 'reissued' | 'bundle-pruned';

export interface CertReconcileResult {
  readonly action: SecretAction;
  /** Why the material was replaced (absent when reused). */
  readonly reason?: string;
  /** `Kind/name` of every webhook configuration whose caBundle was patched. */
  readonly patched: readonly string[];
  /** `Kind/name` of configured webhook configurations that do not exist (yet). */
  readonly missing: readonly string[];
}

interface Material {
  readonly ca: KeyedCertificate;
  /** The trust bundle: the current CA first, then older CAs that have not expired. */
  readonly bundle: string;
  readonly serving: KeyedCertificate;
}

interface Decision {
  readonly action: SecretAction;
  readonly reason?: string;
  readonly material: Material;
}

const MAX_WRITE_ATTEMPTS = 3;

export class WebhookCertManager implements CertificateSource {
  private readonly options: WebhookCertManagerOptions;
  private readonly lifetimes: CertificateLifetimes;
  private readonly secretName: string;
  private readonly events = new EventEmitter();
  private material: Material | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<CertReconcileResult> | undefined;

  constructor(options: WebhookCertManagerOptions) {
    this.options = options;
    this.lifetimes = { ...DEFAULT_LIFETIMES, ...options.lifetimes };
    this.secretName = options.secretName ?? DEFAULT_TLS_SECRET;
  }

  /** The names the serving certificate covers: the Service's DNS names and loopback. */
  get dnsNames(): string[] {
    const { serviceName, namespace } = this.options;
    return [`${serviceName}.${namespace}.svc`, `${serviceName}.${namespace}.svc.cluster.local`, 'localhost'];
  }

  get ipAddresses(): string[] {
    return ['127.0.0.1'];
  }

  current(): ServingCertificate {
    if (!this.material) throw new Error('the webhook certificate manager has not reconciled yet; await reconcile() first');
    return { cert: this.material.serving.certPem, key: this.material.serving.keyPem };
  }

  /** The PEM bundle the API server must trust (what goes into caBundle). */
  caBundle(): string {
    if (!this.material) throw new Error('the webhook certificate manager has not reconciled yet');
    return this.material.bundle;
  }

  onChange(listener: (certificate: ServingCertificate) => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }

  /** Reconciles every `intervalMs` (and now); errors are logged and retried at the next tick. */
  start(intervalMs = 60_000): void {
    if (this.timer) return;
    const tick = () => {
      this.reconcile().catch((error: unknown) => this.options.logger.error({ err: error }, 'webhook certificate reconcile failed'));
    };
    this.timer = setInterval(tick, intervalMs);
    this.timer.unref();
    tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One pass: make the Secret right, make every caBundle right, signal a new serving pair. Serialised. */
  reconcile(): Promise<CertReconcileResult> {
    this.running ??= this.reconcileOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async reconcileOnce(): Promise<CertReconcileResult> {
    for (let attempt = 1; ; attempt++) {
      const secret = await this.readSecret();
      const decision = await this.decide(secret);
      if (decision.action === 'reused') {
        // Served even if the caBundle patch below fails: the Secret is good, only trust may lag.
        this.adopt(decision.material);
        return { action: 'reused', ...(await this.patchCaBundles(decision.material.bundle)) };
      }
      // The API server must trust a new CA before any replica serves a certificate it signed.
      const result = await this.patchCaBundles(decision.material.bundle);
      const outcome = await this.writeSecret(secret, decision.material);
      if (outcome === 'written') {
        this.options.logger.info({ action: decision.action, reason: decision.reason, secret: this.secretName }, 'webhook TLS material written');
        this.adopt(decision.material);
        return { action: decision.action, ...(decision.reason ? { reason: decision.reason } : {}), ...result };
      }
      // Another replica wrote first: read again and use theirs, if it is good.
      if (attempt >= MAX_WRITE_ATTEMPTS) throw this.storeError('update', 'it kept changing under concurrent writers');
    }
  }

  private async readSecret(): Promise<TlsSecret | undefined> {
    try {
      return await this.options.cluster.getSecret(this.options.namespace, this.secretName);
    } catch (error) {
      throw this.storeError('read', detailOf(error), error);
    }
  }

  private async writeSecret(existing: TlsSecret | undefined, material: Material): Promise<'written' | 'conflict'> {
    const data = {
      [TLS_CERT_KEY]: material.serving.certPem,
      [TLS_KEY_KEY]: material.serving.keyPem,
      [CA_BUNDLE_KEY]: material.bundle,
      [CA_KEY_KEY]: material.ca.keyPem,
    };
    const { cluster, namespace } = this.options;
    try {
      return existing
        ? await cluster.replaceSecret(namespace, this.secretName, data, existing.resourceVersion)
        : await cluster.createSecret(namespace, this.secretName, data);
    } catch (error) {
      throw this.storeError(existing ? 'update' : 'create', detailOf(error), error);
    }
  }

  private storeError(action: string, detail: string, cause?: unknown): GatehouseError {
    const details = { action, namespace: this.options.namespace, name: this.secretName, detail };
    return new GatehouseError('GH_ERR_WEBHOOK_TLS_STORE', details, cause === undefined ? undefined : { cause });
  }

  /** What to do with what the Secret holds: reuse it, rotate part of it, or start over. */
  private async decide(secret: TlsSecret | undefined): Promise<Decision> {
    const now = this.now();
    if (!secret) return { action: 'created', material: await this.freshMaterial(now, []) };
    const data = secret.data;
    const bundle = splitPemBundle(data[CA_BUNDLE_KEY] ?? '');
    const ca = { certPem: bundle[0], keyPem: data[CA_KEY_KEY] };
    const caState = caProblem(ca, now, this.lifetimes.caRotateBeforeMs);
    // A CA that fails its checks (tampered, or a key that does not match) is not trusted any longer.
    if (caState && !caState.expiring) return { action: 'reissued', reason: caState.reason, material: await this.freshMaterial(now, []) };
    const current = ca as KeyedCertificate;
    if (caState) {
      const kept = [current.certPem, ...bundle.slice(1)];
      return { action: 'ca-rotated', reason: caState.reason, material: await this.freshMaterial(now, kept) };
    }
    const serving = { certPem: data[TLS_CERT_KEY], keyPem: data[TLS_KEY_KEY] };
    const requirements = { dnsNames: this.dnsNames, ipAddresses: this.ipAddresses };
    const servingState = servingProblem(serving, current.certPem, requirements, now, this.lifetimes.servingRotateBeforeMs);
    const liveBundle = joinBundle([current.certPem, ...unexpired(bundle.slice(1), now)]);
    if (servingState) {
      const material = { ca: current, bundle: liveBundle, serving: await this.issueServing(current, now) };
      return { action: servingState.expiring ? 'serving-rotated' : 'reissued', reason: servingState.reason, material };
    }
    const material = { ca: current, bundle: liveBundle, serving: serving as KeyedCertificate };
    // An expired old CA dropped from the bundle is a change worth writing back.
    if (liveBundle !== data[CA_BUNDLE_KEY]) return { action: 'bundle-pruned', reason: 'expired CAs removed from the bundle', material };
    return { action: 'reused', material };
  }

  private async freshMaterial(now: Date, previousCas: readonly string[]): Promise<Material> {
    const ca = await issueCa({ commonName: `gatehouse-webhook-ca@${Math.floor(now.getTime() / 1000)}`, now, validityMs: this.lifetimes.caValidityMs });
    return { ca, bundle: joinBundle([ca.certPem, ...unexpired(previousCas, now)]), serving: await this.issueServing(ca, now) };
  }

  private issueServing(ca: KeyedCertificate, now: Date): Promise<KeyedCertificate> {
    return issueServingCertificate({ ca, dnsNames: this.dnsNames, ipAddresses: this.ipAddresses, now, validityMs: this.lifetimes.servingValidityMs });
  }

  /** Sets caBundle on every webhook entry of every configured configuration where it differs. */
  private async patchCaBundles(bundle: string): Promise<{ patched: string[]; missing: string[] }> {
    const encoded = Buffer.from(bundle).toString('base64');
    const patched: string[] = [];
    const missing: string[] = [];
    const targets: [WebhookConfigurationKind, readonly string[]][] = [
      ['MutatingWebhookConfiguration', this.options.mutatingWebhookConfigurations ?? []],
      ['ValidatingWebhookConfiguration', this.options.validatingWebhookConfigurations ?? []],
    ];
    for (const [kind, names] of targets) {
      for (const name of names) {
        const configuration = await this.options.cluster.getWebhookConfiguration(kind, name);
        if (!configuration) {
          missing.push(`${kind}/${name}`);
          this.options.logger.warn({ err: new GatehouseError('GH_ERR_WEBHOOK_CONFIGURATION_MISSING', { kind, name }) }, 'webhook configuration missing');
          continue;
        }
        const patch = caBundlePatch(configuration.webhooks, encoded);
        if (patch.length === 0) continue;
        await this.options.cluster.patchWebhookConfiguration(kind, name, patch);
        patched.push(`${kind}/${name}`);
      }
    }
    return { patched, missing };
  }

  private adopt(material: Material): void {
    const before = this.material;
    this.material = material;
    if (before && fingerprintOf(before.serving.certPem) === fingerprintOf(material.serving.certPem) && before.serving.keyPem === material.serving.keyPem) return;
    this.events.emit('change', this.current());
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }
}

/**
 * For each webhook entry whose caBundle differs: a `test` of its name (so a concurrent reorder of
 * the list makes the patch fail instead of landing on the wrong webhook) and an `add` of caBundle.
 */
export function caBundlePatch(webhooks: readonly { name: string; caBundle?: string }[], encodedBundle: string): JsonPatchOperation[] {
  const patch: JsonPatchOperation[] = [];
  webhooks.forEach((webhook, index) => {
    if (webhook.caBundle === encodedBundle) return;
    patch.push({ op: 'test', path: `/webhooks/${index}/name`, value: webhook.name });
    patch.push({ op: 'add', path: `/webhooks/${index}/clientConfig/${pointerSegment('caBundle')}`, value: encodedBundle });
  });
  return patch;
}

function joinBundle(pems: readonly string[]): string {
  return pems.map((pem) => pem.trim()).join('\n') + '\n';
}

function unexpired(pems: readonly string[], now: Date): string[] {
  return pems.filter((pem) => (notAfterOf(pem)?.getTime() ?? 0) > now.getTime());
}

function detailOf(error: unknown): string {
  if (isGatehouseError(error)) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
