// The policy language: selects the AccessPolicies that apply to one identity on one resource and
// compiles their rules, once, into a decision function. Pure and synchronous, because the sidecar
// calls it for every statement and the operator for explain and policy tests.
//
// Semantics (DESIGN.md): order-independent; every matching rule counts; deny > require-approval >
// allow; an action no rule matches is denied. A request is a list of actions and every one of them
// must be covered, so `allow read` does not let `WITH d AS (DELETE ...) SELECT ...` through.
import { parseDuration } from '../duration.js';
import { isGatehouseError } from '../errors.js';
import type { AccessPolicy, MaskingRuleT, NonHumanIdentity, PolicyRuleT, ProtectedResource } from '../kinds/kinds.js';
import { namespaceOf } from '../manifests/namespace.js';
import type { ClassifyContext } from '../sql/classify.js';
import { strictness, type QualifiedName, type SqlClassification, type SqlOperation, SQL_OPERATIONS } from '../sql/operations.js';
import { describeAction, EFFECT_RANK, ruleId, type Decision, type PolicyAction, type RuleRef } from './decision.js';
import { compilePathGlob, compileTableGlob, type NameMatcher } from './glob.js';
import { httpOperation, normalizeHttpPath } from './http.js';

/** Identity maxCredentialTTL when the manifest leaves it out (the schema default). */
const DEFAULT_MAX_CREDENTIAL_TTL = '1h';

/** What decideSql needs from the SQL classifier (api/sql/classify.ts SqlClassifier fits). */
export interface StatementClassifier {
  classify(text: string, context?: ClassifyContext): SqlClassification;
}

/** A decision on SQL text, with the classification it was made from (absent when unparsable). */
export interface SqlDecision extends Decision {
  readonly classification?: SqlClassification;
}

export interface PolicySelection {
  /** Any number of policies; only those for this identity and resource, in its namespace, are used. */
  readonly policies: readonly AccessPolicy[];
  readonly identity: NonHumanIdentity;
  readonly resource: ProtectedResource;
}

export interface CompiledPolicySet {
  readonly identity: string;
  readonly resource: string;
  readonly namespace: string;
  /** Names of the selected policies, sorted. */
  readonly policies: readonly string[];
  /** Every rule of the selected policies, in stable order (policy name, then rule index). */
  readonly rules: readonly RuleRef[];
  /** Masking rules of every selected policy, in policy-name order. */
  readonly masking: readonly MaskingRuleT[];
  /** Whether sessions are recorded: true when any selected policy records (recording is on by default). */
  readonly recording: boolean;
  /** Whether statements must be refused while recording fails: any recording policy asks for mode sync. */
  readonly syncRecording: boolean;
  /** Credential lifetime in ms: the smallest policy credentialTTL, capped by the identity maxCredentialTTL. */
  readonly credentialTTL: number;
  decide(actions: readonly PolicyAction[]): Decision;
  /** `context` lets `EXECUTE name` count as the statement the session prepared under that name. */
  decideSql(text: string, classifier: StatementClassifier, context?: ClassifyContext): SqlDecision;
  decideHttp(method: string, path: string): Decision;
  /** Rules matching one action, strongest first; for explaining, not for the hot path. */
  matchingRules(action: PolicyAction): readonly RuleRef[];
}

interface CompiledRule {
  readonly ref: RuleRef;
  /** Position in the global strength order: lower is stronger (effect, then policy name, then index). */
  readonly strength: number;
  readonly operations: readonly SqlOperation[];
  readonly tables?: readonly ((relation: QualifiedName) => boolean)[];
  readonly paths?: readonly NameMatcher[];
  readonly unboundedOnly: boolean;
}

/** Selects and compiles the policies for `identity` on `resource`; throws GH_ERR_BAD_GLOB on a bad glob. */
export function compilePolicies(selection: PolicySelection): CompiledPolicySet {
  const namespace = namespaceOf(selection.identity);
  const selected = selectPolicies(selection);
  return new CompiledPolicies({
    identity: selection.identity.metadata.name,
    resource: selection.resource.metadata.name,
    namespace,
    selected,
    credentialTTL: credentialTTLOf(selection.identity, selected),
  });
}

/** The policies that apply to an identity on a resource: same namespace, named as subject and resource. */
export function selectPolicies({ policies, identity, resource }: PolicySelection): AccessPolicy[] {
  const namespace = namespaceOf(identity);
  if (namespaceOf(resource) !== namespace) return [];
  const groups = new Set(identity.spec.groups ?? []);
  const name = identity.metadata.name;
  return policies
    .filter((policy) => namespaceOf(policy) === namespace)
    .filter((policy) => policy.spec.resources.includes(resource.metadata.name))
    .filter((policy) =>
      policy.spec.subjects.some(
        (subject) => subject.identity === name || (subject.group !== undefined && groups.has(subject.group)),
      ),
    )
    .sort((a, b) => compareNames(a.metadata.name, b.metadata.name));
}

function credentialTTLOf(identity: NonHumanIdentity, policies: readonly AccessPolicy[]): number {
  let ttl = parseDuration(identity.spec.maxCredentialTTL ?? DEFAULT_MAX_CREDENTIAL_TTL);
  for (const policy of policies) {
    if (policy.spec.credentialTTL !== undefined) ttl = Math.min(ttl, parseDuration(policy.spec.credentialTTL));
  }
  return ttl;
}

/** Code-point order, so the tie-break is the same on every machine whatever its locale. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function refOf(policy: AccessPolicy, rule: PolicyRuleT, index: number): RuleRef {
  const name = rule.name ?? `rules[${index}]`;
  return {
    id: ruleId(policy.metadata.name, name),
    policy: policy.metadata.name,
    namespace: namespaceOf(policy),
    index,
    name,
    effect: rule.effect,
    ...(rule.message === undefined ? {} : { message: rule.message }),
    ...(rule.approval === undefined ? {} : { approval: rule.approval }),
  };
}

function compileRule(ref: RuleRef, rule: PolicyRuleT, strength: number): CompiledRule {
  return {
    ref,
    strength,
    // Absent operations match every operation; a Set drops accidental repeats.
    operations: [...new Set(rule.operations ?? SQL_OPERATIONS)],
    ...(rule.tables === undefined ? {} : { tables: rule.tables.map(compileTableGlob) }),
    ...(rule.paths === undefined ? {} : { paths: rule.paths.map(compilePathGlob) }),
    unboundedOnly: rule.unboundedWrite === true,
  };
}

function ruleMatches(rule: CompiledRule, action: PolicyAction): boolean {
  if (rule.unboundedOnly && action.unbounded !== true) return false;
  if (rule.tables !== undefined && !anyTableMatches(rule.tables, action.relation)) return false;
  if (rule.paths !== undefined && !anyPathMatches(rule.paths, action.path)) return false;
  return true;
}

function anyTableMatches(globs: readonly ((relation: QualifiedName) => boolean)[], relation?: QualifiedName): boolean {
  if (relation === undefined) return false;
  for (const glob of globs) if (glob(relation)) return true;
  return false;
}

function anyPathMatches(globs: readonly NameMatcher[], path?: string): boolean {
  if (path === undefined) return false;
  for (const glob of globs) if (glob(path)) return true;
  return false;
}

interface CompiledPoliciesInit {
  readonly identity: string;
  readonly resource: string;
  readonly namespace: string;
  readonly selected: readonly AccessPolicy[];
  readonly credentialTTL: number;
}

class CompiledPolicies implements CompiledPolicySet {
  readonly identity: string;
  readonly resource: string;
  readonly namespace: string;
  readonly policies: readonly string[];
  readonly rules: readonly RuleRef[];
  readonly masking: readonly MaskingRuleT[];
  readonly recording: boolean;
  readonly syncRecording: boolean;
  readonly credentialTTL: number;
  /** Per operation, the rules that can match it, strongest first: a decision scans only these. */
  private readonly byOperation: ReadonlyMap<SqlOperation, readonly CompiledRule[]>;
  /**
   * Decisions by classification. The classifier hands out the same classification object for every
   * statement of one shape, and a decision depends on nothing else, so repeated statements are
   * decided once; entries go when the classifier's cache lets go of the classification.
   */
  private readonly sqlDecisions = new WeakMap<SqlClassification, SqlDecision>();
  /** The last entry of `sqlDecisions` looked up: sessions send one statement shape after another. */
  private lastSqlDecision: SqlDecision | undefined;

  constructor(init: CompiledPoliciesInit) {
    this.identity = init.identity;
    this.resource = init.resource;
    this.namespace = init.namespace;
    this.credentialTTL = init.credentialTTL;
    this.policies = init.selected.map((policy) => policy.metadata.name);
    this.masking = init.selected.flatMap((policy) => policy.spec.masking ?? []);
    this.recording = init.selected.length === 0 || init.selected.some((policy) => policy.spec.recording?.enabled ?? true);
    this.syncRecording = init.selected.some((policy) => (policy.spec.recording?.enabled ?? true) && policy.spec.recording?.mode === 'sync');
    const entries = init.selected.flatMap((policy) =>
      policy.spec.rules.map((rule, index) => ({ rule, ref: refOf(policy, rule, index) })),
    );
    // `selected` is sorted by name and rules keep their index, so `entries` is already in stable order.
    this.rules = entries.map((entry) => entry.ref);
    // Array sort is stable, so equal effects keep the (policy name, rule index) tie-break order.
    const strongestFirst = [...entries].sort((a, b) => EFFECT_RANK[b.ref.effect] - EFFECT_RANK[a.ref.effect]);
    this.byOperation = indexByOperation(strongestFirst.map((entry, strength) => compileRule(entry.ref, entry.rule, strength)));
  }

  decide(actions: readonly PolicyAction[]): Decision {
    if (this.policies.length === 0) return this.noPolicy(strictestOf(actions));
    if (actions.length === 0) {
      return { effect: 'deny', reason: 'no-match', matched: [], message: 'nothing to decide: the request has no actions' };
    }
    return this.decideCovered(actions);
  }

  decideSql(text: string, classifier: StatementClassifier, context?: ClassifyContext): SqlDecision {
    let classification: SqlClassification;
    try {
      classification = classifier.classify(text, context);
    } catch (error) {
      if (isGatehouseError(error, 'GH_ERR_SQL_UNPARSABLE') || isGatehouseError(error, 'GH_ERR_SQL_EMPTY')) {
        return { effect: 'deny', reason: 'unparsable', matched: [], message: error.message };
      }
      throw error;
    }
    const last = this.lastSqlDecision;
    if (last !== undefined && last.classification === classification) return last;
    let decision = this.sqlDecisions.get(classification);
    if (decision === undefined) {
      const actions = classification.statements.flatMap((statement) => statement.accesses);
      decision = { ...this.decide(actions), classification };
      this.sqlDecisions.set(classification, decision);
    }
    this.lastSqlDecision = decision;
    return decision;
  }

  decideHttp(method: string, path: string): Decision {
    const operation = httpOperation(method);
    if (operation === undefined) {
      const message = `HTTP method ${JSON.stringify(method)} is not one Gatehouse classifies (GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE); denied`;
      return { effect: 'deny', reason: 'unparsable', matched: [], message };
    }
    const normalized = normalizeHttpPath(path);
    if (normalized === undefined) {
      const message = `request target ${JSON.stringify(path)} is not a URL path; denied`;
      return { effect: 'deny', reason: 'unparsable', matched: [], message };
    }
    return this.decide([{ operation, path: normalized }]);
  }

  matchingRules(action: PolicyAction): readonly RuleRef[] {
    const candidates = this.byOperation.get(action.operation) ?? [];
    return candidates.filter((rule) => ruleMatches(rule, action)).map((rule) => rule.ref);
  }

  private decideCovered(actions: readonly PolicyAction[]): Decision {
    let best: CompiledRule | undefined;
    let bestAction: PolicyAction | undefined;
    let unmatched: PolicyAction | undefined;
    const matched: CompiledRule[] = [];
    for (const action of actions) {
      const strongest = this.collectMatches(action, matched);
      if (strongest === undefined) unmatched ??= action;
      else if (best === undefined || strongest.strength < best.strength) {
        best = strongest;
        bestAction = action;
      }
    }
    const matchedRefs = matched.sort(byStableOrder).map((rule) => rule.ref);
    const operation = strictestOf(actions);
    // An explicit deny explains itself better than "nothing allowed it", so it wins over no-match.
    if (best === undefined || bestAction === undefined || (unmatched !== undefined && best.ref.effect !== 'deny')) {
      const action = unmatched ?? actions[0]!;
      const message = this.noMatchMessage(action);
      return { effect: 'deny', reason: 'no-match', matched: matchedRefs, message, action, operation };
    }
    const rule = best.ref;
    const message = this.ruleMessage(rule, bestAction);
    return { effect: rule.effect, reason: 'rule', rule, matched: matchedRefs, message, action: bestAction, operation };
  }

  /** Adds every rule matching `action` to `matched` (once) and returns the strongest of them. */
  private collectMatches(action: PolicyAction, matched: CompiledRule[]): CompiledRule | undefined {
    const candidates = this.byOperation.get(action.operation);
    if (candidates === undefined) return undefined;
    let strongest: CompiledRule | undefined;
    for (const rule of candidates) {
      if (!ruleMatches(rule, action)) continue;
      strongest ??= rule; // candidates are strongest first
      if (!matched.includes(rule)) matched.push(rule);
    }
    return strongest;
  }

  private noPolicy(operation: SqlOperation | undefined): Decision {
    const message =
      `no AccessPolicy in namespace ${this.namespace} gives identity ${this.identity} access to resource ${this.resource}`;
    return { effect: 'deny', reason: 'no-policy', matched: [], message, ...(operation === undefined ? {} : { operation }) };
  }

  private noMatchMessage(action: PolicyAction): string {
    return `no rule allows ${describeAction(action)} for identity ${this.identity}`;
  }

  private ruleMessage(rule: RuleRef, action: PolicyAction): string {
    const what = `${describeAction(action)} for identity ${this.identity}`;
    switch (rule.effect) {
      case 'deny':
        return rule.message ?? `rule ${rule.id} denies ${what}`;
      case 'require-approval':
        return rule.message ?? `rule ${rule.id} requires approval for ${what}`;
      case 'allow':
        return `rule ${rule.id} allows ${what}`;
    }
  }
}

function byStableOrder(a: CompiledRule, b: CompiledRule): number {
  return compareNames(a.ref.policy, b.ref.policy) || a.ref.index - b.ref.index;
}

function strictestOf(actions: readonly PolicyAction[]): SqlOperation | undefined {
  let best: SqlOperation | undefined;
  for (const action of actions) {
    if (best === undefined || strictness(action.operation) > strictness(best)) best = action.operation;
  }
  return best;
}

/** Per operation, the rules that name it, keeping the strongest-first order of `compiled`. */
function indexByOperation(compiled: readonly CompiledRule[]): Map<SqlOperation, CompiledRule[]> {
  const index = new Map<SqlOperation, CompiledRule[]>(SQL_OPERATIONS.map((operation) => [operation, []]));
  for (const rule of compiled) {
    for (const operation of rule.operations) index.get(operation)?.push(rule);
  }
  return index;
}
