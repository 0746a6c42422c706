// The validating webhook's judgement: a Gatehouse object is checked exactly as `gatehouse validate`
// checks a folder (schema, CEL rules, references, semantics), against what the cluster holds in its
// namespace. Problems of the object itself deny it (errors) or come back as warnings; problems the
// change causes in other objects (a policy left naming a deleted resource) are warnings, since
// refusing them would block deletions and namespace teardown. One admission costs about the same
// whatever the namespace holds: objects are loaded once (no text round trip), and only the changed
// object and the objects whose problems it can change are validated, through indexed lookups.
import {
  configFromLoaded,
  isWarning,
  loadManifestObject,
  namespaceOf,
  type ConfigObject,
  type ConfigProblem,
  type LoadedManifest,
  type Secret,
} from '../../api/manifests/config.js';
import { validateObjects, type ValidationScope } from '../../api/manifests/validate.js';
import { claimsOf, ValidationContext } from '../../api/manifests/validation-context.js';
import type { AccessPolicy, NonHumanIdentity, ProtectedResource } from '../../api/kinds/kinds.js';
import type { AdmissionOperation } from './admission-review.js';

/** What the cluster holds in one namespace; Secret values decoded (only keys and CA PEM are looked at). */
export interface ClusterObjects {
  readonly identities: readonly NonHumanIdentity[];
  readonly resources: readonly ProtectedResource[];
  readonly policies: readonly AccessPolicy[];
  readonly secrets: readonly Secret[];
}

/** The wiring answers from its informer caches; references resolve within a namespace, so one is enough. */
export type ClusterView = (namespace: string) => ClusterObjects | Promise<ClusterObjects>;

export const GATEHOUSE_KINDS: ReadonlySet<string> = new Set(['NonHumanIdentity', 'ProtectedResource', 'AccessPolicy', 'AccessRequest']);

export interface ValidationChange {
  readonly operation: AdmissionOperation;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** The object as it would be stored (CREATE, UPDATE). */
  readonly object?: unknown;
}

export interface ValidationOutcome {
  /** Problems of the object itself that `gatehouse validate` counts as errors: the request is denied. */
  readonly errors: ConfigProblem[];
  readonly warnings: ConfigProblem[];
  /** Problems this change causes in other objects of the namespace (always warnings). */
  readonly others: ConfigProblem[];
}

interface Identified {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
}

function keyOf(kind: string, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

function objectKey(object: Identified, namespace: string): string {
  return keyOf(object.kind, object.metadata.namespace ?? namespace, object.metadata.name);
}

function secretManifest(secret: Secret, namespace: string): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: secret.metadata.name, namespace: secret.metadata.namespace ?? namespace },
    stringData: secret.data,
  };
}

/**
 * Cluster objects as loaded, by the informer's object: the cache hands out the same object until it
 * changes and replaces it with a new one on update, so each version is schema-checked once. The
 * resourceVersion is compared too, so an object changed in place is loaded again. Entries go with
 * the objects they were made from.
 */
interface LoadedEntry {
  readonly namespace: string;
  readonly resourceVersion: string | undefined;
  readonly manifest: LoadedManifest;
}

const loadedByObject = new WeakMap<object, LoadedEntry>();

function loadClusterObject(object: Identified & { readonly metadata: { readonly resourceVersion?: string } }, namespace: string): LoadedManifest {
  const { resourceVersion } = object.metadata;
  const cached = loadedByObject.get(object);
  if (cached?.namespace === namespace && cached.resourceVersion === resourceVersion) return cached.manifest;
  const manifest = loadManifestObject(objectKey(object, namespace), withNamespace(object, namespace));
  loadedByObject.set(object, { namespace, resourceVersion, manifest });
  return manifest;
}

interface LoadedView {
  readonly manifests: readonly LoadedManifest[];
  /** Where the changed object sits among them, or -1. */
  readonly changedAt: number;
}

/** The namespace's objects in the order the text loader saw them: identities, resources, policies, Secrets. */
function loadView(view: ClusterObjects, namespace: string, changedKey: string): LoadedView {
  const manifests: LoadedManifest[] = [];
  let changedAt = -1;
  for (const object of [...view.identities, ...view.resources, ...view.policies] as Identified[]) {
    const manifest = loadClusterObject(object, namespace);
    if (manifest.file === changedKey) changedAt = manifests.length;
    manifests.push(manifest);
  }
  for (const secret of view.secrets) manifests.push(loadManifestObject(objectKey(secret, namespace), secretManifest(secret, namespace)));
  return { manifests, changedAt };
}

function withNamespace(object: unknown, namespace: string): unknown {
  const record = object as { metadata?: Record<string, unknown> };
  return { ...record, metadata: { ...record.metadata, namespace: (record.metadata?.namespace as string | undefined) ?? namespace } };
}

function problemKey(problem: ConfigProblem): string {
  return [problem.code, problem.kind, problem.namespace, problem.name, problem.path, problem.message].join('|');
}

function isAbout(problem: ConfigProblem, change: ValidationChange): boolean {
  // An object without a name gets problems without one; they are still its own.
  const name = problem.name ?? '';
  return problem.kind === change.kind && name === change.name && problem.namespace === change.namespace;
}

function scopeOf(objects: Iterable<ConfigObject>): ValidationScope {
  const scope = { identities: [] as NonHumanIdentity[], resources: [] as ProtectedResource[], policies: [] as AccessPolicy[] };
  for (const object of objects) {
    if (object.kind === 'NonHumanIdentity') scope.identities.push(object);
    else if (object.kind === 'ProtectedResource') scope.resources.push(object);
    else if (object.kind === 'AccessPolicy') scope.policies.push(object);
  }
  return scope;
}

/**
 * The other objects whose problems a version of the changed object can change, found through the
 * context's indexes: what references it by name (or by a group it joins or leaves), what shares a
 * namespace-wide unique claim or port with it, and, for a policy, the deny-only policies that may be
 * layered over it. Everything else is validated the same with or without the change.
 */
function affectedBy(context: ValidationContext, version: ConfigObject | undefined, change: ValidationChange, into: Set<ConfigObject>): void {
  const { namespace, name } = change;
  const add = (objects: readonly ConfigObject[]): void => {
    for (const object of objects) into.add(object);
  };
  if (change.kind === 'NonHumanIdentity') {
    add(context.policiesReferencing(namespace, 'identity', name));
    if (version?.kind !== 'NonHumanIdentity') return;
    for (const group of version.spec.groups ?? []) add(context.policiesReferencing(namespace, 'group', group));
    for (const { claim } of claimsOf(version)) add(context.claimants(namespaceOf(version), claim));
  } else if (change.kind === 'ProtectedResource') {
    add(context.policiesReferencing(namespace, 'resource', name));
    if (version?.kind === 'ProtectedResource') add(context.portOwners(namespaceOf(version), version.spec.sidecar.port));
  } else if (change.kind === 'AccessPolicy' && version?.kind === 'AccessPolicy') {
    for (const resource of version.spec.resources) {
      add(context.policiesReferencing(namespace, 'resource', resource).filter((policy) => policy.spec.rules.every((rule) => rule.effect === 'deny')));
    }
  }
}

/**
 * Validates the changed object in the namespace as it would be after the change, and the objects it
 * affects both after and before, keeping the problems that are new. The changed object is loaded
 * last, so a conflict it causes (two identities claiming one ServiceAccount, two resources sharing a
 * sidecar port) is reported on it, not on the older one. The verdicts are those of validateConfig
 * over the whole namespace (gatehouse-validation.test.ts compares them on random changes).
 */
export function validateChange(view: ClusterObjects, change: ValidationChange): ValidationOutcome {
  const key = keyOf(change.kind, change.namespace, change.name);
  const loaded = loadView(view, change.namespace, key);
  const previous = loaded.changedAt >= 0 ? loaded.manifests[loaded.changedAt] : undefined;
  const others = loaded.manifests.filter((manifest) => manifest.file !== key);
  const next = change.operation !== 'DELETE' && change.object !== undefined
    ? loadManifestObject(key, withNamespace(change.object, change.namespace))
    : undefined;
  const after = configFromLoaded(next === undefined ? others : [...others, next]);
  const afterContext = new ValidationContext(after);
  const changed = next?.object;
  const afterProblems = [...after.problems, ...validateObjects(afterContext, scopeOf(changed === undefined ? [] : [changed]))];
  const own = sortByFile(afterProblems.filter((problem) => isAbout(problem, change)));
  const elsewhere = afterProblems.filter((problem) => !isAbout(problem, change));
  const verdict = { errors: own.filter((problem) => !isWarning(problem)), warnings: own.filter(isWarning) };

  // The objects this change can touch, whichever version of it they saw. Apart from the changed
  // object both versions of the namespace hold the same objects, so the after indexes find them all.
  const affected = new Set<ConfigObject>();
  affectedBy(afterContext, changed, change, affected);
  affectedBy(afterContext, previous?.object, change, affected);
  for (const object of [changed, previous?.object]) if (object !== undefined) affected.delete(object);
  // Loader problems of the other objects were there before the change too; only new ones count.
  const carried = new Set<ConfigProblem>();
  for (const manifest of others) for (const problem of manifest.problems) carried.add(problem);
  const fresh = elsewhere.filter((problem) => !carried.has(problem));
  if (affected.size === 0 && fresh.length === 0) return { ...verdict, others: [] };
  const scope = scopeOf(affected);
  fresh.push(...validateObjects(afterContext, scope));
  const before = configFromLoaded(loaded.manifests);
  const seen = new Set([...before.problems, ...validateObjects(new ValidationContext(before), scope)].map(problemKey));
  return { ...verdict, others: sortByFile(fresh.filter((problem) => !seen.has(problemKey(problem)))) };
}

/** validateConfig's order: by file (an object's key), then line, then the order found. */
function sortByFile(problems: ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((problem, order) => ({ problem, order }))
    .sort((a, b) => (a.problem.file < b.problem.file ? -1 : a.problem.file > b.problem.file ? 1 : 0) || a.problem.line - b.problem.line || a.order - b.order)
    .map(({ problem }) => problem);
}

/** `spec.address: Address … [GH_ERR_RESOURCE_ADDRESS]`: one line per problem of the object itself. */
export function describeOwnProblem(problem: ConfigProblem): string {
  return `${problem.path ? `${problem.path}: ` : ''}${problem.message} [${problem.code}]`;
}

/** `AccessPolicy payments/ci-orders spec.resources[0]: …`: a problem of another object. */
export function describeOtherProblem(problem: ConfigProblem): string {
  return `${problem.kind} ${problem.namespace}/${problem.name}${problem.path ? ` ${problem.path}` : ''}: ${problem.message} [${problem.code}]`;
}
