// The registry of resource types the loopback API server serves: built-ins are one line each, and
// CustomResourceDefinitions add and remove entries at run time. Discovery and routing read from here.
import type { JsonObject } from './objects.js';

/** A CRD additionalPrinterColumn (what `kubectl get` shows). */
export interface PrinterColumn {
  readonly name: string;
  readonly type: string;
  readonly jsonPath: string;
  readonly description?: string;
  readonly format?: string;
  readonly priority?: number;
}

export interface ResourceType {
  readonly group: string;
  /** Versions served, first = preferred/storage. Objects are stored once and served in any of them. */
  readonly versions: readonly string[];
  readonly plural: string;
  readonly singular: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  readonly categories: readonly string[];
  /** Subresources: `status` splits status writes from spec writes; others are handled by name. */
  readonly subresources: readonly string[];
  /** Create-only virtual types (TokenReview) answer a POST and store nothing. */
  readonly virtual?: boolean;
  /** Per-version openAPIV3Schema of a CRD, validated and pruned on every write. */
  readonly schemas?: ReadonlyMap<string, JsonObject>;
  /** Per-version additionalPrinterColumns of a CRD, for Table output. */
  readonly printerColumns?: ReadonlyMap<string, readonly PrinterColumn[]>;
  /** Set for types defined by a CRD (by the CRD's name), so deleting the CRD removes them. */
  readonly crdName?: string;
}

export const STORED_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function builtin(group: string, version: string, kind: string, plural: string, namespaced: boolean, extra: Partial<ResourceType> = {}): ResourceType {
  return { group, versions: [version], plural, singular: kind.toLowerCase(), kind, namespaced, shortNames: [], categories: [], subresources: [], ...extra };
}

/** Built-in types: stored and served with generic semantics; a few have extra behaviour in the server. */
export const BUILTIN_TYPES: readonly ResourceType[] = [
  builtin('', 'v1', 'Namespace', 'namespaces', false, { shortNames: ['ns'], subresources: ['status'] }),
  builtin('', 'v1', 'Pod', 'pods', true, { shortNames: ['po'], categories: ['all'], subresources: ['status'] }),
  builtin('', 'v1', 'Service', 'services', true, { shortNames: ['svc'], categories: ['all'], subresources: ['status'] }),
  builtin('', 'v1', 'ServiceAccount', 'serviceaccounts', true, { shortNames: ['sa'], subresources: ['token'] }),
  builtin('', 'v1', 'Secret', 'secrets', true),
  builtin('', 'v1', 'ConfigMap', 'configmaps', true, { shortNames: ['cm'] }),
  builtin('', 'v1', 'Event', 'events', true, { shortNames: ['ev'] }),
  builtin('', 'v1', 'Endpoints', 'endpoints', true, { shortNames: ['ep'] }),
  builtin('', 'v1', 'ResourceQuota', 'resourcequotas', true, { shortNames: ['quota'], subresources: ['status'] }),
  builtin('', 'v1', 'LimitRange', 'limitranges', true, { shortNames: ['limits'] }),
  builtin('', 'v1', 'PersistentVolumeClaim', 'persistentvolumeclaims', true, { shortNames: ['pvc'], subresources: ['status'] }),
  builtin('', 'v1', 'PersistentVolume', 'persistentvolumes', false, { shortNames: ['pv'], subresources: ['status'] }),
  builtin('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', true),
  builtin('events.k8s.io', 'v1', 'Event', 'events', true, { shortNames: ['ev'] }),
  builtin('coordination.k8s.io', 'v1', 'Lease', 'leases', true),
  builtin('apps', 'v1', 'Deployment', 'deployments', true, { shortNames: ['deploy'], categories: ['all'], subresources: ['status'] }),
  builtin('apps', 'v1', 'StatefulSet', 'statefulsets', true, { shortNames: ['sts'], categories: ['all'], subresources: ['status'] }),
  builtin('apps', 'v1', 'DaemonSet', 'daemonsets', true, { shortNames: ['ds'], categories: ['all'], subresources: ['status'] }),
  builtin('apps', 'v1', 'ReplicaSet', 'replicasets', true, { shortNames: ['rs'], categories: ['all'], subresources: ['status'] }),
  builtin('batch', 'v1', 'Job', 'jobs', true, { categories: ['all'], subresources: ['status'] }),
  builtin('batch', 'v1', 'CronJob', 'cronjobs', true, { shortNames: ['cj'], categories: ['all'], subresources: ['status'] }),
  builtin('autoscaling', 'v2', 'HorizontalPodAutoscaler', 'horizontalpodautoscalers', true, { shortNames: ['hpa'], categories: ['all'], subresources: ['status'] }),
  builtin('policy', 'v1', 'PodDisruptionBudget', 'poddisruptionbudgets', true, { shortNames: ['pdb'], subresources: ['status'] }),
  builtin('networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies', true, { shortNames: ['netpol'] }),
  builtin('networking.k8s.io', 'v1', 'Ingress', 'ingresses', true, { shortNames: ['ing'], subresources: ['status'] }),
  builtin('networking.k8s.io', 'v1', 'IngressClass', 'ingressclasses', false),
  builtin('scheduling.k8s.io', 'v1', 'PriorityClass', 'priorityclasses', false, { shortNames: ['pc'] }),
  builtin('storage.k8s.io', 'v1', 'StorageClass', 'storageclasses', false, { shortNames: ['sc'] }),
  builtin('admissionregistration.k8s.io', 'v1', 'MutatingWebhookConfiguration', 'mutatingwebhookconfigurations', false, { categories: ['api-extensions'] }),
  builtin('admissionregistration.k8s.io', 'v1', 'ValidatingWebhookConfiguration', 'validatingwebhookconfigurations', false, { categories: ['api-extensions'] }),
  builtin('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition', 'customresourcedefinitions', false, { shortNames: ['crd', 'crds'], categories: ['api-extensions'], subresources: ['status'] }),
  builtin('authentication.k8s.io', 'v1', 'TokenReview', 'tokenreviews', false, { virtual: true }),
  builtin('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', true),
  builtin('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', true),
  builtin('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', false),
  builtin('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', false),
];

/** Types by group and plural; the set discovery publishes. */
export class ResourceTypeRegistry {
  private readonly types = new Map<string, ResourceType>();

  constructor(initial: readonly ResourceType[] = BUILTIN_TYPES) {
    for (const type of initial) this.add(type);
  }

  add(type: ResourceType): void {
    this.types.set(typeKey(type.group, type.plural), type);
  }

  remove(group: string, plural: string): void {
    this.types.delete(typeKey(group, plural));
  }

  find(group: string, version: string, plural: string): ResourceType | undefined {
    const type = this.types.get(typeKey(group, plural));
    return type !== undefined && type.versions.includes(version) ? type : undefined;
  }

  all(): ResourceType[] {
    return [...this.types.values()];
  }

  /** Group → versions, preferred first, in registration order. */
  groups(): Map<string, string[]> {
    const groups = new Map<string, string[]>();
    for (const type of this.types.values()) {
      const versions = groups.get(type.group) ?? [];
      for (const version of type.versions) if (!versions.includes(version)) versions.push(version);
      groups.set(type.group, versions);
    }
    return groups;
  }
}

export function typeKey(group: string, plural: string): string {
  return `${group}/${plural}`;
}

export function apiVersionOf(group: string, version: string): string {
  return group === '' ? version : `${group}/${version}`;
}
