// What a verified token proves about its bearer: a ServiceAccount (optionally a pod) in this
// cluster, or an external OIDC subject. Every verifier returns one of these; nothing in it comes
// from anything but verified claims or the API server's own answer.

/** The audience a Gatehouse sidecar's projected ServiceAccount token is requested for. */
export const GATEHOUSE_AUDIENCE = 'gatehouse';

export interface PodReference {
  readonly name: string;
  readonly uid: string;
}

export interface ServiceAccountWorkload {
  readonly kind: 'serviceaccount';
  readonly namespace: string;
  readonly serviceAccount: string;
  /** Tells a re-created ServiceAccount of the same name from the old one. */
  readonly serviceAccountUid: string;
  /** Absent only when the token is not bound to a pod and the verifier allows that. */
  readonly pod?: PodReference;
  /** When the proof runs out: the token's exp. */
  readonly expiresAt: Date;
}

export interface OidcWorkload {
  readonly kind: 'oidc';
  readonly issuer: string;
  readonly subject: string;
  /** The token's aud claim, always as a list. */
  readonly audiences: readonly string[];
  readonly expiresAt: Date;
}

export type WorkloadIdentity = ServiceAccountWorkload | OidcWorkload;

/** Verifies a ServiceAccount token; offline against the JWKS, or by asking the API server. */
export interface ServiceAccountVerifier {
  verify(token: string): Promise<ServiceAccountWorkload>;
}

const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';
// DNS-1123 subdomain (ServiceAccount names) also covers labels (namespaces); anything else in a
// claim means the token was not minted by a Kubernetes issuer, so it is refused rather than used
// as a lookup key.
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function isObjectName(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 253 && OBJECT_NAME.test(value);
}

/** The username (and JWT sub) Kubernetes gives a ServiceAccount. */
export function serviceAccountUsername(namespace: string, serviceAccount: string): string {
  return `${SERVICE_ACCOUNT_PREFIX}${namespace}:${serviceAccount}`;
}

/** Splits `system:serviceaccount:NS:NAME`; undefined for any other username. */
export function parseServiceAccountUsername(username: string): { namespace: string; serviceAccount: string } | undefined {
  if (!username.startsWith(SERVICE_ACCOUNT_PREFIX)) return undefined;
  const parts = username.slice(SERVICE_ACCOUNT_PREFIX.length).split(':');
  if (parts.length !== 2) return undefined;
  const [namespace, serviceAccount] = parts;
  if (!isObjectName(namespace) || !isObjectName(serviceAccount)) return undefined;
  return { namespace, serviceAccount };
}

/** A short, human name for logs and error messages. */
export function describeWorkload(workload: WorkloadIdentity): string {
  if (workload.kind === 'serviceaccount') {
    return `ServiceAccount ${workload.namespace}/${workload.serviceAccount}`;
  }
  return `OIDC subject ${workload.subject} from ${workload.issuer}`;
}
