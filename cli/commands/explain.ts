// `gatehouse explain`: shows how Gatehouse sees one SQL statement or HTTP request from one identity
// on one resource — the classification, the policies selected, every rule that matched each action
// and the decision — so policy authors can see why something is allowed, held or denied.
import { parseArgs } from 'node:util';
import { GatehouseError } from '../../api/errors.js';
import type { NonHumanIdentity, ProtectedResource } from '../../api/kinds/kinds.js';
import { namespaceOf, type GatehouseConfig } from '../../api/manifests/config.js';
import { compilePolicies, type CompiledPolicySet } from '../../api/policy/compile.js';
import { describeAction, type Decision, type PolicyAction, type RuleRef } from '../../api/policy/decision.js';
import { httpOperation, normalizeHttpPath } from '../../api/policy/http.js';
import { loadSqlParser, SqlClassifier } from '../../api/sql/classify.js';
import type { SqlOperation } from '../../api/sql/operations.js';
import type { OutputLineage } from '../../api/sql/output-lineage.js';
import { compileMaskingRules, type ColumnLineage, type ColumnMatcher } from '../../sidecar/masking/column-matcher.js';
import type { MaskingStrategy } from '../../sidecar/masking/strategies.js';
import { loadConfigFolder } from '../config-folder.js';
import type { CliCommand, CliIO } from '../io.js';

const USAGE =
  'gatehouse explain --config DIR --identity NAME --resource NAME [--namespace NS] [--json] ("SQL" | --request "METHOD /path")';
const SQL_PROTOCOLS: ReadonlySet<string> = new Set(['postgres', 'mysql']);
const HTTP_PROTOCOLS: ReadonlySet<string> = new Set(['http', 'kubernetes']);

export type ExplainInput = { readonly statement: string } | { readonly request: { readonly method: string; readonly path: string } };

export interface ExplainedAction {
  readonly action: PolicyAction;
  /** Every rule matching this action, strongest first. */
  readonly rules: readonly RuleRef[];
}

/** One entry of a statement's result list and the column rule masking it, as the sidecar would apply it. */
export interface ExplainedColumn {
  /** `*` or `t.*`: several columns; table columns among them are masked by their catalog names. */
  readonly star: boolean;
  /** `table.column` (or `column` when its table is unknown) and `whole row of table`. */
  readonly from: readonly string[];
  /** The strongest column rule's strategy; absent when no column rule names a source. */
  readonly masking?: MaskingStrategy;
}

export type ExplainedResults =
  | { readonly known: true; readonly columns: readonly ExplainedColumn[] }
  /** FETCH, or EXECUTE of a statement prepared elsewhere: every computed column counts as any column. */
  | { readonly known: false; readonly masking?: MaskingStrategy };

export interface ExplainedStatement {
  readonly text: string;
  /** PostgreSQL command tag, or the HTTP method. */
  readonly command: string;
  readonly operation: SqlOperation;
  readonly actions: readonly ExplainedAction[];
  /** For a statement that returns rows: what each result column is computed from, and its masking. */
  readonly results?: ExplainedResults;
}

export interface Explanation {
  readonly namespace: string;
  readonly identity: { readonly name: string; readonly groups: readonly string[] };
  readonly resource: { readonly name: string; readonly protocol: string };
  readonly input: ExplainInput;
  readonly policies: readonly string[];
  /** Empty when the input could not be classified. */
  readonly statements: readonly ExplainedStatement[];
  readonly decision: Decision;
  /** Value detectors of the selected policies: they scan every result value, whatever its column. */
  readonly detectors: readonly { readonly detector: string; readonly strategy: MaskingStrategy }[];
}

export interface ExplainOptions {
  readonly config: string;
  readonly identity: string;
  readonly resource: string;
  readonly namespace?: string;
  readonly json: boolean;
  readonly input: ExplainInput;
}

function usageError(detail: string): GatehouseError {
  return new GatehouseError('GH_ERR_USAGE', { detail: `${detail}; usage: ${USAGE}` });
}

function parseRequest(text: string): ExplainInput {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 2) throw usageError(`--request takes "METHOD /path", got ${JSON.stringify(text)}`);
  return { request: { method: parts[0]!.toUpperCase(), path: parts[1]! } };
}

function parseOptions(args: string[]): ExplainOptions {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      identity: { type: 'string' },
      resource: { type: 'string' },
      namespace: { type: 'string' },
      request: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const { config, identity, resource } = values;
  if (config === undefined || identity === undefined || resource === undefined) {
    throw usageError('explain needs --config, --identity and --resource');
  }
  // Several positionals are one statement the shell split: `explain ... SELECT 1` works unquoted.
  const sql = positionals.join(' ').trim();
  if (sql !== '' && values.request !== undefined) throw usageError('pass either a SQL statement or --request, not both');
  if (sql === '' && values.request === undefined) throw usageError('pass a SQL statement or --request "METHOD /path"');
  const input = values.request === undefined ? { statement: sql } : parseRequest(values.request);
  return { config, identity, resource, json: values.json === true, input, ...(values.namespace ? { namespace: values.namespace } : {}) };
}

// ── finding the identity and resource ───────────────────────────────────────────────────────────

/** The identity's namespace: --namespace, else the only namespace holding an identity of that name. */
function resolveNamespace(config: GatehouseConfig, options: ExplainOptions): string {
  if (options.namespace !== undefined) return options.namespace;
  const namespaces = [...new Set(config.identities.filter((one) => one.metadata.name === options.identity).map(namespaceOf))].sort();
  if (namespaces.length > 1) {
    const details = { kind: 'NonHumanIdentity', name: options.identity, namespaces: namespaces.join(', ') };
    throw new GatehouseError('GH_ERR_NAMESPACE_AMBIGUOUS', details);
  }
  return namespaces[0] ?? 'default';
}

function findIdentity(config: GatehouseConfig, namespace: string, name: string): NonHumanIdentity {
  const identity = config.identities.find((one) => one.metadata.name === name && namespaceOf(one) === namespace);
  if (!identity) throw new GatehouseError('GH_ERR_REF_UNKNOWN_IDENTITY', { name, namespace });
  return identity;
}

function findResource(config: GatehouseConfig, namespace: string, name: string): ProtectedResource {
  const resource = config.resources.find((one) => one.metadata.name === name && namespaceOf(one) === namespace);
  if (!resource) throw new GatehouseError('GH_ERR_REF_UNKNOWN_RESOURCE', { name, namespace });
  return resource;
}

function checkProtocol(input: ExplainInput, resource: ProtectedResource): void {
  const { protocol } = resource.spec;
  if ('statement' in input && !SQL_PROTOCOLS.has(protocol)) {
    throw usageError(`resource ${resource.metadata.name} speaks ${protocol}, not SQL; pass --request "METHOD /path"`);
  }
  if ('request' in input && !HTTP_PROTOCOLS.has(protocol)) {
    throw usageError(`resource ${resource.metadata.name} speaks ${protocol}, not HTTP; pass a SQL statement`);
  }
}

// ── explaining ──────────────────────────────────────────────────────────────────────────────────

function explainActions(set: CompiledPolicySet, actions: readonly PolicyAction[]): ExplainedAction[] {
  return actions.map((action) => ({ action, rules: set.matchingRules(action) }));
}

async function explainStatement(set: CompiledPolicySet, text: string): Promise<Pick<Explanation, 'statements' | 'decision'>> {
  await loadSqlParser();
  const { classification, ...decision } = set.decideSql(text, new SqlClassifier({}));
  const matcher = compileMaskingRules(set.masking);
  const statements = (classification?.statements ?? []).map((statement) => ({
    text: statement.text,
    command: statement.command,
    operation: statement.operation,
    actions: explainActions(set, statement.accesses),
    ...(statement.outputs ? { results: explainResults(matcher, statement.outputs) } : {}),
  }));
  return { statements, decision };
}

/** Masking of each result column: a computed one through its sources, as the sidecar does; a table column by the same names. */
function explainResults(matcher: ColumnMatcher, lineage: OutputLineage): ExplainedResults {
  const strategyOf = (derivedFrom: ColumnLineage) => matcher.match({ name: '', derivedFrom }).strategy;
  if (lineage.kind === 'unknown') {
    const masking = strategyOf({ sources: [], wholeRows: [], unknown: true });
    return { known: false, ...(masking ? { masking } : {}) };
  }
  return {
    known: true,
    columns: lineage.columns.map((column) => {
      const masking = strategyOf(column);
      const from = [
        ...column.sources.map((source) => (source.table === undefined ? source.column : `${source.table}.${source.column}`)),
        ...column.wholeRows.map((relation) => `whole row of ${relation}`),
      ];
      return { star: column.star, from, ...(masking ? { masking } : {}) };
    }),
  };
}

function explainRequest(set: CompiledPolicySet, method: string, path: string): Pick<Explanation, 'statements' | 'decision'> {
  const decision = set.decideHttp(method, path);
  const operation = httpOperation(method);
  const normalized = normalizeHttpPath(path);
  if (operation === undefined || normalized === undefined) return { statements: [], decision };
  const actions = explainActions(set, [{ operation, path: normalized }]);
  return { statements: [{ text: `${method} ${path}`, command: method, operation, actions }], decision };
}

export async function explain(config: GatehouseConfig, options: ExplainOptions): Promise<Explanation> {
  const namespace = resolveNamespace(config, options);
  const identity = findIdentity(config, namespace, options.identity);
  const resource = findResource(config, namespace, options.resource);
  checkProtocol(options.input, resource);
  const set = compilePolicies({ policies: config.policies, identity, resource });
  const input = options.input;
  const outcome =
    'statement' in input ? await explainStatement(set, input.statement) : explainRequest(set, input.request.method, input.request.path);
  const detectors = 'statement' in input ? compileMaskingRules(set.masking).detectors : [];
  return {
    namespace,
    identity: { name: identity.metadata.name, groups: identity.spec.groups ?? [] },
    resource: { name: resource.metadata.name, protocol: resource.spec.protocol },
    input,
    policies: set.policies,
    ...outcome,
    detectors,
  };
}

// ── printing ────────────────────────────────────────────────────────────────────────────────────

function ruleList(rules: readonly RuleRef[]): string {
  return rules.length === 0 ? '(no rule matches)' : rules.map((rule) => `${rule.effect} ${rule.id}`).join(', ');
}

function statementLines(statement: ExplainedStatement, index: number): string[] {
  const lines = [`statement ${index + 1}  ${statement.command} → ${statement.operation}`, `  ${statement.text}`];
  const width = Math.max(...statement.actions.map((one) => describeAction(one.action).length));
  for (const { action, rules } of statement.actions) lines.push(`  ${describeAction(action).padEnd(width)}  ${ruleList(rules)}`);
  return [...lines, ...resultLines(statement.results)];
}

function maskedBy(masking: MaskingStrategy | undefined): string {
  return masking ? ` → masked (${masking})` : '';
}

function resultLines(results: ExplainedResults | undefined): string[] {
  if (results === undefined) return [];
  if (!results.known) return [`  result columns  unknown here (FETCH, EXECUTE): each computed column counts as any column${maskedBy(results.masking)}`];
  return results.columns.map((column, index) => {
    const label = column.star ? 'result columns *' : `result column ${index + 1}`;
    const from = column.from.length === 0 ? (column.star ? 'table columns, masked by their own names' : 'no column') : `from ${column.from.join(', ')}`;
    return `  ${label}  ${from}${maskedBy(column.masking)}`;
  });
}

function detectorLines(detectors: Explanation['detectors']): string[] {
  if (detectors.length === 0) return [];
  return [`detectors  ${detectors.map((binding) => `${binding.detector} (${binding.strategy})`).join(', ')} scan every result value`, ''];
}

function matchedLines(decision: Decision): string[] {
  if (decision.matched.length === 0) return ['matched rules  none'];
  return ['matched rules', ...decision.matched.map((rule) => `  ${rule.effect.padEnd(16)} ${rule.id}`)];
}

function approvalLine(rule: RuleRef | undefined): string[] {
  const approval = rule?.approval;
  if (!approval) return [];
  const groups = (approval.approvers.groups ?? []).map((group) => `group ${group}`);
  const users = (approval.approvers.users ?? []).map((user) => `user ${user}`);
  const who = [...groups, ...users].join(', ') || 'none';
  const window = approval.grantWindow ? `, grant window ${approval.grantWindow}` : '';
  // Schema defaults (1 approval, 5m) are applied by the loader; repeated here for objects built in code.
  return [`  approvers: ${who}; ${approval.minApprovals ?? 1} approval(s), timeout ${approval.timeout ?? '5m'}${window}`];
}

function decisionLines(decision: Decision): string[] {
  const by = decision.rule ? `by ${decision.rule.id}` : `(${decision.reason})`;
  return [`decision  ${decision.effect.toUpperCase()} ${by}`, `  ${decision.message}`, ...approvalLine(decision.rule)];
}

export function formatExplanation(explanation: Explanation): string {
  const { identity, resource, namespace } = explanation;
  const groups = identity.groups.length === 0 ? '' : ` (groups: ${identity.groups.join(', ')})`;
  const statements = explanation.statements.flatMap((statement, index) => [...statementLines(statement, index), '']);
  const unclassified = explanation.statements.length === 0 ? ['input could not be classified', ''] : [];
  return [
    `identity  ${namespace}/${identity.name}${groups}`,
    `resource  ${namespace}/${resource.name} (${resource.protocol})`,
    `policies  ${explanation.policies.length === 0 ? 'none' : explanation.policies.join(', ')}`,
    '',
    ...statements,
    ...unclassified,
    ...detectorLines(explanation.detectors),
    ...matchedLines(explanation.decision),
    '',
    ...decisionLines(explanation.decision),
    '',
  ].join('\n');
}

async function runExplain(args: string[], io: CliIO): Promise<number> {
  const options = parseOptions(args);
  const { config, errors } = await loadConfigFolder(options.config, io);
  if (errors.length > 0) {
    if (options.json) io.stdout(`${JSON.stringify({ problems: errors }, null, 2)}\n`);
    return 1;
  }
  const explanation = await explain(config, options);
  io.stdout(options.json ? `${JSON.stringify(explanation, null, 2)}\n` : formatExplanation(explanation));
  return 0;
}

export const explainCommand: CliCommand = {
  path: ['explain'],
  summary: 'show how a SQL statement or HTTP request is classified and which rules decide it (also --namespace NS, --json)',
  // Shorter than USAGE so the `gatehouse --help` table stays readable; errors print the full form.
  usage: 'gatehouse explain --config DIR --identity NAME --resource NAME (SQL | --request "METHOD /path")',
  run: runExplain,
};
