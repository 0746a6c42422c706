// The vocabulary of a policy decision: what is decided (actions), what decides (rule references)
// and the outcome. Shared by the operator (explain, policy tests) and the sidecar (enforcement,
// audit, metrics), so everything here is plain data that serialises to JSON unchanged.
import type { Effect, PolicyRuleT } from '../kinds/kinds.js';
import type { SqlAccess, SqlOperation } from '../sql/operations.js';

/** One thing a request does: a classified SQL access, or an HTTP request (operation plus path). */
export interface PolicyAction extends SqlAccess {
  /** Normalised URL path of an HTTP request; absent for SQL. */
  readonly path?: string;
}

/**
 * Why the decision came out as it did. `rule`: a matching rule decided; `no-match`: some action was
 * matched by no rule; `no-policy`: no AccessPolicy applies to the identity and resource at all;
 * `unparsable`: the input could not be classified (bad SQL, unknown HTTP method).
 */
export type DecisionReason = 'rule' | 'no-match' | 'no-policy' | 'unparsable';

export type ApprovalSettingsT = NonNullable<PolicyRuleT['approval']>;

/** Points at one rule of one AccessPolicy; `id` (`policy/name`) is what users read and write. */
export interface RuleRef {
  readonly id: string;
  readonly policy: string;
  readonly namespace: string;
  readonly index: number;
  /** rule.name, or `rules[INDEX]` for unnamed rules. */
  readonly name: string;
  readonly effect: Effect;
  readonly message?: string;
  readonly approval?: ApprovalSettingsT;
}

export interface Decision {
  readonly effect: Effect;
  readonly reason: DecisionReason;
  /** The deciding rule: the strongest matching rule; absent for no-match, no-policy and unparsable. */
  readonly rule?: RuleRef;
  /** Every rule that matched any action, in stable order (policy name, then rule index). */
  readonly matched: readonly RuleRef[];
  /** For a deny, what the client is told; otherwise a short explanation. */
  readonly message: string;
  /** The action that decided: the one the deciding rule matched, or the first one no rule matched. */
  readonly action?: PolicyAction;
  /** Strictest operation across the actions; absent when nothing could be classified. */
  readonly operation?: SqlOperation;
}

/** Higher wins: deny > require-approval > allow. */
export const EFFECT_RANK: Readonly<Record<Effect, number>> = { allow: 0, 'require-approval': 1, deny: 2 };

export function ruleId(policy: string, name: string): string {
  return `${policy}/${name}`;
}

/** "delete on orders", "admin via pg_terminate_backend()", "read on /v1/invoices", or just "read". */
export function describeAction(action: PolicyAction): string {
  if (action.relation) {
    const table = action.relation.schema ? `${action.relation.schema}.${action.relation.name}` : action.relation.name;
    return `${action.operation} on ${table}${action.unbounded ? ' without WHERE' : ''}`;
  }
  if (action.function) {
    const name = action.function.schema ? `${action.function.schema}.${action.function.name}` : action.function.name;
    return `${action.operation} via ${name}()`;
  }
  if (action.path !== undefined) return `${action.operation} on ${action.path}`;
  return action.operation;
}
