// What the semantic checks of `gatehouse validate` share: the loaded config indexed by namespace
// and name, and builders for problems that point at an object's field (file, line, path).
import type { ErrorCode, ErrorDetails } from '../errors.js';
import type { AccessPolicy, NonHumanIdentity, ProtectedResource } from '../kinds/kinds.js';
import {
  namespaceOf,
  problemAt,
  type ConfigObject,
  type ConfigProblem,
  type GatehouseConfig,
  type Secret,
} from './config.js';

export type FieldPath = readonly (string | number)[];

/** An identity a policy applies to, and the group subject that brought it in (absent when named directly). */
export interface PolicyMember {
  readonly identity: NonHumanIdentity;
  readonly group?: string;
}

type ReferableKind = 'NonHumanIdentity' | 'ProtectedResource' | 'Secret';

interface Named {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
}

function keyOf(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

export class ValidationContext {
  readonly config: GatehouseConfig;
  private readonly objects = new Map<string, Named>();
  private readonly namespacesByName = new Map<string, string[]>();
  private readonly rejected: Set<string>;
  private readonly groupMembers = new Map<string, NonHumanIdentity[]>();

  constructor(config: GatehouseConfig) {
    this.config = config;
    for (const object of [...config.identities, ...config.resources, ...config.secrets]) this.add(object);
    for (const identity of config.identities) this.addGroups(identity);
    this.rejected = new Set((config.rejected ?? []).map((key) => keyOf(key.kind, key.namespace, key.name)));
  }

  private add(object: Named): void {
    const namespace = namespaceOf(object);
    const key = keyOf(object.kind, namespace, object.metadata.name);
    // The loader reports duplicates; the first definition is the one references resolve to.
    if (this.objects.has(key)) return;
    this.objects.set(key, object);
    const byName = `${object.kind}/${object.metadata.name}`;
    this.namespacesByName.set(byName, [...(this.namespacesByName.get(byName) ?? []), namespace]);
  }

  private addGroups(identity: NonHumanIdentity): void {
    for (const group of identity.spec.groups ?? []) {
      const key = `${namespaceOf(identity)}/${group}`;
      this.groupMembers.set(key, [...(this.groupMembers.get(key) ?? []), identity]);
    }
  }

  identity(namespace: string, name: string): NonHumanIdentity | undefined {
    return this.objects.get(keyOf('NonHumanIdentity', namespace, name)) as NonHumanIdentity | undefined;
  }

  resource(namespace: string, name: string): ProtectedResource | undefined {
    return this.objects.get(keyOf('ProtectedResource', namespace, name)) as ProtectedResource | undefined;
  }

  secret(namespace: string, name: string): Secret | undefined {
    return this.objects.get(keyOf('Secret', namespace, name)) as Secret | undefined;
  }

  membersOf(namespace: string, group: string): readonly NonHumanIdentity[] {
    return this.groupMembers.get(`${namespace}/${group}`) ?? [];
  }

  /** The existing resources a policy governs, in the order it lists them. */
  resourcesOf(policy: AccessPolicy): ProtectedResource[] {
    const namespace = namespaceOf(policy);
    return policy.spec.resources.flatMap((name) => this.resource(namespace, name) ?? []);
  }

  /** Every existing identity a policy applies to, once each, direct subjects before group members. */
  membersOfPolicy(policy: AccessPolicy): PolicyMember[] {
    const namespace = namespaceOf(policy);
    const members = new Map<string, PolicyMember>();
    for (const subject of policy.spec.subjects) {
      const identity = subject.identity === undefined ? undefined : this.identity(namespace, subject.identity);
      if (identity && !members.has(identity.metadata.name)) members.set(identity.metadata.name, { identity });
    }
    for (const subject of policy.spec.subjects) {
      if (subject.group === undefined) continue;
      for (const identity of this.membersOf(namespace, subject.group)) {
        if (!members.has(identity.metadata.name)) members.set(identity.metadata.name, { identity, group: subject.group });
      }
    }
    return [...members.values()];
  }

  /**
   * The problem for a reference from `owner` that resolves to nothing, or undefined when it
   * resolves, or when the target is present but rejected (its own problems already say why).
   */
  unresolved(
    owner: ConfigObject,
    path: FieldPath,
    target: { kind: ReferableKind; name: string },
    code: ErrorCode,
    details: ErrorDetails = {},
  ): ConfigProblem | undefined {
    const namespace = namespaceOf(owner);
    const key = keyOf(target.kind, namespace, target.name);
    if (this.objects.has(key) || this.rejected.has(key)) return undefined;
    const elsewhere = this.namespacesByName.get(`${target.kind}/${target.name}`) ?? [];
    if (elsewhere.length > 0) {
      return this.error(owner, path, 'GH_ERR_REF_OTHER_NAMESPACE', {
        kind: target.kind,
        name: target.name,
        namespace,
        found: elsewhere.join(', '),
      });
    }
    return this.error(owner, path, code, { name: target.name, namespace, ...details });
  }

  error(object: ConfigObject, path: FieldPath, code: ErrorCode, details: ErrorDetails = {}): ConfigProblem {
    return problemAt(this.config, object, path, code, details);
  }

  warning(object: ConfigObject, path: FieldPath, code: ErrorCode, details: ErrorDetails = {}): ConfigProblem {
    return { ...problemAt(this.config, object, path, code, details), severity: 'warning' };
  }
}
