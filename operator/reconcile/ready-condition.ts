// What each reconciler reports: the Ready condition of an object, derived from the problems
// validateConfig finds for it (plus what only a cluster can tell, like a missing ServiceAccount).
// Each error code maps to a CamelCase reason; when several apply, the first in the kind's reason
// order wins and the message lists every problem, so one look at `kubectl get -o yaml` says it all.
import type { ErrorCode } from '../../api/errors.js';
import { isWarning, type ConfigProblem } from '../../api/manifests/config.js';
import type { Condition } from '../kube/conditions.js';

export type { Condition } from '../kube/conditions.js';

/** A condition before it is stamped with a transition time. */
export interface DesiredCondition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
}

export const READY = 'Ready';

/** A problem the cluster shows but validateConfig cannot (it never sees ServiceAccounts). */
export interface ClusterProblem {
  readonly reason: string;
  readonly message: string;
}

type ReasonOf = (problem: ConfigProblem) => string;

/** Reasons in priority order; `Invalid` covers every other error. */
export const IDENTITY_REASONS = ['ServiceAccountNotFound', 'IdentityConflict', 'Invalid'] as const;
export const RESOURCE_REASONS = [
  'SecretNotFound', 'SecretKeysMissing', 'CASecretNotFound', 'CASecretKeyMissing', 'CASecretInvalid', 'PortConflict', 'Invalid',
] as const;
export const POLICY_REASONS = ['ResourceNotFound', 'IdentityNotFound', 'Invalid'] as const;

const IDENTITY_CODES: Partial<Record<ErrorCode, string>> = { GH_ERR_IDENTITY_CONFLICT: 'IdentityConflict' };

const RESOURCE_CODES: Partial<Record<ErrorCode, string>> = {
  GH_ERR_REF_UNKNOWN_SECRET: 'SecretNotFound',
  GH_ERR_REF_SECRET_KEYS: 'SecretKeysMissing',
  GH_ERR_REF_UNKNOWN_CA_SECRET: 'CASecretNotFound',
  GH_ERR_REF_CA_SECRET_KEY: 'CASecretKeyMissing',
  GH_ERR_REF_CA_NOT_PEM: 'CASecretInvalid',
  GH_ERR_PORT_CONFLICT: 'PortConflict',
};

const POLICY_CODES: Partial<Record<ErrorCode, string>> = {
  GH_ERR_REF_UNKNOWN_RESOURCE: 'ResourceNotFound',
  GH_ERR_REF_UNKNOWN_IDENTITY: 'IdentityNotFound',
};

/** A reference to another namespace is, to the referring object, a reference to nothing. */
function otherNamespaceReason(path: string): string | undefined {
  if (path.startsWith('spec.resources')) return 'ResourceNotFound';
  if (path.startsWith('spec.subjects')) return 'IdentityNotFound';
  if (path.startsWith('spec.credentials.secretRef')) return 'SecretNotFound';
  if (path.startsWith('spec.tls.caSecretRef')) return 'CASecretNotFound';
  return undefined;
}

function reasonFrom(codes: Partial<Record<ErrorCode, string>>): ReasonOf {
  return (problem) => {
    if (problem.code === 'GH_ERR_REF_OTHER_NAMESPACE') return otherNamespaceReason(problem.path) ?? 'Invalid';
    return codes[problem.code] ?? 'Invalid';
  };
}

export const identityReason = reasonFrom(IDENTITY_CODES);
export const resourceReason = reasonFrom(RESOURCE_CODES);
export const policyReason = reasonFrom(POLICY_CODES);

function describe(problem: ConfigProblem): string {
  return problem.path ? `${problem.path}: ${problem.message}` : problem.message;
}

export interface ReadyInputs {
  readonly problems: readonly ConfigProblem[];
  readonly clusterProblems?: readonly ClusterProblem[];
  readonly reasonOf: ReasonOf;
  readonly order: readonly string[];
  /** The message of Ready=True when there is nothing to warn about. */
  readonly readyMessage: string;
  readonly generation?: number;
}

export function readyCondition(inputs: ReadyInputs): DesiredCondition {
  const generation = inputs.generation === undefined ? {} : { observedGeneration: inputs.generation };
  const errors: ClusterProblem[] = [
    ...(inputs.clusterProblems ?? []),
    ...inputs.problems.filter((problem) => !isWarning(problem)).map((problem) => ({ reason: inputs.reasonOf(problem), message: describe(problem) })),
  ];
  if (errors.length > 0) {
    const rank = (reason: string) => {
      const index = inputs.order.indexOf(reason);
      return index < 0 ? inputs.order.length : index;
    };
    const reason = errors.map((error) => error.reason).sort((a, b) => rank(a) - rank(b))[0]!;
    return { type: READY, status: 'False', reason, message: errors.map((error) => error.message).join('; '), ...generation };
  }
  const warnings = inputs.problems.filter(isWarning).map(describe);
  const message = warnings.length === 0 ? inputs.readyMessage : `${inputs.readyMessage}; warnings: ${warnings.join('; ')}`;
  return { type: READY, status: 'True', reason: 'Ready', message, ...generation };
}

/** True when `next` says exactly what the object's condition of that type says already. */
export function conditionHolds(conditions: readonly Condition[], next: DesiredCondition): boolean {
  const current = conditions.find((condition) => condition.type === next.type);
  return current !== undefined
    && current.status === next.status
    && current.reason === next.reason
    && current.message === next.message
    && current.observedGeneration === next.observedGeneration;
}
