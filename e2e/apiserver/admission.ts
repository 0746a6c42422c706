// Admission webhooks as the real API server calls them: on create, update and delete of matching
// objects, every registered mutating webhook and then every validating webhook gets an AdmissionReview
// v1 over HTTPS (verified with its caBundle); mutations come back as base64 JSON patches, denials
// become the Status kubectl prints. Rules, namespaceSelector, objectSelector, failurePolicy and
// timeoutSeconds are honoured; reinvocationPolicy and matchConditions (CEL) are not.
import { randomUUID } from 'node:crypto';
import https from 'node:https';
import type { Logger } from 'pino';
import { ApiStatusError } from './api-status.js';
import { isJsonObject, type KubeObject } from './objects.js';
import { applyJsonPatch } from './patch.js';
import type { ResourceType } from './resource-types.js';
import { matchesLabelSelectorObject } from './selectors.js';

export type AdmissionOperation = 'CREATE' | 'UPDATE' | 'DELETE';

export interface AdmissionUser {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra?: Record<string, string[]>;
}

export interface AdmissionAttributes {
  readonly type: ResourceType;
  readonly version: string;
  readonly operation: AdmissionOperation;
  readonly subresource?: string;
  readonly namespace?: string;
  readonly name: string;
  readonly object?: KubeObject;
  readonly oldObject?: KubeObject;
  readonly dryRun: boolean;
  readonly userInfo: AdmissionUser;
}

/** Maps a webhook's clientConfig.service to a base URL (https://127.0.0.1:PORT); nothing resolves cluster DNS here. */
export type ServiceResolver = (namespace: string, name: string, port: number) => string;

interface WebhookRule {
  apiGroups?: string[];
  apiVersions?: string[];
  resources?: string[];
  operations?: string[];
  scope?: string;
}

interface Webhook {
  name: string;
  clientConfig?: { url?: string; caBundle?: string; service?: { namespace: string; name: string; path?: string; port?: number } };
  rules?: WebhookRule[];
  failurePolicy?: 'Fail' | 'Ignore';
  namespaceSelector?: unknown;
  objectSelector?: unknown;
  timeoutSeconds?: number;
}

export interface WebhookSource {
  /** Webhook configurations currently stored, of kind Mutating or Validating. */
  configurations(kind: 'mutating' | 'validating'): KubeObject[];
  namespaceLabels(namespace: string): Record<string, string> | undefined;
}

function listMatches(values: string[] | undefined, value: string): boolean {
  return (values ?? []).some((candidate) => candidate === '*' || candidate === value);
}

function resourceMatches(resources: string[] | undefined, plural: string, subresource: string | undefined): boolean {
  const wanted = subresource === undefined ? plural : `${plural}/${subresource}`;
  return (resources ?? []).some((pattern) => {
    if (pattern === '*/*' || pattern === wanted) return true;
    if (pattern === '*') return subresource === undefined;
    const [resource, sub] = pattern.split('/');
    return subresource !== undefined && sub === subresource && resource === '*';
  });
}

function ruleMatches(rule: WebhookRule, attributes: AdmissionAttributes): boolean {
  const scope = rule.scope ?? '*';
  if (scope === 'Cluster' && attributes.type.namespaced) return false;
  if (scope === 'Namespaced' && !attributes.type.namespaced) return false;
  return listMatches(rule.apiGroups, attributes.type.group)
    && listMatches(rule.apiVersions, attributes.version)
    && listMatches(rule.operations, attributes.operation)
    && resourceMatches(rule.resources, attributes.type.plural, attributes.subresource);
}

function labelsOf(object: KubeObject | undefined): Record<string, string> | undefined {
  return object?.metadata.labels ?? (object === undefined ? undefined : {});
}

export class AdmissionChain {
  constructor(
    private readonly source: WebhookSource,
    private readonly resolveService: ServiceResolver | undefined,
    private readonly logger: Logger,
  ) {}

  private webhooksFor(kind: 'mutating' | 'validating', attributes: AdmissionAttributes): Webhook[] {
    // The real server never sends webhook configurations to webhooks, so a broken webhook can be removed.
    if (attributes.type.group === 'admissionregistration.k8s.io') return [];
    const configurations = this.source.configurations(kind).sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1));
    const webhooks = configurations.flatMap((configuration) => (Array.isArray(configuration.webhooks) ? (configuration.webhooks as Webhook[]) : []));
    return webhooks.filter((webhook) => this.webhookMatches(webhook, attributes));
  }

  private webhookMatches(webhook: Webhook, attributes: AdmissionAttributes): boolean {
    if (!(webhook.rules ?? []).some((rule) => ruleMatches(rule, attributes))) return false;
    const objectLabels = [labelsOf(attributes.object), labelsOf(attributes.oldObject)].filter((labels) => labels !== undefined);
    if (!objectLabels.some((labels) => matchesLabelSelectorObject(webhook.objectSelector, labels))) return false;
    const isNamespace = attributes.type.group === '' && attributes.type.plural === 'namespaces';
    if (isNamespace) return objectLabels.some((labels) => matchesLabelSelectorObject(webhook.namespaceSelector, labels));
    if (!attributes.type.namespaced || attributes.namespace === undefined) return true;
    return matchesLabelSelectorObject(webhook.namespaceSelector, this.source.namespaceLabels(attributes.namespace) ?? {});
  }

  /** Runs mutating webhooks in order; returns the object as they left it. */
  async mutate(attributes: AdmissionAttributes): Promise<KubeObject | undefined> {
    let object = attributes.object;
    for (const webhook of this.webhooksFor('mutating', attributes)) {
      const response = await this.call(webhook, { ...attributes, object });
      if (response === undefined) continue;
      if (typeof response.patch === 'string' && object !== undefined) {
        if (response.patchType !== undefined && response.patchType !== 'JSONPatch') {
          throw new ApiStatusError(500, 'InternalError', `Internal error occurred: webhook "${webhook.name}" returned patchType ${String(response.patchType)}; only JSONPatch is supported`);
        }
        object = applyJsonPatch(object, JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8'))) as KubeObject;
      }
    }
    return object;
  }

  /** Runs validating webhooks (the real server runs them in parallel; order does not matter). */
  async validate(attributes: AdmissionAttributes): Promise<void> {
    await Promise.all(this.webhooksFor('validating', attributes).map((webhook) => this.call(webhook, attributes)));
  }

  /** Calls one webhook; throws its denial; undefined when it failed and failurePolicy is Ignore. */
  private async call(webhook: Webhook, attributes: AdmissionAttributes): Promise<Record<string, unknown> | undefined> {
    const uid = randomUUID();
    let response: Record<string, unknown>;
    try {
      response = await this.post(webhook, review(uid, attributes));
      if (response.uid !== uid) throw new Error(`expected response.uid="${uid}", got "${String(response.uid)}"`);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      this.logger.warn({ webhook: webhook.name, err: detail }, 'admission webhook call failed');
      if (webhook.failurePolicy === 'Ignore') return undefined;
      throw new ApiStatusError(500, 'InternalError', `Internal error occurred: failed calling webhook "${webhook.name}": ${detail}`);
    }
    if (response.allowed !== true) throw denial(webhook.name, response.status);
    return response;
  }

  private target(webhook: Webhook): { url: URL; servername?: string } {
    const config = webhook.clientConfig ?? {};
    if (config.url !== undefined) return { url: new URL(config.url) };
    const service = config.service;
    if (service === undefined) throw new Error('clientConfig has neither url nor service');
    if (this.resolveService === undefined) throw new Error(`cannot resolve service ${service.name}.${service.namespace}: the loopback API server was started without resolveService`);
    const base = this.resolveService(service.namespace, service.name, service.port ?? 443);
    // Certificates are checked against the service DNS name, as the real API server does.
    return { url: new URL(service.path ?? '/', base), servername: `${service.name}.${service.namespace}.svc` };
  }

  private post(webhook: Webhook, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const { url, servername } = this.target(webhook);
    const ca = webhook.clientConfig?.caBundle === undefined ? undefined : Buffer.from(webhook.clientConfig.caBundle, 'base64');
    const timeoutMs = (webhook.timeoutSeconds ?? 10) * 1000;
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const request = https.request(url, {
        method: 'POST', ca, timeout: timeoutMs, ...(servername === undefined ? {} : { servername }),
        headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(payload) },
      }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          try {
            if ((response.statusCode ?? 0) >= 300) throw new Error(`webhook answered HTTP ${response.statusCode}`);
            const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { response?: unknown };
            if (!isJsonObject(parsed.response)) throw new Error('the webhook answered no AdmissionReview response');
            resolve(parsed.response);
          } catch (error) {
            reject(error);
          }
        });
        response.on('error', reject);
      });
      request.on('timeout', () => request.destroy(new Error(`Post "${url.href}": context deadline exceeded`)));
      request.on('error', (error) => reject(new Error(`failed to call webhook: Post "${url.href}": ${error.message}`)));
      request.end(payload);
    });
  }
}

function review(uid: string, attributes: AdmissionAttributes): Record<string, unknown> {
  const { type, version } = attributes;
  const kind = { group: type.group, version, kind: type.kind };
  const resource = { group: type.group, version, resource: type.plural };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid, kind, resource, requestKind: kind, requestResource: resource,
      ...(attributes.subresource === undefined ? {} : { subResource: attributes.subresource, requestSubResource: attributes.subresource }),
      name: attributes.name,
      ...(attributes.namespace === undefined ? {} : { namespace: attributes.namespace }),
      operation: attributes.operation,
      userInfo: attributes.userInfo,
      object: attributes.operation === 'DELETE' ? null : attributes.object ?? null,
      oldObject: attributes.oldObject ?? null,
      dryRun: attributes.dryRun,
      options: { apiVersion: 'meta.k8s.io/v1', kind: `${attributes.operation[0]}${attributes.operation.slice(1).toLowerCase()}Options` },
    },
  };
}

/** The real server's ToStatusErr: the webhook's code (at least 400) and its message, prefixed. */
function denial(webhookName: string, status: unknown): ApiStatusError {
  const result = isJsonObject(status) ? status : {};
  const code = typeof result.code === 'number' && result.code >= 400 ? result.code : 400;
  const deniedBy = `admission webhook "${webhookName}" denied the request`;
  const message = typeof result.message === 'string' && result.message !== '' ? `${deniedBy}: ${result.message}`
    : typeof result.reason === 'string' && result.reason !== '' ? `${deniedBy}: ${result.reason}` : `${deniedBy} without explanation`;
  return new ApiStatusError(code, typeof result.reason === 'string' ? result.reason : '', message);
}
