// What the semantic checks of `gatehouse validate` share: the loaded config indexed by namespace
// and name (and by what objects reference or must keep unique, so no check scans the whole set per
// object), and builders for problems that point at an object's field (file, line, path).
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

/** Something a workload proves (a ServiceAccount, an OIDC subject) that only one identity per namespace may claim. */
export interface IdentityClaim {
  readonly claim: string;
  readonly path: FieldPath;
}

/** What an identity claims, in the order conflicts are reported. */
export function claimsOf(identity: NonHumanIdentity): IdentityClaim[] {
  const claims: IdentityClaim[] = [];
  const { serviceAccountName, oidc } = identity.spec;
  if (serviceAccountName !== undefined) {
    claims.push({ claim: `ServiceAccount ${serviceAccountName}`, path: ['spec', 'serviceAccountName'] });
  }
  if (oidc !== undefined) {
    const audience = oidc.audience ?? 'gatehouse';
    claims.push({ claim: `OIDC subject ${oidc.subject} from ${oidc.issuer} (audience ${audience})`, path: ['spec', 'oidc', 'subject'] });
  }
  return claims;
}

/** Appends `value` under `key`, keeping the config's order (first claimant first). */
function append<T>(index: Map<string, T[]>, key: string, value: T): void {
  const list = index.get(key);
  if (list === undefined) index.set(key, [value]);
  else if (list[list.length - 1] !== value) list.push(value);
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
  // Built on first use: a scoped validation of one object needs only some of them.
  private claimIndex?: Map<string, NonHumanIdentity[]>;
  private portIndex?: Map<string, ProtectedResource[]>;
  private policyIndex?: Map<string, AccessPolicy[]>;

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
    append(this.namespacesByName, byName, namespace);
  }

  private addGroups(identity: NonHumanIdentity): void {
    for (const group of identity.spec.groups ?? []) append(this.groupMembers, `${namespaceOf(identity)}/${group}`, identity);
  }

  /** The identities claiming `claim` in a namespace, in config order: the first one keeps it. */
  claimants(namespace: string, claim: string): readonly NonHumanIdentity[] {
    if (this.claimIndex === undefined) {
      this.claimIndex = new Map();
      for (const identity of this.config.identities) {
        for (const { claim: claimed } of claimsOf(identity)) append(this.claimIndex, `${namespaceOf(identity)}/${claimed}`, identity);
      }
    }
    return this.claimIndex.get(`${namespace}/${claim}`) ?? [];
  }

  /** The resources taking sidecar `port` in a namespace, in config order: the first one keeps it. */
  portOwners(namespace: string, port: number): readonly ProtectedResource[] {
    if (this.portIndex === undefined) {
      this.portIndex = new Map();
      for (const resource of this.config.resources) append(this.portIndex, `${namespaceOf(resource)}/${resource.spec.sidecar.port}`, resource);
    }
    return this.portIndex.get(`${namespace}/${port}`) ?? [];
  }

  /** Policies listing resource `name`, or a subject `{identity: name}` / `{group: name}`, once each, in config order. */
  policiesReferencing(namespace: string, target: 'resource' | 'identity' | 'group', name: string): readonly AccessPolicy[] {
    if (this.policyIndex === undefined) {
      this.policyIndex = new Map();
      for (const policy of this.config.policies) {
        const namespace = namespaceOf(policy);
        for (const resource of policy.spec.resources) append(this.policyIndex, `resource/${namespace}/${resource}`, policy);
        for (const subject of policy.spec.subjects) {
          if (subject.identity !== undefined) append(this.policyIndex, `identity/${namespace}/${subject.identity}`, policy);
          if (subject.group !== undefined) append(this.policyIndex, `group/${namespace}/${subject.group}`, policy);
        }
      }
    }
    return this.policyIndex.get(`${target}/${namespace}/${name}`) ?? [];
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
