// Policy tests (`gatehouse policy test`, like `kyverno test` / `opa test`): PolicyTest documents in
// the config folder list cases — an identity, a resource, a SQL statement or HTTP request, and the
// expected decision — that are checked against the real policy engine. This module validates the
// documents (problems carry file, line and field path) and runs the valid cases.
import { isGatehouseError, type ErrorCode, type ErrorDetails } from '../errors.js';
import { EFFECTS, type Effect, type NonHumanIdentity, type ProtectedResource } from '../kinds/kinds.js';
import { namespaceOf, problemAt, type ConfigProblem, type GatehouseConfig, type PolicyTestDocument } from '../manifests/config.js';
import { isSqlOperation, SQL_OPERATIONS, type SqlOperation } from '../sql/operations.js';
import { compilePolicies, type CompiledPolicySet, type StatementClassifier } from './compile.js';
import { ruleId, type Decision, type DecisionReason } from './decision.js';

export type PolicyTestInput =
  | { readonly statement: string }
  | { readonly request: { readonly method: string; readonly path: string } };

export interface PolicyTestExpectation {
  readonly decision: Effect;
  /** Deciding rule as `policy/name`; when set, the decision must come from exactly this rule. */
  readonly rule?: string;
  /** Strictest operation of the input; when set, it must match. */
  readonly operation?: SqlOperation;
}

export interface PolicyTestCase {
  /** metadata.name of the PolicyTest document. */
  readonly test: string;
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly resource: string;
  readonly input: PolicyTestInput;
  readonly expect: PolicyTestExpectation;
  readonly file: string;
  readonly line: number;
}

export interface PolicyTestOutcome {
  readonly decision: Effect;
  readonly reason: DecisionReason;
  readonly rule?: string;
  readonly operation?: SqlOperation;
  readonly message: string;
}

export interface PolicyTestResult {
  readonly test: string;
  readonly namespace: string;
  readonly case: string;
  readonly identity: string;
  readonly resource: string;
  readonly input: PolicyTestInput;
  readonly expected: PolicyTestExpectation;
  readonly got: PolicyTestOutcome;
  readonly pass: boolean;
  readonly file: string;
  readonly line: number;
}

export interface PolicyTestReport {
  readonly results: readonly PolicyTestResult[];
  /** Invalid documents and cases; their cases are not run. */
  readonly problems: readonly ConfigProblem[];
  readonly passed: number;
  readonly failed: number;
}

const CASE_FIELDS = ['name', 'identity', 'resource', 'statement', 'request', 'expect'] as const;
const REQUEST_FIELDS = ['method', 'path'] as const;
const EXPECT_FIELDS = ['decision', 'rule', 'operation'] as const;
const SQL_PROTOCOLS: ReadonlySet<string> = new Set(['postgres', 'mysql']);
const HTTP_PROTOCOLS: ReadonlySet<string> = new Set(['http', 'kubernetes']);

type FieldPath = readonly (string | number)[];
type Fields = Record<string, unknown>;

function isFields(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The input as one line: the statement, or `METHOD /path`. */
export function describeInput(input: PolicyTestInput): string {
  return 'statement' in input ? input.statement : `${input.request.method} ${input.request.path}`;
}

// ── validation ──────────────────────────────────────────────────────────────────────────────────

/** Lookups a case is checked against: objects by `namespace/name`, rule ids by namespace. */
class ConfigIndex {
  readonly identities = new Map<string, NonHumanIdentity>();
  readonly resources = new Map<string, ProtectedResource>();
  private readonly ruleIds = new Set<string>();

  constructor(config: GatehouseConfig) {
    for (const identity of config.identities) this.identities.set(keyOf(namespaceOf(identity), identity.metadata.name), identity);
    for (const resource of config.resources) this.resources.set(keyOf(namespaceOf(resource), resource.metadata.name), resource);
    for (const policy of config.policies) {
      policy.spec.rules.forEach((rule, index) => {
        this.ruleIds.add(keyOf(namespaceOf(policy), ruleId(policy.metadata.name, rule.name ?? `rules[${index}]`)));
      });
    }
  }

  hasRule(namespace: string, id: string): boolean {
    return this.ruleIds.has(keyOf(namespace, id));
  }
}

function keyOf(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Reads one PolicyTest document, collecting problems instead of stopping at the first. */
class TestDocumentReader {
  readonly problems: ConfigProblem[] = [];
  readonly namespace: string;

  constructor(
    private readonly config: GatehouseConfig,
    private readonly index: ConfigIndex,
    readonly document: PolicyTestDocument,
  ) {
    this.namespace = namespaceOf(document);
  }

  report(path: FieldPath, code: ErrorCode, details: ErrorDetails): void {
    this.problems.push(problemAt(this.config, this.document, path, code, details));
  }

  invalid(path: FieldPath, detail: string): void {
    this.report(path, 'GH_ERR_POLICY_TEST_FILE', { detail });
  }

  readCases(): PolicyTestCase[] {
    const spec = this.document.spec;
    if (!isFields(spec)) {
      this.invalid(['spec'], '`spec` must be a mapping with a `cases` list');
      return [];
    }
    this.checkFields(spec, ['cases'], ['spec']);
    if (!Array.isArray(spec.cases) || spec.cases.length === 0) {
      this.invalid(['spec', 'cases'], '`spec.cases` must list at least one case');
      return [];
    }
    const cases = spec.cases.map((raw, index) => this.readCase(raw, ['spec', 'cases', index]));
    this.checkUniqueNames(cases);
    return cases.filter((one): one is PolicyTestCase => one !== undefined);
  }

  private readCase(raw: unknown, path: FieldPath): PolicyTestCase | undefined {
    if (!isFields(raw)) {
      this.invalid(path, 'a case must be a mapping with name, identity, resource, statement or request, and expect');
      return undefined;
    }
    const before = this.problems.length;
    this.checkFields(raw, CASE_FIELDS, path);
    const name = this.requiredString(raw, 'name', path);
    const identity = this.readIdentity(raw, path);
    const resource = this.readResource(raw, path);
    const input = this.readInput(raw, path, resource);
    const expect = this.readExpectation(raw.expect, [...path, 'expect']);
    if (this.problems.length > before || name === undefined || identity === undefined || resource === undefined) return undefined;
    if (input === undefined || expect === undefined) return undefined;
    const source = this.config.sourceOf(this.document);
    return {
      test: this.document.metadata.name,
      namespace: this.namespace,
      name,
      identity: identity.metadata.name,
      resource: resource.metadata.name,
      input,
      expect,
      file: source?.file ?? '<unknown>',
      line: source?.lineOf(path) ?? 0,
    };
  }

  private readIdentity(raw: Fields, path: FieldPath): NonHumanIdentity | undefined {
    const name = this.requiredString(raw, 'identity', path);
    if (name === undefined) return undefined;
    const identity = this.index.identities.get(keyOf(this.namespace, name));
    if (!identity) {
      this.report([...path, 'identity'], 'GH_ERR_POLICY_TEST_REF', { kind: 'NonHumanIdentity', name: `${this.namespace}/${name}` });
    }
    return identity;
  }

  private readResource(raw: Fields, path: FieldPath): ProtectedResource | undefined {
    const name = this.requiredString(raw, 'resource', path);
    if (name === undefined) return undefined;
    const resource = this.index.resources.get(keyOf(this.namespace, name));
    if (!resource) {
      this.report([...path, 'resource'], 'GH_ERR_POLICY_TEST_REF', { kind: 'ProtectedResource', name: `${this.namespace}/${name}` });
    }
    return resource;
  }

  private readInput(raw: Fields, path: FieldPath, resource: ProtectedResource | undefined): PolicyTestInput | undefined {
    const hasStatement = raw.statement !== undefined;
    const hasRequest = raw.request !== undefined;
    if (hasStatement && hasRequest) {
      this.invalid(path, 'set either `statement` (SQL resources) or `request` (HTTP resources), not both');
      return undefined;
    }
    if (!hasStatement && !hasRequest) {
      this.invalid(path, 'set `statement` (SQL resources) or `request` (HTTP resources)');
      return undefined;
    }
    const input = hasStatement ? this.readStatement(raw, path) : this.readRequest(raw.request, [...path, 'request']);
    if (input !== undefined && resource !== undefined) this.checkProtocol(input, resource, path);
    return input;
  }

  private readStatement(raw: Fields, path: FieldPath): PolicyTestInput | undefined {
    const statement = this.requiredString(raw, 'statement', path);
    return statement === undefined ? undefined : { statement };
  }

  private readRequest(raw: unknown, path: FieldPath): PolicyTestInput | undefined {
    if (!isFields(raw)) {
      this.invalid(path, '`request` must be a mapping like {method: GET, path: /v1/invoices}');
      return undefined;
    }
    this.checkFields(raw, REQUEST_FIELDS, path);
    const method = this.requiredString(raw, 'method', path);
    const target = this.requiredString(raw, 'path', path);
    if (target !== undefined && !target.startsWith('/')) this.invalid([...path, 'path'], '`request.path` must start with /');
    return method === undefined || target === undefined ? undefined : { request: { method, path: target } };
  }

  private checkProtocol(input: PolicyTestInput, resource: ProtectedResource, path: FieldPath): void {
    const protocol = resource.spec.protocol;
    if ('statement' in input && !SQL_PROTOCOLS.has(protocol)) {
      this.invalid([...path, 'statement'], `resource ${resource.metadata.name} speaks ${protocol}, not SQL; use \`request\``);
    }
    if ('request' in input && !HTTP_PROTOCOLS.has(protocol)) {
      this.invalid([...path, 'request'], `resource ${resource.metadata.name} speaks ${protocol}, not HTTP; use \`statement\``);
    }
  }

  private readExpectation(raw: unknown, path: FieldPath): PolicyTestExpectation | undefined {
    if (!isFields(raw)) {
      this.invalid(path, '`expect` is required: a mapping like {decision: allow, rule: POLICY/RULE, operation: read}');
      return undefined;
    }
    this.checkFields(raw, EXPECT_FIELDS, path);
    const decision = this.readDecision(raw.decision, [...path, 'decision']);
    const rule = this.readRule(raw.rule, [...path, 'rule']);
    const operation = this.readOperation(raw.operation, [...path, 'operation']);
    if (decision === undefined || rule === null || operation === null) return undefined;
    return { decision, ...(rule === undefined ? {} : { rule }), ...(operation === undefined ? {} : { operation }) };
  }

  private readDecision(raw: unknown, path: FieldPath): Effect | undefined {
    if (typeof raw === 'string' && (EFFECTS as readonly string[]).includes(raw)) return raw as Effect;
    this.invalid(path, `\`expect.decision\` must be one of ${EFFECTS.join(', ')}`);
    return undefined;
  }

  /** undefined: not set; null: set but invalid. */
  private readRule(raw: unknown, path: FieldPath): string | undefined | null {
    if (raw === undefined) return undefined;
    if (typeof raw !== 'string' || !raw.includes('/')) {
      this.invalid(path, '`expect.rule` must be a rule id POLICY/RULE (RULE is the rule name, or rules[INDEX] when unnamed)');
      return null;
    }
    if (!this.index.hasRule(this.namespace, raw)) {
      this.report(path, 'GH_ERR_POLICY_TEST_REF', { kind: 'rule', name: raw });
      return null;
    }
    return raw;
  }

  /** undefined: not set; null: set but invalid. */
  private readOperation(raw: unknown, path: FieldPath): SqlOperation | undefined | null {
    if (raw === undefined) return undefined;
    if (typeof raw === 'string' && isSqlOperation(raw)) return raw;
    this.invalid(path, `\`expect.operation\` must be one of ${SQL_OPERATIONS.join(', ')}`);
    return null;
  }

  private requiredString(raw: Fields, field: string, path: FieldPath): string | undefined {
    const value = raw[field];
    if (typeof value === 'string' && value.trim() !== '') return value;
    this.invalid([...path, field], `\`${field}\` is required and must be a non-empty string`);
    return undefined;
  }

  private checkFields(raw: Fields, allowed: readonly string[], path: FieldPath): void {
    for (const field of Object.keys(raw)) {
      if (!allowed.includes(field)) this.invalid([...path, field], `unknown field \`${field}\` (allowed: ${allowed.join(', ')})`);
    }
  }

  private checkUniqueNames(cases: readonly (PolicyTestCase | undefined)[]): void {
    const seen = new Set<string>();
    cases.forEach((one, index) => {
      if (one === undefined) return;
      if (seen.has(one.name)) {
        this.invalid(['spec', 'cases', index, 'name'], `case name ${JSON.stringify(one.name)} is used twice in this test`);
      }
      seen.add(one.name);
    });
  }
}

/** Validates every PolicyTest document in the config: the runnable cases, and problems for the rest. */
export function readPolicyTests(config: GatehouseConfig): { cases: PolicyTestCase[]; problems: ConfigProblem[] } {
  return readWithIndex(config, new ConfigIndex(config));
}

function readWithIndex(config: GatehouseConfig, index: ConfigIndex): { cases: PolicyTestCase[]; problems: ConfigProblem[] } {
  const cases: PolicyTestCase[] = [];
  const problems: ConfigProblem[] = [];
  for (const document of config.policyTests) {
    const reader = new TestDocumentReader(config, index, document);
    cases.push(...reader.readCases());
    problems.push(...reader.problems);
  }
  return { cases, problems };
}

// ── running ─────────────────────────────────────────────────────────────────────────────────────

/** Compiles each (identity, resource) pair once, however many cases use it. */
class PolicySetCache {
  private readonly sets = new Map<string, CompiledPolicySet>();

  constructor(
    private readonly config: GatehouseConfig,
    private readonly index: ConfigIndex,
  ) {}

  get(testCase: PolicyTestCase): CompiledPolicySet {
    const key = `${testCase.namespace}/${testCase.identity}/${testCase.resource}`;
    let set = this.sets.get(key);
    if (!set) {
      set = compilePolicies({
        policies: this.config.policies,
        identity: this.index.identities.get(keyOf(testCase.namespace, testCase.identity))!,
        resource: this.index.resources.get(keyOf(testCase.namespace, testCase.resource))!,
      });
      this.sets.set(key, set);
    }
    return set;
  }
}

function outcomeOf(decision: Decision): PolicyTestOutcome {
  return {
    decision: decision.effect,
    reason: decision.reason,
    ...(decision.rule ? { rule: decision.rule.id } : {}),
    ...(decision.operation ? { operation: decision.operation } : {}),
    message: decision.message,
  };
}

/** A case passes when the decision matches, and the rule and operation too when the case names them. */
export function outcomeMatches(expected: PolicyTestExpectation, got: PolicyTestOutcome): boolean {
  if (expected.decision !== got.decision) return false;
  if (expected.rule !== undefined && expected.rule !== got.rule) return false;
  return expected.operation === undefined || expected.operation === got.operation;
}

function decideCase(set: CompiledPolicySet, testCase: PolicyTestCase, classifier: StatementClassifier): Decision {
  const input = testCase.input;
  if ('statement' in input) return set.decideSql(input.statement, classifier);
  return set.decideHttp(input.request.method, input.request.path);
}

function resultOf(testCase: PolicyTestCase, got: PolicyTestOutcome): PolicyTestResult {
  return {
    test: testCase.test,
    namespace: testCase.namespace,
    case: testCase.name,
    identity: testCase.identity,
    resource: testCase.resource,
    input: testCase.input,
    expected: testCase.expect,
    got,
    pass: outcomeMatches(testCase.expect, got),
    file: testCase.file,
    line: testCase.line,
  };
}

/** A policy that cannot compile (a bad glob) makes the cases that need it invalid, not failed. */
function compileProblem(testCase: PolicyTestCase, error: unknown): ConfigProblem | undefined {
  if (!isGatehouseError(error)) return undefined;
  return {
    code: error.code,
    message: error.message,
    file: testCase.file,
    line: testCase.line,
    kind: 'PolicyTest',
    name: testCase.test,
    namespace: testCase.namespace,
    path: '',
  };
}

/** Validates and runs every policy test in `config`. The classifier must be ready (loadSqlParser). */
export function runPolicyTests(config: GatehouseConfig, classifier: StatementClassifier): PolicyTestReport {
  const index = new ConfigIndex(config);
  const { cases, problems } = readWithIndex(config, index);
  const sets = new PolicySetCache(config, index);
  const results: PolicyTestResult[] = [];
  for (const testCase of cases) {
    let decision: Decision;
    try {
      decision = decideCase(sets.get(testCase), testCase, classifier);
    } catch (error) {
      const problem = compileProblem(testCase, error);
      if (!problem) throw error;
      problems.push(problem);
      continue;
    }
    results.push(resultOf(testCase, outcomeOf(decision)));
  }
  const passed = results.filter((result) => result.pass).length;
  return { results, problems, passed, failed: results.length - passed };
}
