// Turns a Pod's injected sidecar (the native sidecar initContainer `gatehouse-sidecar`) into what the
// stand-in kubelet needs to run it as a local process: command, expanded env and args, the projected
// ServiceAccount tokens to request, and the probes. Pure: no API calls, no files, so it is unit-tested.
import path from 'node:path';
import type { V1Container, V1EnvVar, V1Pod, V1Probe } from '@kubernetes/client-node';
import { expandVariables, lookupIn } from './env-expansion.js';

export const SIDECAR_CONTAINER_NAME = 'gatehouse-sidecar';

/** Why a pod cannot be run; becomes the pod's Failed status message. */
export class PodSpecError extends Error {
  constructor(readonly reason: string, message: string) {
    super(message);
    this.name = 'PodSpecError';
  }
}

/** One serviceAccountToken source of a projected volume, with where the container expects the file. */
export interface ProjectedToken {
  readonly volumeName: string;
  readonly audiences: readonly string[];
  readonly expirationSeconds: number;
  /** The file as the container sees it (mountPath/path). */
  readonly containerPath: string;
  /** The file relative to the volume root. */
  readonly relativePath: string;
}

/** A downwardAPI file of a projected volume (e.g. the pod's labels); written once at start. */
export interface ProjectedFieldFile {
  readonly volumeName: string;
  readonly relativePath: string;
  readonly content: string;
}

export interface HttpProbe {
  readonly path: string;
  readonly port: number;
  readonly periodMs: number;
  readonly failureThreshold: number;
  readonly timeoutMs: number;
}

export interface SidecarSpec {
  readonly image: string;
  readonly serviceAccountName: string;
  /** Container args with $(VAR) expanded and mount paths rewritten to the stand-in volume folder. */
  readonly args: readonly string[];
  /** Container command (if any), expanded the same way; the image map decides what actually runs. */
  readonly command: readonly string[];
  readonly env: ReadonlyMap<string, string>;
  readonly tokens: readonly ProjectedToken[];
  readonly fieldFiles: readonly ProjectedFieldFile[];
  readonly startupProbe?: HttpProbe;
  readonly readinessProbe?: HttpProbe;
  readonly terminationGracePeriodSeconds: number;
}

export interface SidecarSpecOptions {
  /** Folder standing in for the pod's volumes: volume V is mounted from `${volumeRoot}/V`. */
  readonly volumeRoot: string;
  /** Admin port assigned to this pod; overrides GATEHOUSE_ADMIN_PORT and is what probes target. */
  readonly adminPort: number;
  /** What fieldRefs to spec.nodeName and status.hostIP/podIP resolve to when the pod has none. */
  readonly nodeName: string;
  readonly podIP: string;
  /**
   * Env values the stand-in sets instead of the pod's (e.g. GATEHOUSE_CONTROL_PLANE → 127.0.0.1:PORT,
   * since cluster DNS names do not resolve here); replaced in place like the admin port, added if absent.
   */
  readonly envOverrides?: Readonly<Record<string, string>>;
}

export const ADMIN_PORT_ENV = 'GATEHOUSE_ADMIN_PORT';
const DEFAULT_TOKEN_EXPIRATION_SECONDS = 3600;

/** The native sidecar initContainer, or undefined when the pod has none (such pods are not run). */
export function findSidecarContainer(pod: V1Pod): V1Container | undefined {
  return pod.spec?.initContainers?.find(
    (container) => container.name === SIDECAR_CONTAINER_NAME && container.restartPolicy === 'Always',
  );
}

export function buildSidecarSpec(pod: V1Pod, options: SidecarSpecOptions): SidecarSpec {
  const container = findSidecarContainer(pod);
  if (!container) throw new PodSpecError('NoSidecar', `pod has no native sidecar initContainer named ${SIDECAR_CONTAINER_NAME}`);
  if (!container.image) throw new PodSpecError('InvalidImageName', `container ${container.name} has no image`);
  const mounts = volumeMountsOf(pod, container, options.volumeRoot);
  const env = resolveEnv(pod, container, options, mounts);
  const lookup = lookupIn(env);
  const expand = (value: string) => rewriteMountPaths(expandVariables(value, lookup), mounts);
  return {
    image: container.image,
    serviceAccountName: pod.spec?.serviceAccountName ?? 'default',
    args: (container.args ?? []).map(expand),
    command: (container.command ?? []).map(expand),
    env,
    tokens: projectedTokens(pod, container),
    fieldFiles: projectedFieldFiles(pod, container, options),
    startupProbe: httpProbe(container.startupProbe, options.adminPort, 'startupProbe'),
    readinessProbe: httpProbe(container.readinessProbe, options.adminPort, 'readinessProbe'),
    terminationGracePeriodSeconds: pod.spec?.terminationGracePeriodSeconds ?? 30,
  };
}

/** mountPath → host folder, longest mountPath first so nested mounts win. */
type MountTable = ReadonlyArray<readonly [containerPath: string, hostPath: string]>;

function volumeMountsOf(pod: V1Pod, container: V1Container, volumeRoot: string): MountTable {
  // emptyDir too: each pod gets its own folder, as a kubelet gives each pod its own scratch volume.
  const projected = new Set((pod.spec?.volumes ?? []).filter((volume) => volume.projected || volume.emptyDir).map((volume) => volume.name));
  return (container.volumeMounts ?? [])
    .filter((mount) => projected.has(mount.name))
    .map((mount) => [trimSlash(mount.mountPath), path.join(volumeRoot, mount.name)] as const)
    .sort((a, b) => b[0].length - a[0].length);
}

function trimSlash(value: string): string {
  return value.length > 1 && value.endsWith('/') ? value.slice(0, -1) : value;
}

/** Values that name a file under a projected mount point to the stand-in folder instead. */
export function rewriteMountPaths(value: string, mounts: MountTable): string {
  for (const [containerPath, hostPath] of mounts) {
    if (value === containerPath) return hostPath;
    if (value.startsWith(`${containerPath}/`)) return hostPath + value.slice(containerPath.length);
    // Flags such as --token-file=/var/run/... carry the path after an `=`.
    const equals = value.indexOf(`=${containerPath}`);
    if (equals >= 0) return value.slice(0, equals + 1) + rewriteMountPaths(value.slice(equals + 1), mounts);
  }
  return value;
}

function resolveEnv(pod: V1Pod, container: V1Container, options: SidecarSpecOptions, mounts: MountTable): Map<string, string> {
  const env = new Map<string, string>();
  const overrides = new Map([...Object.entries(options.envOverrides ?? {}), [ADMIN_PORT_ENV, String(options.adminPort)]]);
  for (const variable of container.env ?? []) {
    // Each value sees only the variables defined before it, as in the kubelet; the admin port is
    // replaced in place so that later $(GATEHOUSE_ADMIN_PORT) references see the assigned one.
    const value = overrides.get(variable.name) ?? envValue(pod, variable, env, options);
    env.set(variable.name, rewriteMountPaths(value, mounts));
  }
  if (container.envFrom?.length) {
    throw new PodSpecError('CreateContainerConfigError', `envFrom is not supported by the stand-in kubelet (container ${container.name})`);
  }
  for (const [name, value] of overrides) if (!env.has(name)) env.set(name, value);
  return env;
}

function envValue(pod: V1Pod, variable: V1EnvVar, earlier: ReadonlyMap<string, string>, options: SidecarSpecOptions): string {
  if (variable.valueFrom === undefined) return expandVariables(variable.value ?? '', lookupIn(earlier));
  const fieldPath = variable.valueFrom.fieldRef?.fieldPath;
  if (fieldPath !== undefined) return resolveFieldPath(pod, fieldPath, options);
  const source = Object.keys(variable.valueFrom).join(', ');
  throw new PodSpecError('CreateContainerConfigError', `env ${variable.name}: valueFrom ${source} is not supported by the stand-in kubelet (only value and fieldRef)`);
}

const LABEL_OR_ANNOTATION = /^metadata\.(labels|annotations)\['(.+)'\]$/;

/** The downward API fieldPaths the kubelet supports for env and downwardAPI volume items. */
export function resolveFieldPath(pod: V1Pod, fieldPath: string, options: Pick<SidecarSpecOptions, 'nodeName' | 'podIP'>): string {
  const keyed = LABEL_OR_ANNOTATION.exec(fieldPath);
  if (keyed) {
    const map = keyed[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations;
    return map?.[keyed[2]] ?? '';
  }
  switch (fieldPath) {
    case 'metadata.name': return pod.metadata?.name ?? '';
    case 'metadata.namespace': return pod.metadata?.namespace ?? '';
    case 'metadata.uid': return pod.metadata?.uid ?? '';
    case 'metadata.labels': return formatMap(pod.metadata?.labels);
    case 'metadata.annotations': return formatMap(pod.metadata?.annotations);
    case 'spec.nodeName': return pod.spec?.nodeName ?? options.nodeName;
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? 'default';
    case 'status.hostIP': case 'status.podIP': return options.podIP;
    case 'status.hostIPs': case 'status.podIPs': return options.podIP;
    default:
      throw new PodSpecError('CreateContainerConfigError', `fieldRef ${fieldPath} is not a downward API field the kubelet supports`);
  }
}

/** The kubelet's format for labels/annotations files: key="value" lines, sorted. */
function formatMap(map: Record<string, string> | undefined): string {
  return Object.keys(map ?? {}).sort().map((key) => `${key}=${JSON.stringify(map?.[key] ?? '')}`).join('\n');
}

function mountedProjectedVolumes(pod: V1Pod, container: V1Container) {
  const mounts = new Map((container.volumeMounts ?? []).map((mount) => [mount.name, trimSlash(mount.mountPath)]));
  return (pod.spec?.volumes ?? [])
    .filter((volume) => volume.projected && mounts.has(volume.name))
    .map((volume) => ({ volume, mountPath: mounts.get(volume.name) ?? '' }));
}

function projectedTokens(pod: V1Pod, container: V1Container): ProjectedToken[] {
  return mountedProjectedVolumes(pod, container).flatMap(({ volume, mountPath }) =>
    (volume.projected?.sources ?? []).flatMap((source) => {
      const token = source.serviceAccountToken;
      if (!token) return [];
      return [{
        volumeName: volume.name,
        // No audience means the API server's own audiences, which TokenRequest picks when the list is empty.
        audiences: token.audience ? [token.audience] : [],
        expirationSeconds: token.expirationSeconds ?? DEFAULT_TOKEN_EXPIRATION_SECONDS,
        containerPath: path.posix.join(mountPath, token.path),
        relativePath: safeRelative(token.path),
      }];
    }));
}

function projectedFieldFiles(pod: V1Pod, container: V1Container, options: SidecarSpecOptions): ProjectedFieldFile[] {
  return mountedProjectedVolumes(pod, container).flatMap(({ volume }) =>
    (volume.projected?.sources ?? []).flatMap((source) =>
      (source.downwardAPI?.items ?? []).flatMap((item) =>
        item.fieldRef ? [{ volumeName: volume.name, relativePath: safeRelative(item.path), content: resolveFieldPath(pod, item.fieldRef.fieldPath, options) }] : [])));
}

/** A projected file path must stay inside its volume, as the API server's validation demands. */
function safeRelative(file: string): string {
  const normal = path.posix.normalize(file);
  if (path.posix.isAbsolute(normal) || normal.startsWith('..')) {
    throw new PodSpecError('CreateContainerConfigError', `projected path ${file} must be relative and stay inside the volume`);
  }
  return normal;
}

/**
 * The sidecar's probes target its admin server, whose port the stand-in assigns per pod (two pods
 * cannot share one port on 127.0.0.1), so the probe's port is replaced by the assigned admin port.
 */
function httpProbe(probe: V1Probe | undefined, adminPort: number, field: string): HttpProbe | undefined {
  if (!probe) return undefined;
  if (!probe.httpGet) throw new PodSpecError('CreateContainerConfigError', `${field}: only httpGet probes are supported by the stand-in kubelet`);
  return {
    path: probe.httpGet.path ?? '/',
    port: adminPort,
    periodMs: (probe.periodSeconds ?? 10) * 1000,
    failureThreshold: probe.failureThreshold ?? 3,
    timeoutMs: (probe.timeoutSeconds ?? 1) * 1000,
  };
}
