// The cluster as a GatehouseConfig: the same shape a folder of manifests loads into, built from the
// informer caches, so the reconcilers judge objects with validateConfig, the very checks of
// `gatehouse validate`, and the cluster control plane selects with the code local mode uses.
// Validation of the whole cluster is memoised on the objects' uids and generations, so a burst of
// reconciles after one change validates once, and status writes cause no revalidation at all.
import type { AccessPolicy, NonHumanIdentity, ProtectedResource } from '../../api/kinds/kinds.js';
import { namespaceOf, type ConfigObject, type ConfigProblem, type GatehouseConfig, type Secret } from '../../api/manifests/config.js';
import { validateConfig } from '../../api/manifests/validate.js';
import { decodeSecret, isDeleting, type ClusterStores, type KubeSecret } from './cluster-objects.js';

export interface ConfigScope {
  /** Only this namespace's objects (references never cross namespaces). */
  readonly namespace?: string;
  /** Leave out objects being deleted: what the control plane serves must not include them. */
  readonly live?: boolean;
}

/** The Secrets resources refer to (credentials and CA), decoded; other Secrets are none of our business. */
function referencedSecrets(resources: readonly ProtectedResource[], secrets: ClusterStores['secrets']): Map<string, KubeSecret> {
  const found = new Map<string, KubeSecret>();
  for (const resource of resources) {
    const namespace = namespaceOf(resource);
    const names = [resource.spec.credentials.secretRef?.name, resource.spec.tls?.caSecretRef?.name];
    for (const name of names) {
      if (name === undefined || found.has(`${namespace}/${name}`)) continue;
      const secret = secrets.get(namespace, name);
      if (secret) found.set(`${namespace}/${name}`, secret);
    }
  }
  return found;
}

/** A GatehouseConfig over the given objects: no files, so problems carry file `<unknown>`, line 0. */
export function configOf(
  identities: NonHumanIdentity[],
  resources: ProtectedResource[],
  policies: AccessPolicy[],
  secrets: Secret[],
): GatehouseConfig {
  return {
    identities,
    resources,
    policies,
    secrets,
    policyTests: [],
    problems: [],
    sourceOf: (_object: ConfigObject) => undefined,
  };
}

export function configFromStores(stores: ClusterStores, scope: ConfigScope = {}): GatehouseConfig {
  const keep = <T extends { metadata: { name: string } }>(objects: T[]): T[] => (scope.live ? objects.filter((object) => !isDeleting(object)) : objects);
  const resources = keep(stores.resources.list(scope.namespace));
  const secrets = [...referencedSecrets(resources, stores.secrets).values()].map(decodeSecret);
  return configOf(keep(stores.identities.list(scope.namespace)), resources, keep(stores.policies.list(scope.namespace)), secrets);
}

function problemKey(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

/** Validates the whole cluster at most once per state of the stores; answers per object. */
export class ClusterValidation {
  private readonly ids = new WeakMap<object, number>();
  private nextId = 0;
  private fingerprint = '';
  private problems = new Map<string, ConfigProblem[]>();

  constructor(private readonly stores: ClusterStores) {}

  /** Errors and warnings validateConfig reports for one object, as of the stores' current content. */
  problemsOf(kind: string, namespace: string, name: string): readonly ConfigProblem[] {
    this.refresh();
    return this.problems.get(problemKey(kind, namespace, name)) ?? [];
  }

  private refresh(): void {
    const config = configFromStores(this.stores);
    const objects = [...config.identities, ...config.resources, ...config.policies];
    const rawSecrets = referencedSecrets(config.resources, this.stores.secrets);
    const fingerprint = [...objects, ...rawSecrets.values()].map((object) => this.versionOf(object)).join(',');
    if (fingerprint === this.fingerprint) return;
    const problems = new Map<string, ConfigProblem[]>();
    for (const problem of validateConfig(config)) {
      if (problem.kind === undefined || problem.name === undefined) continue;
      const key = problemKey(problem.kind, problem.namespace ?? 'default', problem.name);
      problems.set(key, [...(problems.get(key) ?? []), problem]);
    }
    this.problems = problems;
    this.fingerprint = fingerprint;
  }

  /**
   * What changes when anything validation reads changes: the uid and generation (status writes leave
   * them alone), or the resourceVersion for kinds without a generation, or else the object itself.
   */
  private versionOf(object: { metadata: { uid?: string; generation?: number; resourceVersion?: string } }): string {
    const { uid, generation, resourceVersion } = object.metadata;
    const version = generation ?? resourceVersion;
    return `${uid ?? this.idOf(object)}:${version ?? this.idOf(object)}`;
  }

  private idOf(object: object): number {
    let id = this.ids.get(object);
    if (id === undefined) this.ids.set(object, (id = this.nextId++));
    return id;
  }
}
