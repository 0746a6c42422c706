// The three typed resource sets a SidecarSnapshot travels as on the discovery stream (identity and
// policies, protected resources, credentials), and the way back. Shared by the operator, which
// splits a snapshot, and the sidecar, which reassembles and checks it; the payloads are JSON.
import { GatehouseError } from '../errors.js';
import type { AccessPolicy, NonHumanIdentity, ProtectedResource } from '../kinds/kinds.js';
import { snapshotVersion, type SidecarSnapshot, type SnapshotResource, type UpstreamCredential } from '../snapshot/sidecar-snapshot.js';

const TYPE_PREFIX = 'type.gatehouse.dev/gatehouse.v1.';

export const TYPE_URLS = {
  identityPolicy: `${TYPE_PREFIX}IdentityPolicy`,
  protectedResource: `${TYPE_PREFIX}ProtectedResource`,
  credential: `${TYPE_PREFIX}Credential`,
} as const;

export type TypeUrl = (typeof TYPE_URLS)[keyof typeof TYPE_URLS];

/** Every type a sidecar subscribes to, in the order the operator sends them on a change. */
export const ALL_TYPE_URLS: readonly TypeUrl[] = [TYPE_URLS.identityPolicy, TYPE_URLS.protectedResource, TYPE_URLS.credential];

export function isTypeUrl(value: string): value is TypeUrl {
  return (ALL_TYPE_URLS as readonly string[]).includes(value);
}

/** The short name used in logs and metric labels: `IdentityPolicy` for its type URL. */
export function typeName(typeUrl: string): string {
  return typeUrl.startsWith(TYPE_PREFIX) ? typeUrl.slice(TYPE_PREFIX.length) : typeUrl;
}

/** The compiled-policy inputs: who the sidecar is and, per resource, the policies that apply. */
export interface IdentityPolicyPayload {
  readonly identity: NonHumanIdentity;
  readonly bindings: readonly { readonly resource: string; readonly policies: readonly AccessPolicy[] }[];
}

export interface ProtectedResourcePayload {
  readonly resource: ProtectedResource;
  readonly caPem?: string;
}

export interface CredentialPayload {
  readonly resource: string;
  readonly credential: UpstreamCredential;
}

/** One resource as the cache and the wire see it: a name and an opaque JSON payload. */
export interface TypedResource {
  readonly name: string;
  readonly payload: Uint8Array;
  /** Epoch ms after which it must not be used (credentials); absent for never. */
  readonly expiresAtMs?: number;
}

export type ResourceSets = Readonly<Record<TypeUrl, readonly TypedResource[]>>;

function encode(payload: IdentityPolicyPayload | ProtectedResourcePayload | CredentialPayload): Uint8Array {
  return Buffer.from(JSON.stringify(payload));
}

/** Splits a snapshot into the three typed sets. Resource order is kept: it is part of the content hash. */
export function toResourceSets(snapshot: SidecarSnapshot): ResourceSets {
  const identityPolicy: IdentityPolicyPayload = {
    identity: snapshot.identity,
    bindings: snapshot.resources.map((entry) => ({ resource: entry.resource.metadata.name, policies: entry.policies })),
  };
  return {
    [TYPE_URLS.identityPolicy]: [{ name: snapshot.identity.metadata.name, payload: encode(identityPolicy) }],
    [TYPE_URLS.protectedResource]: snapshot.resources.map((entry) => ({
      name: entry.resource.metadata.name,
      payload: encode({ resource: entry.resource, ...(entry.caPem !== undefined ? { caPem: entry.caPem } : {}) }),
    })),
    [TYPE_URLS.credential]: snapshot.resources.flatMap((entry) => (entry.credential ? [credentialResource(entry.resource.metadata.name, entry.credential)] : [])),
  };
}

/** One credential as a typed resource: a rotation replaces just this in the node's Credential set. */
export function credentialResource(resource: string, credential: UpstreamCredential): TypedResource {
  return {
    name: resource,
    payload: encode({ resource, credential }),
    ...(credential.expiresAt !== undefined ? { expiresAtMs: credential.expiresAt } : {}),
  };
}

// ── the sidecar side: parse, check, reassemble ──────────────────────────────────────────────────

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function payloadError(typeUrl: TypeUrl, name: string, detail: string): GatehouseError {
  return new GatehouseError('GH_ERR_CP_PAYLOAD', { typeUrl, name, detail });
}

function parseJson(typeUrl: TypeUrl, resource: TypedResource): JsonObject {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(resource.payload).toString('utf8'));
  } catch (error) {
    throw payloadError(typeUrl, resource.name, `not JSON: ${(error as Error).message}`);
  }
  if (!isObject(value)) throw payloadError(typeUrl, resource.name, 'not a JSON object');
  return value;
}

/** Checks the envelope the reassembly relies on; the Sidecar compiles and checks the rest. */
function isKubeObject(value: unknown, kind: string): boolean {
  return isObject(value) && value.kind === kind && isObject(value.metadata) && typeof value.metadata.name === 'string' && isObject(value.spec);
}

function parseIdentityPolicy(resource: TypedResource): IdentityPolicyPayload {
  const value = parseJson(TYPE_URLS.identityPolicy, resource);
  const fail = (detail: string): GatehouseError => payloadError(TYPE_URLS.identityPolicy, resource.name, detail);
  if (!isKubeObject(value.identity, 'NonHumanIdentity')) throw fail('identity is not a NonHumanIdentity');
  if (!Array.isArray(value.bindings)) throw fail('bindings is not a list');
  for (const binding of value.bindings) {
    if (!isObject(binding) || typeof binding.resource !== 'string' || !Array.isArray(binding.policies)) throw fail('a binding lacks resource or policies');
    if (!binding.policies.every((policy) => isKubeObject(policy, 'AccessPolicy'))) throw fail(`binding ${binding.resource} holds something other than AccessPolicies`);
  }
  return value as unknown as IdentityPolicyPayload;
}

function parseProtectedResource(resource: TypedResource): ProtectedResourcePayload {
  const value = parseJson(TYPE_URLS.protectedResource, resource);
  const fail = (detail: string): GatehouseError => payloadError(TYPE_URLS.protectedResource, resource.name, detail);
  if (!isKubeObject(value.resource, 'ProtectedResource')) throw fail('resource is not a ProtectedResource');
  if (value.caPem !== undefined && typeof value.caPem !== 'string') throw fail('caPem is not a string');
  return value as unknown as ProtectedResourcePayload;
}

function parseCredential(resource: TypedResource): CredentialPayload {
  const value = parseJson(TYPE_URLS.credential, resource);
  const fail = (detail: string): GatehouseError => payloadError(TYPE_URLS.credential, resource.name, detail);
  const credential = value.credential;
  if (typeof value.resource !== 'string') throw fail('resource is not a name');
  if (!isObject(credential) || typeof credential.username !== 'string' || typeof credential.password !== 'string') throw fail('credential lacks username or password');
  if (credential.expiresAt !== undefined && typeof credential.expiresAt !== 'number') throw fail('credential.expiresAt is not epoch ms');
  return value as unknown as CredentialPayload;
}

function byName<T>(entries: readonly T[], nameOf: (entry: T) => string): Map<string, T> {
  return new Map(entries.map((entry) => [nameOf(entry), entry]));
}

function entryFor(
  binding: IdentityPolicyPayload['bindings'][number],
  resources: ReadonlyMap<string, ProtectedResourcePayload>,
  credentials: ReadonlyMap<string, CredentialPayload>,
): SnapshotResource {
  const resource = resources.get(binding.resource);
  if (!resource) throw new GatehouseError('GH_ERR_CP_INCONSISTENT', { detail: `policies are bound to resource ${binding.resource}, which the snapshot does not describe` });
  const credential = credentials.get(binding.resource)?.credential;
  // Same key order as buildSnapshotFromConfig, so the reassembled snapshot hashes to the operator's version.
  return {
    resource: resource.resource,
    policies: binding.policies,
    ...(credential ? { credential } : {}),
    ...(resource.caPem !== undefined ? { caPem: resource.caPem } : {}),
  };
}

/**
 * Reassembles a SidecarSnapshot from the three sets. Throws GH_ERR_CP_PAYLOAD or
 * GH_ERR_CP_INCONSISTENT; the caller NACKs and keeps its last good snapshot.
 */
export function fromResourceSets(sets: ResourceSets): SidecarSnapshot {
  const identities = sets[TYPE_URLS.identityPolicy];
  if (identities.length !== 1) throw new GatehouseError('GH_ERR_CP_INCONSISTENT', { detail: `expected one IdentityPolicy, got ${identities.length}` });
  const { identity, bindings } = parseIdentityPolicy(identities[0]!);
  const resources = byName(sets[TYPE_URLS.protectedResource].map(parseProtectedResource), (payload) => payload.resource.metadata.name);
  const credentials = byName(sets[TYPE_URLS.credential].map(parseCredential), (payload) => payload.resource);
  const entries = bindings.map((binding) => entryFor(binding, resources, credentials));
  return { version: snapshotVersion({ identity, resources: entries }), identity, resources: entries };
}
