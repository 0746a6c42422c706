// The authentication endpoints: TokenRequest (POST serviceaccounts/{name}/token) and TokenReview
// (POST tokenreviews), answering in the real shapes; plus bearer-token authentication of API requests.
import { randomUUID } from 'node:crypto';
import type { AdmissionUser } from './admission.js';
import { ApiStatusError, badRequest, notFound } from './api-status.js';
import { isJsonObject, type KubeObject } from './objects.js';
import type { ObjectStore } from './object-store.js';
import type { ResourceType, ResourceTypeRegistry } from './resource-types.js';
import type { ServiceAccountTokenIssuer } from './service-account-tokens.js';

export const ADMIN_USER: AdmissionUser = { username: 'gatehouse-loopback-admin', groups: ['system:masters', 'system:authenticated'] };

export class IdentityApi {
  /** uids for ServiceAccounts that tokens were issued for without the object existing. */
  private readonly detachedUids = new Map<string, string>();

  constructor(
    private readonly store: ObjectStore,
    private readonly registry: ResourceTypeRegistry,
    private readonly issuer: ServiceAccountTokenIssuer,
    private readonly adminToken: string,
  ) {}

  private type(group: string, plural: string): ResourceType {
    return this.registry.find(group, 'v1', plural)!;
  }

  /** The uid of the ServiceAccount if it exists, else a stable made-up one (programmatic issuing). */
  serviceAccountUid(namespace: string, name: string): string {
    const account = this.store.get(this.type('', 'serviceaccounts'), namespace, name);
    if (account?.metadata.uid !== undefined) return account.metadata.uid;
    const key = `${namespace}/${name}`;
    if (!this.detachedUids.has(key)) this.detachedUids.set(key, randomUUID());
    return this.detachedUids.get(key)!;
  }

  async tokenRequest(namespace: string, name: string, body: unknown): Promise<Record<string, unknown>> {
    const account = this.store.get(this.type('', 'serviceaccounts'), namespace, name);
    if (account === undefined) throw notFound({ group: '', plural: 'serviceaccounts', kind: 'ServiceAccount' }, name);
    const spec = isJsonObject(body) && isJsonObject(body.spec) ? body.spec : {};
    const audiences = Array.isArray(spec.audiences) && spec.audiences.length > 0 ? spec.audiences.map(String) : [this.issuer.issuer];
    const expirationSeconds = typeof spec.expirationSeconds === 'number' ? spec.expirationSeconds : undefined;
    const pod = this.boundPod(namespace, spec.boundObjectRef);
    const { token, expiresAt } = await this.issuer.issue({ namespace, serviceAccount: name, serviceAccountUid: account.metadata.uid!, audiences, expirationSeconds, pod });
    return {
      kind: 'TokenRequest', apiVersion: 'authentication.k8s.io/v1',
      metadata: { name, namespace, creationTimestamp: null },
      spec: { ...spec, audiences, expirationSeconds: Math.round((expiresAt.getTime() - Date.now()) / 1000) },
      status: { token, expirationTimestamp: expiresAt.toISOString().replace(/\.\d+Z$/, 'Z') },
    };
  }

  private boundPod(namespace: string, reference: unknown): { name: string; uid: string } | undefined {
    if (!isJsonObject(reference)) return undefined;
    if (reference.kind !== 'Pod') throw badRequest(`cannot bind token to object of kind ${String(reference.kind)}; only Pod is supported here`);
    const pod: KubeObject | undefined = this.store.get(this.type('', 'pods'), namespace, String(reference.name));
    if (pod === undefined) throw notFound({ group: '', plural: 'pods', kind: 'Pod' }, String(reference.name));
    if (reference.uid !== undefined && reference.uid !== pod.metadata.uid) {
      throw new ApiStatusError(409, 'Conflict', `the UID in the bound object reference (${String(reference.uid)}) does not match the UID in record. The object might have been deleted and then recreated`);
    }
    return { name: pod.metadata.name!, uid: pod.metadata.uid! };
  }

  async tokenReview(body: unknown): Promise<Record<string, unknown>> {
    const spec = isJsonObject(body) && isJsonObject(body.spec) ? body.spec : {};
    if (typeof spec.token !== 'string' || spec.token === '') throw new ApiStatusError(422, 'Invalid', 'TokenReview.authentication.k8s.io "" is invalid: spec.token: Required value');
    const audiences = Array.isArray(spec.audiences) && spec.audiences.length > 0 ? spec.audiences.map(String) : [this.issuer.issuer];
    const review = { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null }, spec };
    if (spec.token === this.adminToken) {
      return { ...review, status: { authenticated: true, user: { username: ADMIN_USER.username, groups: ADMIN_USER.groups }, audiences } };
    }
    const result = await this.issuer.review(spec.token, audiences);
    if (result.user === undefined) return { ...review, status: { authenticated: false, user: {}, error: result.error } };
    const { username, uid, groups, extra } = result.user;
    return { ...review, status: { authenticated: true, user: { username, uid, groups, extra }, audiences: result.audiences } };
  }

  /** Who a bearer token is, for API requests: the admin token or a token this server issued for its own audience. */
  async authenticate(authorization: string | undefined): Promise<AdmissionUser | undefined> {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (match === null) return undefined;
    if (match[1] === this.adminToken) return ADMIN_USER;
    const result = await this.issuer.review(match[1], [this.issuer.issuer]);
    return result.user === undefined ? undefined : { username: result.user.username, uid: result.user.uid, groups: result.user.groups, extra: result.user.extra };
  }
}
