// Sidecar injection for the mutating Pod webhook: decides whether a pod gets the Gatehouse sidecar
// and writes the JSON patch that adds it (a native sidecar, its token volume, client env for the
// app, the transparent-mode redirect) to the raw original. Injection only ever adds, so the patch is
// written directly — `add` operations at the indices the original has — rather than diffed from an
// edited copy, which cost most of an admission's time and garbage. Pure: what the operator knows
// (identity, resources, namespace labels) comes in through InjectionContext.
import { GatehouseError } from '../../api/errors.js';
import type { ProtectedResource } from '../../api/kinds/kinds.js';
import { GATEHOUSE_AUDIENCE } from '../identity/workload-identity.js';
import { isJsonObject, pointerSegment, type JsonObject, type JsonPatchOperation, type JsonValue } from './json-patch.js';
import { planRedirect, redirectScript, SIDECAR_UID } from './transparent-redirect.js';

export { SIDECAR_UID } from './transparent-redirect.js';

export const INJECT_LABEL = 'gatehouse.dev/inject';
export const INJECTED_ANNOTATION = 'gatehouse.dev/injected';
/**
 * Also a label on every injected pod: the operator watches only pods with it (a label selector),
 * rather than caching every pod of the cluster to find the few that carry a sidecar.
 */
export const INJECTED_LABEL = 'gatehouse.dev/injected';
export const IDENTITY_ANNOTATION = 'gatehouse.dev/identity';
export const SIDECAR_IMAGE_ANNOTATION = 'gatehouse.dev/sidecar-image';
export const TRANSPARENT_ANNOTATION = 'gatehouse.dev/transparent';
export const SIDECAR_CPU_ANNOTATION = 'gatehouse.dev/sidecar-cpu';
export const SIDECAR_MEMORY_ANNOTATION = 'gatehouse.dev/sidecar-memory';

export const SIDECAR_CONTAINER = 'gatehouse-sidecar';
export const REDIRECT_CONTAINER = 'gatehouse-redirect';
export const TOKEN_VOLUME = 'gatehouse-token';
export const TOKEN_DIRECTORY = '/var/run/secrets/gatehouse';
export const TOKEN_FILE = `${TOKEN_DIRECTORY}/token`;
export const TOKEN_AUDIENCE = GATEHOUSE_AUDIENCE;
export const TOKEN_EXPIRATION_SECONDS = 600;
/** The sidecar's admin port: /readyz passes only after the first policy snapshot is applied. */
export const SIDECAR_ADMIN_PORT = 15090;
const XTABLES_VOLUME = 'gatehouse-xtables';
/** Session events wait here for the operator's acknowledgement; an emptyDir survives a sidecar restart in the pod. */
export const RECORDING_SPOOL_VOLUME = 'gatehouse-spool';
export const RECORDING_SPOOL_DIRECTORY = '/var/run/gatehouse/spool';
/** Above the sidecar's default spool bound (256 MiB) with room for compaction, so a full spool drops events instead of getting the pod evicted. */
const RECORDING_SPOOL_SIZE_LIMIT = '512Mi';

export interface ResourceQuantities {
  readonly cpu: string;
  readonly memory: string;
}

export interface SidecarResources {
  readonly requests: ResourceQuantities;
  readonly limits: ResourceQuantities;
}

export const DEFAULT_SIDECAR_RESOURCES: SidecarResources = {
  requests: { cpu: '50m', memory: '64Mi' },
  limits: { cpu: '500m', memory: '256Mi' },
};

/** What the operator knows about the pod's surroundings; the wiring builds it from its caches. */
export interface InjectionContext {
  /** The namespace the pod is created in (AdmissionReview request.namespace). */
  readonly namespace: string;
  readonly namespaceLabels: Readonly<Record<string, string>>;
  readonly operatorNamespace: string;
  readonly sidecarImage: string;
  /** host:port of the operator's policy discovery service. */
  readonly controlPlaneAddress: string;
  /** PEM of the CA that signed the control plane's certificate (public). */
  readonly controlPlaneCa: string;
  /** The NonHumanIdentity claiming the pod's ServiceAccount; absent when none does. */
  readonly identity?: string;
  /** The ProtectedResources that identity may reach. */
  readonly resources: readonly ProtectedResource[];
  readonly sidecarResources?: SidecarResources;
}

/**
 * An InjectionContext with its properties always in this order, wherever it is built (the operator's
 * cache lookup, the admission warm-up): V8 gives objects with the same properties in the same order
 * one shape, so the injection code the warm-up optimised still fits the real lookups' contexts.
 */
export function injectionContextOf(fields: InjectionContext): InjectionContext {
  return {
    namespace: fields.namespace,
    namespaceLabels: fields.namespaceLabels,
    operatorNamespace: fields.operatorNamespace,
    sidecarImage: fields.sidecarImage,
    controlPlaneAddress: fields.controlPlaneAddress,
    controlPlaneCa: fields.controlPlaneCa,
    identity: fields.identity,
    resources: fields.resources,
    sidecarResources: fields.sidecarResources,
  };
}

export interface InjectionResult {
  readonly patch: JsonPatchOperation[];
  readonly reason: string;
  readonly injected: boolean;
}

/** A pod as the API server sends it: raw JSON, only the fields injection reads are typed. */
export interface PodLike {
  metadata?: { name?: string; generateName?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { hostNetwork?: boolean; serviceAccountName?: string; [key: string]: unknown };
  [key: string]: unknown;
}

function skip(reason: string): InjectionResult {
  return { patch: [], reason, injected: false };
}

/** Why the pod is not to be injected, or undefined when it is. */
function skipReason(pod: PodLike, context: InjectionContext): string | undefined {
  const labels = pod.metadata?.labels ?? {};
  const annotations = pod.metadata?.annotations ?? {};
  if (context.namespace === context.operatorNamespace) return `namespace ${context.namespace} is the operator's own`;
  if (labels[INJECT_LABEL] === 'disabled' || annotations[INJECT_LABEL] === 'disabled') return `the pod opts out (${INJECT_LABEL}: disabled)`;
  const optedIn = context.namespaceLabels[INJECT_LABEL] === 'enabled' || labels[INJECT_LABEL] === 'enabled';
  if (!optedIn) return `neither namespace ${context.namespace} nor the pod has ${INJECT_LABEL}=enabled`;
  if (pod.spec?.hostNetwork === true) return 'the pod uses the host network, which a per-pod sidecar cannot confine';
  if (containersOf(pod.spec, 'initContainers').some((container) => container.name === SIDECAR_CONTAINER)) {
    return 'the sidecar is already injected';
  }
  if (context.identity === undefined) {
    const account = pod.spec?.serviceAccountName ?? 'default';
    return `no NonHumanIdentity claims ServiceAccount ${account} in namespace ${context.namespace}, so the sidecar would get no access`;
  }
  return undefined;
}

/** The JSON patch that injects the sidecar into `pod` (empty, with the reason, when it should not). */
export function injectSidecar(pod: PodLike, context: InjectionContext): InjectionResult {
  const reason = skipReason(pod, context);
  if (reason !== undefined) return skip(reason);
  if (!isJsonObject(pod.spec)) throw new GatehouseError('GH_ERR_ADMISSION_BAD_REQUEST', { detail: 'the Pod has no spec' });
  const spec = pod.spec as JsonObject;
  const options = readOverrides(pod, context);
  const resources = [...context.resources].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  if (options.transparent) checkTransparentSafety(spec);
  const redirected = options.transparent && resources.length > 0;
  const patch: JsonPatchOperation[] = [];
  // Env first, at the containers' original indices; the sidecar then goes in front of the init containers.
  addClientEnv(spec, resources, patch);
  const injected: JsonObject[] = redirected ? [redirectContainer(options.image, resources), sidecarContainer(options, context)] : [sidecarContainer(options, context)];
  prepend(spec, 'initContainers', injected, '/spec/initContainers', patch);
  append(spec, 'volumes', volumes(redirected), '/spec/volumes', patch);
  markInjected(pod, context.identity!, patch);
  const mode = options.transparent ? 'transparent' : 'explicit';
  const names = resources.map((resource) => resource.metadata.name).join(', ') || 'none';
  return { patch, reason: `injected for identity ${context.identity} (${mode} mode; resources: ${names})`, injected: true };
}

/** `add`s putting `items` after what `parent[field]` holds (the whole array when there is none). */
function append(parent: JsonObject, field: string, items: readonly JsonValue[], path: string, patch: JsonPatchOperation[]): void {
  const existing = parent[field];
  if (!Array.isArray(existing)) {
    patch.push({ op: 'add', path, value: [...items] });
    return;
  }
  items.forEach((value, offset) => patch.push({ op: 'add', path: `${path}/${existing.length + offset}`, value }));
}

/** `add`s putting `items` in front of what `parent[field]` holds, in order. */
function prepend(parent: JsonObject, field: string, items: readonly JsonValue[], path: string, patch: JsonPatchOperation[]): void {
  if (!Array.isArray(parent[field])) {
    patch.push({ op: 'add', path, value: [...items] });
    return;
  }
  items.forEach((value, index) => patch.push({ op: 'add', path: `${path}/${index}`, value }));
}

// ── per-pod overrides ───────────────────────────────────────────────────────────────────────────

interface InjectionOptions {
  readonly image: string;
  readonly transparent: boolean;
  readonly resources: SidecarResources;
}

/** Kubernetes quantities: a number with an optional SI or binary suffix (250m, 0.5, 128Mi, 1G). */
const QUANTITY = /^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
/** An image reference: registry/repo[:tag][@digest], no spaces or shell characters. */
const IMAGE = /^[a-z0-9]([a-zA-Z0-9._\-/:@]*[a-zA-Z0-9_.\-])?$/;

function readOverrides(pod: PodLike, context: InjectionContext): InjectionOptions {
  const annotations = pod.metadata?.annotations ?? {};
  const invalid = (annotation: string, detail: string) =>
    new GatehouseError('GH_ERR_ADMISSION_ANNOTATION', { annotation, value: JSON.stringify(annotations[annotation]), detail });
  const image = annotations[SIDECAR_IMAGE_ANNOTATION] ?? context.sidecarImage;
  if (!IMAGE.test(image)) throw invalid(SIDECAR_IMAGE_ANNOTATION, 'expected an image reference like registry.example/gatehouse/sidecar:1.2.3');
  const transparentValue = annotations[TRANSPARENT_ANNOTATION];
  if (transparentValue !== undefined && transparentValue !== 'true' && transparentValue !== 'false') {
    throw invalid(TRANSPARENT_ANNOTATION, 'expected "true" or "false"');
  }
  const base = context.sidecarResources ?? DEFAULT_SIDECAR_RESOURCES;
  const cpu = annotations[SIDECAR_CPU_ANNOTATION];
  const memory = annotations[SIDECAR_MEMORY_ANNOTATION];
  if (cpu !== undefined && !QUANTITY.test(cpu)) throw invalid(SIDECAR_CPU_ANNOTATION, 'expected a CPU quantity like 100m or 0.5');
  if (memory !== undefined && !QUANTITY.test(memory)) throw invalid(SIDECAR_MEMORY_ANNOTATION, 'expected a memory quantity like 128Mi');
  // An override sets request and limit alike, so the sidecar gets exactly what the pod asked for.
  return {
    image,
    transparent: transparentValue === 'true',
    resources: {
      requests: { cpu: cpu ?? base.requests.cpu, memory: memory ?? base.requests.memory },
      limits: { cpu: cpu ?? base.limits.cpu, memory: memory ?? base.limits.memory },
    },
  };
}

// ── what is injected ────────────────────────────────────────────────────────────────────────────

function hardenedSecurityContext(): JsonObject {
  return {
    runAsNonRoot: true,
    runAsUser: SIDECAR_UID,
    runAsGroup: SIDECAR_UID,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

function readyzProbe(periodSeconds: number, failureThreshold: number): JsonObject {
  return { httpGet: { path: '/readyz', port: SIDECAR_ADMIN_PORT }, periodSeconds, failureThreshold, timeoutSeconds: 1 };
}

function sidecarContainer(options: InjectionOptions, context: InjectionContext): JsonObject {
  return {
    name: SIDECAR_CONTAINER,
    image: options.image,
    args: ['sidecar'],
    // restartPolicy Always on an init container makes it a native sidecar: it starts before the
    // app containers (once its startup probe passes) and does not keep a Job from completing.
    restartPolicy: 'Always',
    env: [
      { name: 'GATEHOUSE_CONTROL_PLANE', value: context.controlPlaneAddress },
      { name: 'GATEHOUSE_CONTROL_PLANE_CA', value: context.controlPlaneCa },
      { name: 'GATEHOUSE_TOKEN_FILE', value: TOKEN_FILE },
      { name: 'GATEHOUSE_ADMIN_PORT', value: String(SIDECAR_ADMIN_PORT) },
      { name: 'GATEHOUSE_RECORDING_SPOOL', value: RECORDING_SPOOL_DIRECTORY },
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    ],
    ports: [{ name: 'gatehouse-admin', containerPort: SIDECAR_ADMIN_PORT, protocol: 'TCP' }],
    volumeMounts: [{ name: TOKEN_VOLUME, mountPath: TOKEN_DIRECTORY, readOnly: true }, { name: RECORDING_SPOOL_VOLUME, mountPath: RECORDING_SPOOL_DIRECTORY }],
    // Up to two minutes for the first snapshot; the app containers start only after this passes.
    startupProbe: readyzProbe(1, 120),
    readinessProbe: readyzProbe(5, 3),
    securityContext: hardenedSecurityContext(),
    resources: {
      requests: { ...options.resources.requests },
      limits: { ...options.resources.limits },
    },
  };
}

function redirectContainer(image: string, resources: readonly ProtectedResource[]): JsonObject {
  return {
    name: REDIRECT_CONTAINER,
    image,
    command: ['/bin/sh', '-c', redirectScript(planRedirect(resources))],
    // iptables needs root with NET_ADMIN/NET_RAW in the pod's network namespace, and nothing else.
    securityContext: {
      runAsUser: 0,
      runAsNonRoot: false,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'NET_RAW'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    // iptables takes its lock in /run; a small writable emptyDir keeps the root filesystem read-only.
    volumeMounts: [{ name: XTABLES_VOLUME, mountPath: '/run' }],
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
  };
}

function volumes(transparent: boolean): JsonObject[] {
  const token: JsonObject = {
    name: TOKEN_VOLUME,
    projected: {
      sources: [{ serviceAccountToken: { audience: TOKEN_AUDIENCE, expirationSeconds: TOKEN_EXPIRATION_SECONDS, path: 'token' } }],
    },
  };
  const spool: JsonObject = { name: RECORDING_SPOOL_VOLUME, emptyDir: { sizeLimit: RECORDING_SPOOL_SIZE_LIMIT } };
  return transparent ? [token, spool, { name: XTABLES_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } }] : [token, spool];
}

/** The injected label and annotations, added to (or replacing the values of) what the pod has. */
function markInjected(pod: PodLike, identity: string, patch: JsonPatchOperation[]): void {
  const additions = {
    labels: { [INJECTED_LABEL]: 'true' },
    annotations: { [INJECTED_ANNOTATION]: 'true', [IDENTITY_ANNOTATION]: identity },
  };
  const metadata = pod.metadata;
  if (!isJsonObject(metadata)) {
    patch.push({ op: 'add', path: '/metadata', value: additions });
    return;
  }
  for (const field of ['labels', 'annotations'] as const) {
    const entries = additions[field];
    const existing: unknown = metadata[field];
    if (!isJsonObject(existing)) {
      patch.push({ op: existing === undefined ? 'add' : 'replace', path: `/metadata/${field}`, value: entries });
      continue;
    }
    for (const [key, value] of Object.entries(entries)) {
      patch.push({ op: existing[key] === undefined ? 'add' : 'replace', path: `/metadata/${field}/${pointerSegment(key)}`, value });
    }
  }
}

// ── app containers ──────────────────────────────────────────────────────────────────────────────

function containersOf(spec: JsonObject | PodLike['spec'] | undefined, field: 'containers' | 'initContainers'): JsonObject[] {
  const list = spec?.[field];
  return Array.isArray(list) ? list.filter(isJsonObject) : [];
}

/** GATEHOUSE_<NAME>_URL: the resource name upper-cased, anything but letters and digits as _. */
export function resourceUrlVariable(name: string): string {
  return `GATEHOUSE_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_URL`;
}

const URL_SCHEMES: Readonly<Record<string, string>> = {
  postgres: 'postgres',
  mysql: 'mysql',
  http: 'http',
  kubernetes: 'http',
  ssh: 'ssh',
  tcp: 'tcp',
};

/** Where the app reaches a resource: the sidecar on loopback. Never a user name or password. */
function sidecarUrl(resource: ProtectedResource): string {
  const { protocol, sidecar, database } = resource.spec;
  const base = `${URL_SCHEMES[protocol] ?? 'tcp'}://127.0.0.1:${sidecar.port}`;
  return (protocol === 'postgres' || protocol === 'mysql') && database ? `${base}/${database}` : base;
}

/** The env every app container gets: one URL per resource, and libpq's variables when one postgres. */
export function clientEnv(resources: readonly ProtectedResource[]): { name: string; value: string }[] {
  const env: { name: string; value: string }[] = [];
  const seen = new Set<string>();
  for (const resource of resources) {
    const name = resourceUrlVariable(resource.metadata.name);
    if (seen.has(name)) continue; // orders-db and orders.db map to one name; the first (by name) keeps it
    seen.add(name);
    env.push({ name, value: sidecarUrl(resource) });
  }
  const postgres = resources.filter((resource) => resource.spec.protocol === 'postgres');
  if (postgres.length === 1) {
    const only = postgres[0]!;
    env.push(
      { name: 'PGHOST', value: '127.0.0.1' },
      { name: 'PGPORT', value: String(only.spec.sidecar.port) },
      // The app speaks plain TCP to its own pod's loopback; the sidecar does TLS upstream.
      { name: 'PGSSLMODE', value: 'disable' },
      { name: 'DATABASE_URL', value: sidecarUrl(only) },
    );
  }
  return env;
}

/** Adds the client env to every app container (and existing init container), keeping values the pod sets itself. */
function addClientEnv(spec: JsonObject, resources: readonly ProtectedResource[], patch: JsonPatchOperation[]): void {
  const env = clientEnv(resources);
  if (env.length === 0) return;
  for (const field of ['containers', 'initContainers'] as const) {
    const containers = spec[field];
    if (!Array.isArray(containers)) continue;
    containers.forEach((container, index) => {
      if (!isJsonObject(container)) return;
      const existing = Array.isArray(container.env) ? container.env : [];
      const defined = new Set(existing.filter(isJsonObject).map((variable) => variable.name));
      const added = env.filter((variable) => !defined.has(variable.name));
      if (added.length > 0) append(container, 'env', added, `/spec/${field}/${index}/env`, patch);
    });
  }
}

// ── transparent-mode safety ─────────────────────────────────────────────────────────────────────

/**
 * The redirect exempts the sidecar's uid, and NET_ADMIN could undo it: an app container with either
 * could go around the sidecar, so transparent mode refuses such a pod rather than pretend.
 */
function checkTransparentSafety(spec: JsonObject): void {
  const podContext = isJsonObject(spec.securityContext) ? spec.securityContext : {};
  for (const container of [...containersOf(spec, 'containers'), ...containersOf(spec, 'initContainers')]) {
    const context = isJsonObject(container.securityContext) ? container.securityContext : {};
    const name = String(container.name);
    const uid = context.runAsUser ?? podContext.runAsUser;
    const unsafe = (detail: string) => new GatehouseError('GH_ERR_TRANSPARENT_UNSAFE_POD', { container: name, detail });
    if (uid === SIDECAR_UID) throw unsafe(`it runs as uid ${SIDECAR_UID}, the sidecar's, whose traffic is not redirected`);
    if (context.privileged === true) throw unsafe('it is privileged');
    const added = isJsonObject(context.capabilities) && Array.isArray(context.capabilities.add) ? context.capabilities.add : [];
    const dangerous = added.filter((capability) => ['NET_ADMIN', 'CAP_NET_ADMIN', 'ALL'].includes(String(capability)));
    if (dangerous.length > 0) throw unsafe(`it adds capability ${String(dangerous[0])}, which can rewrite the redirect rules`);
  }
}
