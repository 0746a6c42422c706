// Compiles masking rules into what applies to one result column: the strategy the column rules ask
// for (`columns: [email, customers.card_number, *_token]`) and the detectors to scan its values
// with (`detectors: [credit-card]`). Rules combine order-independently: when several apply, the
// strongest strategy wins (redact > hash > partial).
//
// Matching fails closed in two ways. Names compare case-insensitively, as PostgreSQL folds unquoted
// identifiers, so a rule for `email` also masks a quoted "Email". And a `table.column` rule masks a
// column of that name whenever the source table is unknown (an expression, a function result, a
// table OID the proxy could not resolve): a column we cannot place is treated as if it came from the
// table the rule protects. A computed column is matched through what it is computed from
// (`derivedFrom`), so `upper(email)` is masked by a rule for `email`.
import { GatehouseError } from '../../api/errors.js';
import type { MaskingRuleT } from '../../api/kinds/kinds.js';
import { parseColumnGlob } from '../../api/policy/glob.js';
import type { QualifiedName } from '../../api/sql/operations.js';
import type { SourceColumn } from '../../api/sql/output-lineage.js';
import { isDetectorName, type DetectorName } from './detectors.js';
import { isMaskingStrategy, isStronger, strongest, type MaskingStrategy } from './strategies.js';

/** A column of a result set, as the protocol describes it. */
export interface ResultColumn {
  /** The name the client sees (after `AS` aliasing). */
  readonly name: string;
  /**
   * The column's name in its source table, when the proxy resolved it (PostgreSQL: table OID and
   * attribute number). Rules match it as well as `name`, so `SELECT card_number AS x` is still masked.
   */
  readonly sourceName?: string;
  /** The source table, when known; undefined for expressions or an unresolved table OID. */
  readonly table?: QualifiedName;
  /** The value's type (PostgreSQL type OID), when known: lets planning skip types no detector can match. */
  readonly typeOid?: number;
  /**
   * For a computed column (no source table): the columns its value is computed from, as the
   * statement names them (api/sql/output-lineage.ts). A rule naming any of them masks the column.
   */
  readonly derivedFrom?: ColumnLineage;
}

/**
 * What a computed result column is computed from; `unknown` when the statement does not say (FETCH,
 * EXECUTE, a built-in reading a table it does not name, a statistics view's sampled values).
 */
export interface ColumnLineage {
  readonly sources: readonly SourceColumn[];
  /** Relations a whole row of which is in the value: any column rule for them applies. */
  readonly wholeRows: readonly string[];
  readonly unknown?: boolean;
  /**
   * Functions whose results are in the value, by name, for the catalog to resolve into what they read
   * (column-catalog.ts); one still here when a column is matched counts as possibly any column.
   */
  readonly functions?: readonly string[];
}

/** One detector to scan with, and the strategy for what it finds. */
export interface DetectorBinding {
  readonly detector: DetectorName;
  readonly strategy: MaskingStrategy;
}

export interface ColumnRuleMatch {
  /** Strongest strategy of the column rules naming this column; undefined when none does. */
  readonly strategy: MaskingStrategy | undefined;
  /** Detectors that scan every column, each with the strongest strategy any rule gives it. */
  readonly detectors: readonly DetectorBinding[];
}

export interface ColumnMatcher {
  match(column: ResultColumn): ColumnRuleMatch;
  /** The detector bindings, the same for every column (detector rules are not scoped to columns). */
  readonly detectors: readonly DetectorBinding[];
  /** Whether any rule masks by column name. */
  readonly hasColumnRules: boolean;
  /** Every strategy some rule uses, so a hash rule without a key is caught when compiling. */
  readonly strategies: ReadonlySet<MaskingStrategy>;
}

// ── column globs ────────────────────────────────────────────────────────────────────────────────

type NameTest = (lowerCaseName: string) => boolean;

/**
 * `*` matches any run of characters, `?` one. Iterative with a single backtrack point (the last
 * star), so it runs in O(pattern × name) at worst — column names are at most 63 bytes.
 */
function wildcardMatch(pattern: string, name: string): boolean {
  let p = 0;
  let n = 0;
  let starP = -1;
  let starN = 0;
  while (n < name.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === name[n])) {
      p++;
      n++;
    } else if (p < pattern.length && pattern[p] === '*') {
      starP = p++;
      starN = n;
    } else if (starP !== -1) {
      p = starP + 1;
      n = ++starN;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

function compileNameTest(part: string): NameTest {
  const pattern = part.toLowerCase();
  if (pattern === '*') return () => true;
  if (!pattern.includes('*') && !pattern.includes('?')) return (name) => name === pattern;
  return (name) => wildcardMatch(pattern, name);
}

export type ColumnTest = (column: ResultColumn) => boolean;

/** `column` or `table.column`, with `*` and `?` wildcards; case-insensitive. */
export function compileColumnGlob(glob: string): ColumnTest {
  // The grammar is the validator's (one definition); matching, case-insensitive, is the masker's.
  const parts = parseColumnGlob(glob);
  const matchesColumn = compileNameTest(parts.column);
  const matchesTable = parts.table === undefined ? undefined : compileNameTest(parts.table);
  const matchesTableOf = (table: string | undefined) => matchesTable === undefined || table === undefined || matchesTable(table.toLowerCase());
  return (column) => {
    const named =
      matchesColumn(column.name.toLowerCase()) ||
      (column.sourceName !== undefined && matchesColumn(column.sourceName.toLowerCase()));
    // Unknown table: fail closed (see the module comment).
    if (named && matchesTableOf(column.table?.name)) return true;
    const lineage = column.derivedFrom;
    if (lineage === undefined) return false;
    // A computed column the statement does not explain could be any column.
    if (lineage.unknown === true || (lineage.functions !== undefined && lineage.functions.length > 0)) return true;
    return lineage.sources.some((source) => matchesColumn(source.column.toLowerCase()) && matchesTableOf(source.table))
      || lineage.wholeRows.some((relation) => matchesTableOf(relation));
  };
}

// ── rules ───────────────────────────────────────────────────────────────────────────────────────

interface ColumnRule {
  readonly test: ColumnTest;
  readonly strategy: MaskingStrategy;
}

function ruleStrategy(rule: MaskingRuleT, index: number): MaskingStrategy {
  const strategy = rule.strategy ?? 'redact';
  if (!isMaskingStrategy(strategy)) {
    throw new GatehouseError('GH_ERR_MASKING_RULE', { index, detail: `unknown strategy ${JSON.stringify(strategy)}` });
  }
  return strategy;
}

function ruleDetectors(rule: MaskingRuleT, index: number): DetectorName[] {
  return (rule.detectors ?? []).map((name) => {
    // A misspelt detector silently scanning nothing would fail open: refuse the rule instead.
    if (!isDetectorName(name)) throw new GatehouseError('GH_ERR_MASKING_RULE', { index, detail: `unknown detector ${JSON.stringify(name)}` });
    return name;
  });
}

function bindDetectors(rules: readonly MaskingRuleT[]): DetectorBinding[] {
  const strongestByDetector = new Map<DetectorName, MaskingStrategy>();
  rules.forEach((rule, index) => {
    const strategy = ruleStrategy(rule, index);
    for (const detector of ruleDetectors(rule, index)) {
      strongestByDetector.set(detector, strongest(strongestByDetector.get(detector), strategy));
    }
  });
  return [...strongestByDetector].map(([detector, strategy]) => ({ detector, strategy }));
}

/**
 * Compiles the masking rules of every policy that applies to a session. A rule with both `columns`
 * and `detectors` does both: it masks the named columns whole, and masks detected values in every
 * column — the reading of the API field descriptions that masks more.
 */
export function compileMaskingRules(rules: readonly MaskingRuleT[]): ColumnMatcher {
  const columnRules: ColumnRule[] = rules.flatMap((rule, index) =>
    (rule.columns ?? []).map((glob) => ({ test: compileColumnGlob(glob), strategy: ruleStrategy(rule, index) })),
  );
  const detectors = bindDetectors(rules);
  const strategies = new Set<MaskingStrategy>([
    ...columnRules.map((rule) => rule.strategy),
    ...detectors.map((binding) => binding.strategy),
  ]);
  return {
    detectors,
    hasColumnRules: columnRules.length > 0,
    strategies,
    match(column) {
      let strategy: MaskingStrategy | undefined;
      for (const rule of columnRules) {
        if (isStronger(rule.strategy, strategy) && rule.test(column)) strategy = rule.strategy;
      }
      return { strategy, detectors };
    },
  };
}
