// The validating webhook's judgement: a Gatehouse object is checked exactly as `gatehouse validate`
// checks a folder (schema, CEL rules, references, semantics), against what the cluster holds in its
// namespace. Problems of the object itself deny it (errors) or come back as warnings; problems the
// change causes in other objects (a policy left naming a deleted resource) are warnings, since
// refusing them would block deletions and namespace teardown.
import { loadConfigFromTexts, isWarning, type ConfigProblem, type ManifestText, type Secret } from '../../api/manifests/config.js';
import { validateConfig } from '../../api/manifests/validate.js';
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

function textOf(file: string, object: unknown): ManifestText {
  // JSON is YAML, so the loader reads it as it would read a file of the GitOps repo.
  return { file, text: JSON.stringify(object) };
}

function clusterTexts(view: ClusterObjects, namespace: string, skip?: string): ManifestText[] {
  const texts: ManifestText[] = [];
  for (const object of [...view.identities, ...view.resources, ...view.policies] as Identified[]) {
    const key = objectKey(object, namespace);
    if (key !== skip) texts.push(textOf(key, object));
  }
  for (const secret of view.secrets) texts.push(textOf(objectKey(secret, namespace), secretManifest(secret, namespace)));
  return texts;
}

function problemKey(problem: ConfigProblem): string {
  return [problem.code, problem.kind, problem.namespace, problem.name, problem.path, problem.message].join('|');
}

function isAbout(problem: ConfigProblem, change: ValidationChange): boolean {
  // An object without a name gets problems without one; they are still its own.
  const name = problem.name ?? '';
  return problem.kind === change.kind && name === change.name && problem.namespace === change.namespace;
}

function withNamespace(object: unknown, namespace: string): unknown {
  const record = object as { metadata?: Record<string, unknown> };
  return { ...record, metadata: { ...record.metadata, namespace: (record.metadata?.namespace as string | undefined) ?? namespace } };
}

/**
 * Validates the namespace as it would be after the change, and as it is, and splits the problems
 * that are new. The changed object is loaded last, so a conflict it causes (two identities claiming
 * one ServiceAccount, two resources sharing a sidecar port) is reported on it, not on the older one.
 */
export function validateChange(view: ClusterObjects, change: ValidationChange): ValidationOutcome {
  const key = keyOf(change.kind, change.namespace, change.name);
  const afterTexts = clusterTexts(view, change.namespace, key);
  if (change.operation !== 'DELETE' && change.object !== undefined) {
    afterTexts.push(textOf(key, withNamespace(change.object, change.namespace)));
  }
  const after = validateConfig(loadConfigFromTexts(afterTexts));
  const own = after.filter((problem) => isAbout(problem, change));
  const elsewhere = after.filter((problem) => !isAbout(problem, change));
  let others: ConfigProblem[] = [];
  if (elsewhere.length > 0) {
    const before = new Set(validateConfig(loadConfigFromTexts(clusterTexts(view, change.namespace))).map(problemKey));
    others = elsewhere.filter((problem) => !before.has(problemKey(problem)));
  }
  return {
    errors: own.filter((problem) => !isWarning(problem)),
    warnings: own.filter(isWarning),
    others,
  };
}

/** `spec.address: Address … [GH_ERR_RESOURCE_ADDRESS]`: one line per problem of the object itself. */
export function describeOwnProblem(problem: ConfigProblem): string {
  return `${problem.path ? `${problem.path}: ` : ''}${problem.message} [${problem.code}]`;
}

/** `AccessPolicy payments/ci-orders spec.resources[0]: …`: a problem of another object. */
export function describeOtherProblem(problem: ConfigProblem): string {
  return `${problem.kind} ${problem.namespace}/${problem.name}${problem.path ? ` ${problem.path}` : ''}: ${problem.message} [${problem.code}]`;
}
