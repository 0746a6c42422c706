// Which columns each column of a statement's result is computed from, read off the parse tree: what
// lets the sidecar mask `card_number || ''`, `upper(email) AS e`, the second branch of a UNION, a
// CTE's or subquery's alias, or a RETURNING expression — results PostgreSQL's RowDescription does
// not tie to a table column (table OID 0), so masking by column could not see them.
//
// Names only, no catalog, failing closed: a reference resolves through the statement's CTEs and
// subqueries by name; one that does not resolve to a derived column stays a column of that name
// (of its table when the reference says which, else of no known table), and the masker then
// treats it like a column of that name. A value that takes a whole row (`row_to_json(t)`, `t.*`
// inside an expression, a bare relation name) names the relation instead, and so does a built-in
// that reads a table by name (`table_to_xml('customers', ...)`). A function the catalog here does
// not know as a built-in is named (`functions`): what its body reads is the sidecar's catalog lookup
// to tell. Where the result's columns cannot be known from the text (FETCH, EXECUTE of a statement
// prepared elsewhere, `database_to_xml`, the statistics catalogs' sampled values), the lineage is
// `unknown` and every computed column counts as possibly any column.
//
// value-flows.ts builds on the same reading for the values a statement writes elsewhere.
import { calledFunction, callEffect, opaqueFunctionName, parseRelationName } from './functions.js';
import { asList, asRecord, asString, constantString, nodeBody, stringItems, unwrapNode, type PgRecord } from './parse-tree.js';

/** A column a result value may be computed from, as the statement names it (lower case). */
export interface SourceColumn {
  /** The table the statement names for it, when it names one; undefined when unknown. */
  readonly table?: string;
  readonly column: string;
}

/** What one entry of a result's target list is computed from. */
export interface OutputColumn {
  /** `*` or `t.*`: stands for as many result columns as its relations have. */
  readonly star: boolean;
  readonly sources: readonly SourceColumn[];
  /** Relations a whole row of which is part of the value (`row_to_json(t)`): any of their columns. */
  readonly wholeRows: readonly string[];
  /**
   * The value may hold any column's values: a built-in that reads a table the text does not name
   * (`database_to_xml`, `table_to_xml($1)`), or a statistics view's sampled values (`pg_stats`).
   */
  readonly unknown?: true;
  /**
   * Functions the statement calls whose bodies it does not show (a user's `card_of(42)`), by lower-case
   * name, whose results are part of the value: what they read is the catalog's to tell.
   */
  readonly functions?: readonly string[];
}

export type OutputLineage =
  | { readonly kind: 'known'; readonly columns: readonly OutputColumn[] }
  | { readonly kind: 'unknown' };

/** A result whose columns come from a prepared statement or cursor the text does not show. */
export const UNKNOWN_LINEAGE: OutputLineage = Object.freeze({ kind: 'unknown' });

/** A relation of a FROM clause (or a CTE), as seen by the references of its query. */
export interface Relation {
  /** The name references use: the alias, or the table's own name. */
  readonly name: string;
  /** For a table: its name; for a derived relation: undefined. */
  readonly table?: string;
  /** For a derived relation (subquery, CTE, function, VALUES): its columns, positionally, with names. */
  readonly columns?: readonly NamedOutput[];
}

/** An entry as this module tracks it: named, and for a `*`, the tables it expands over. */
export interface NamedOutput extends Traced {
  readonly name: string;
}

export interface Traced extends OutputColumn {
  /**
   * The tables whose columns a `*` stands for. At the top level those columns carry their table OIDs;
   * referenced from an enclosing query (`upper(s.card_number)` over `(SELECT * FROM customers) s`)
   * they are that table's columns.
   */
  readonly starTables?: readonly string[];
}

export interface Scope {
  readonly relations: readonly Relation[];
  readonly ctes: ReadonlyMap<string, readonly NamedOutput[]>;
  readonly parent?: Scope;
}

export const EMPTY_SCOPE: Scope = { relations: [], ctes: new Map() };

/**
 * Told what a traversal passes besides result columns (value-flows.ts): calls to functions with
 * effects, data-modifying statements inside WITH. While one watches, the clauses that compute no
 * result column (WHERE, JOIN ... ON, GROUP BY, ORDER BY, ...) are walked too.
 */
export interface TraversalObserver {
  effectfulCall(name: string, args: OutputColumn): void;
  modifyingStatement(type: string, node: PgRecord, scope: Scope): void;
}

let observer: TraversalObserver | undefined;

/**
 * The lineage of a statement's result (a top-level node as the parser returns it), or undefined
 * when the statement returns no rows of its own.
 */
export function outputLineage(type: string, node: PgRecord): OutputLineage | undefined {
  // A statement built to make the analysis explode (nested recursive CTEs re-analysed per level)
  // gets the answer that masks every computed column.
  return traverse(undefined, () => lineageOf(type, node), () => UNKNOWN_LINEAGE);
}

/**
 * Runs `analyse` with a fresh work budget, `watching` told what the traversal passes; what
 * `overBudget` returns when the statement takes more work than any real one.
 */
export function traverse<T>(watching: TraversalObserver | undefined, analyse: () => T, overBudget: () => T): T {
  budget = WORK_BUDGET;
  const outer = observer;
  observer = watching;
  try {
    return analyse();
  } catch (error) {
    if (error === OVER_BUDGET) return overBudget();
    throw error;
  } finally {
    observer = outer;
  }
}

/** Nodes and queries analysed per statement before giving up; real statements need a few hundred. */
const WORK_BUDGET = 50_000;
const OVER_BUDGET = new Error('output lineage: over budget');
let budget = WORK_BUDGET;

function spend(): void {
  if (--budget < 0) throw OVER_BUDGET;
}

function lineageOf(type: string, node: PgRecord): OutputLineage | undefined {
  switch (type) {
    case 'SelectStmt':
      return known(selectOutputs(node, EMPTY_SCOPE));
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'MergeStmt':
      return asList(node.returningList).length === 0 ? undefined : known(returningOutputs(node));
    case 'PrepareStmt': {
      // What a later EXECUTE returns.
      const query = unwrapNode(node.query);
      return query === undefined ? undefined : lineageOf(query[0], query[1]);
    }
    case 'FetchStmt':
    case 'ExecuteStmt':
    // A procedure's OUT parameters come back as a row computed from anything.
    case 'CallStmt':
      return UNKNOWN_LINEAGE;
    default:
      return undefined;
  }
}

function known(columns: readonly OutputColumn[]): OutputLineage {
  return {
    kind: 'known',
    columns: columns.map(({ star, sources, wholeRows, unknown, functions }) => ({ star, sources, wholeRows, ...(unknown ? { unknown } : {}), ...(functions ? { functions } : {}) })),
  };
}

// ── queries ─────────────────────────────────────────────────────────────────────────────────────

export function selectOutputs(select: PgRecord, outer: Scope): NamedOutput[] {
  spend();
  const scope = withCtes(select, outer);
  const op = asString(select.op);
  const ordering = [select.sortClause, select.limitCount, select.limitOffset];
  if (op !== undefined && op !== 'SETOP_NONE') {
    if (observer) sweep(ordering, scope);
    // UNION / INTERSECT / EXCEPT: column i is column i of either side, named as on the left.
    const left = selectOutputs(nodeBody(select.larg) ?? {}, scope);
    const right = selectOutputs(nodeBody(select.rarg) ?? {}, scope);
    if (left.some((column) => column.star) || right.some((column) => column.star) || left.length !== right.length) {
      return [{ name: '?column?', ...merge(true, [...left, ...right]) }];
    }
    return left.map((column, index) => ({ name: column.name, ...merge(false, [column, right[index]!]) }));
  }
  const valuesLists = asList(select.valuesLists);
  if (valuesLists.length > 0) return valuesOutputs(valuesLists, scope);
  const local: Scope = { relations: fromRelations(asList(select.fromClause), scope), ctes: scope.ctes, parent: scope };
  if (observer) sweep([select.whereClause, select.groupClause, select.havingClause, select.windowClause, select.distinctClause, ordering], local);
  return asList(select.targetList).map((target) => targetOutput(target, local));
}

/** Walks clauses that compute no result column, for what the observer is told of. */
export function sweep(clauses: unknown, scope: Scope): void {
  deepColumnRefs(clauses, scope);
}

function returningOutputs(statement: PgRecord): NamedOutput[] {
  const scope = withCtes(statement, EMPTY_SCOPE);
  const target = nodeBody(statement.relation);
  const relations = [
    ...(target ? [tableRelation(target)] : []),
    ...fromRelations([...asList(statement.fromClause), ...asList(statement.usingClause)], scope),
  ];
  // MERGE names its source in sourceRelation.
  const source = statement.sourceRelation;
  if (source !== undefined) relations.push(...fromRelations([source], scope));
  const local: Scope = { relations, ctes: scope.ctes, parent: scope };
  return asList(statement.returningList).map((target) => targetOutput(target, local));
}

function valuesOutputs(lists: readonly unknown[], scope: Scope): NamedOutput[] {
  // Each row is a List node: {List: {items: [...]}}.
  const rows = lists.map((list) => asList(nodeBody(list)?.items));
  const width = Math.max(0, ...rows.map((row) => row.length));
  return Array.from({ length: width }, (_, index) => ({
    name: `column${index + 1}`,
    ...merge(false, rows.map((row) => expressionOutput(row[index], scope))),
  }));
}

/** The scope a query's body sees: its own WITH clause on top of the enclosing query's. */
export function withCtes(statement: PgRecord, outer: Scope): Scope {
  const withClause = nodeBody(statement.withClause);
  const ctes = asList(withClause?.ctes);
  if (ctes.length === 0) return outer;
  const defined = new Map(outer.ctes);
  const scope: Scope = { relations: [], ctes: defined, parent: outer };
  // A recursive CTE reads its own columns: a second pass sees what the first one found (the first
  // sees each as a relation without columns yet).
  const recursive = withClause?.recursive === true;
  if (recursive) {
    for (const item of ctes) {
      const name = asString(nodeBody(item)?.ctename)?.toLowerCase();
      if (name !== undefined) defined.set(name, []);
    }
  }
  const passes = recursive ? 2 : 1;
  for (let pass = 0; pass < passes; pass++) {
    for (const item of ctes) {
      const cte = nodeBody(item);
      const name = asString(cte?.ctename)?.toLowerCase();
      if (!cte || name === undefined) continue;
      const query = unwrapNode(cte.ctequery);
      if (observer && pass === 0 && query !== undefined && query[0] !== 'SelectStmt') observer.modifyingStatement(query[0], query[1], scope);
      const outputs = query === undefined ? [] : statementOutputs(query[0], query[1], scope);
      defined.set(name, renamed(outputs, stringItems(cte.aliascolnames)));
    }
  }
  return scope;
}

/** A CTE's or subquery's statement: a SELECT, or DML with RETURNING (a data-modifying CTE). */
export function statementOutputs(type: string, node: PgRecord, scope: Scope): NamedOutput[] {
  if (type === 'SelectStmt') return selectOutputs(node, scope);
  if (asList(node.returningList).length > 0) return returningOutputs(node);
  return [];
}

function renamed(outputs: readonly NamedOutput[], names: readonly string[]): NamedOutput[] {
  return outputs.map((output, index) => (index < names.length ? { ...output, name: names[index]!.toLowerCase() } : output));
}

// ── FROM ────────────────────────────────────────────────────────────────────────────────────────

export function fromRelations(items: readonly unknown[], scope: Scope): Relation[] {
  const relations: Relation[] = [];
  // LATERAL items see the ones before them; seeing them all is the conservative reading.
  const visible = (): Scope => ({ relations, ctes: scope.ctes, parent: scope });
  for (const item of items) collectRelation(item, visible, relations);
  return relations;
}

function collectRelation(item: unknown, scope: () => Scope, into: Relation[]): void {
  const node = unwrapNode(item);
  if (node === undefined) return;
  const [type, body] = node;
  const alias = aliasOf(body);
  switch (type) {
    case 'RangeVar': {
      const name = asString(body.relname)?.toLowerCase();
      if (name === undefined) return;
      const cte = body.schemaname === undefined ? scope().ctes.get(name) : undefined;
      if (cte) into.push({ name: alias?.name ?? name, columns: renamed(cte, alias?.columns ?? []) });
      else if (alias && alias.columns.length > 0) into.push(renamedRelation(alias.name, alias.columns, [tableRelation(body)]));
      else into.push({ ...tableRelation(body), ...(alias ? { name: alias.name } : {}) });
      return;
    }
    case 'RangeSubselect': {
      const query = unwrapNode(body.subquery);
      const outputs = query === undefined ? [] : statementOutputs(query[0], query[1], scope());
      into.push({ name: alias?.name ?? '', columns: renamed(outputs, alias?.columns ?? []) });
      return;
    }
    case 'RangeFunction': {
      // A function's columns may be computed from anything its arguments name.
      const argument = merge(false, deepColumnRefs(body.functions, scope()));
      into.push({ name: alias?.name ?? '', columns: [{ name: '*', ...argument, star: true }] });
      return;
    }
    case 'JoinExpr': {
      const inside: Relation[] = [];
      collectRelation(body.larg, scope, inside);
      collectRelation(body.rarg, scope, inside);
      into.push(...inside);
      if (observer) sweep(body.quals, { relations: inside, ctes: scope().ctes, parent: scope() });
      // `(a JOIN b) AS j(x, y)`: j's columns are a's and b's.
      if (alias) into.push(renamedRelation(alias.name, alias.columns, inside));
      return;
    }
    case 'RangeTableFunc':
    case 'JsonTable': {
      const argument = merge(false, deepColumnRefs(body, scope()));
      into.push({ name: alias?.name ?? '', columns: [{ name: '*', ...argument, star: true }] });
      return;
    }
    default:
  }
}

/**
 * A relation whose columns are renamed by position (`customers AS t(i, x)`) or that stands for the
 * relations inside it (a join's alias). Which column a new name stands for is the catalog's to know:
 * a renamed column counts as any column of those relations (their whole rows); other names are those
 * relations' columns of that name.
 */
function renamedRelation(name: string, columns: readonly string[], inside: readonly Relation[]): Relation {
  const whole = wholeRowsOf(inside, undefined);
  const star = starOverRelations(inside);
  return { name, columns: [...columns.map((column) => ({ ...whole, name: column })), { name: '*', ...star }] };
}

export function tableRelation(rangeVar: PgRecord): Relation {
  const table = asString(rangeVar.relname)?.toLowerCase() ?? '';
  return { name: aliasOf(rangeVar)?.name ?? table, table };
}

function aliasOf(body: PgRecord): { name: string; columns: string[] } | undefined {
  const alias = nodeBody(body.alias);
  const name = asString(alias?.aliasname)?.toLowerCase();
  return name === undefined ? undefined : { name, columns: stringItems(alias?.colnames) };
}

// ── target lists and expressions ────────────────────────────────────────────────────────────────

function targetOutput(target: unknown, scope: Scope): NamedOutput {
  const resTarget = nodeBody(target) ?? {};
  const value = resTarget.val;
  const alias = asString(resTarget.name)?.toLowerCase();
  const column = unwrapNode(value);
  if (column?.[0] === 'ColumnRef') {
    const fields = asList(column[1].fields);
    if (unwrapNode(fields[fields.length - 1])?.[0] === 'A_Star') {
      const starOf = stringItems(fields).map((part) => part.toLowerCase());
      return { name: alias ?? '*', ...starOutput(starOf, scope) };
    }
  }
  return { name: alias ?? defaultName(column), ...expressionOutput(value, scope) };
}

/** PostgreSQL's name for an unaliased result column: the column's, the function's, or ?column?. */
function defaultName(node: readonly [string, PgRecord] | undefined): string {
  if (node === undefined) return '?column?';
  const [type, body] = node;
  if (type === 'ColumnRef') return stringItems(body.fields).at(-1)?.toLowerCase() ?? '?column?';
  if (type === 'FuncCall') return stringItems(body.funcname).at(-1)?.toLowerCase() ?? '?column?';
  if (type === 'TypeCast') return defaultName(unwrapNode(body.arg));
  return '?column?';
}

/** `*` or `t.*` in a target list: the derived columns it expands to (table columns come with their OIDs). */
function starOutput(qualifier: readonly string[], scope: Scope): Traced {
  const relations = qualifier.length === 0 ? scope.relations : findRelations(scope, qualifier[qualifier.length - 1]!);
  return starOverRelations(relations);
}

/** A `*` over `relations`: their derived columns, and the tables it expands over. */
function starOverRelations(relations: readonly Relation[]): Traced {
  const derived = relations.flatMap((relation) => relation.columns ?? []);
  const merged = merge(true, derived);
  return { ...merged, star: true, starTables: [...new Set([...(merged.starTables ?? []), ...tablesOf(relations)])] };
}

export function expressionOutput(value: unknown, scope: Scope): OutputColumn {
  return merge(false, deepColumnRefs(value, scope));
}

/** Every column reference and subquery result inside `value`, resolved in `scope`. */
function deepColumnRefs(value: unknown, scope: Scope): OutputColumn[] {
  const found: OutputColumn[] = [];
  const visit = (item: unknown): void => {
    spend();
    if (Array.isArray(item)) {
      for (const element of item) visit(element);
      return;
    }
    const record = asRecord(item);
    if (record === undefined) return;
    const node = unwrapNode(record);
    if (node?.[0] === 'ColumnRef') {
      found.push(resolveColumnRef(node[1], scope));
      return;
    }
    if (node?.[0] === 'FuncCall') {
      // Its arguments are visited below; a built-in that reads a table by name adds that table.
      const read = tableReadingCall(node[1]);
      if (read !== undefined) found.push(read);
      const opaque = opaqueFunctionName(node[1]);
      if (opaque !== undefined) found.push({ star: false, sources: [], wholeRows: [], functions: [opaque] });
      if (observer) observeCall(node[1], scope);
    }
    if (node?.[0] === 'SubLink') {
      // A scalar, ARRAY or EXISTS subquery: its result is part of the value.
      const query = unwrapNode(node[1].subselect);
      if (query) found.push(...statementOutputs(query[0], query[1], { relations: [], ctes: scope.ctes, parent: scope }));
      visit(node[1].testexpr);
      return;
    }
    for (const key in record) visit(record[key]);
  };
  visit(value);
  return found;
}

/**
 * Built-ins that read tables the statement does not name as relations: what each returns values of.
 * `table` reads the table its first argument names; `any`, tables the text cannot show (a cursor, a
 * schema, the database, a query in a string). Matched by name whatever the schema: a user function
 * of the same name counts too.
 */
export const TABLE_READING_FUNCTIONS: ReadonlyMap<string, 'table' | 'any'> = new Map([
  ['table_to_xml', 'table'],
  ['table_to_xml_and_xmlschema', 'table'],
  ['cursor_to_xml', 'any'],
  ['schema_to_xml', 'any'],
  ['schema_to_xml_and_xmlschema', 'any'],
  ['database_to_xml', 'any'],
  ['database_to_xml_and_xmlschema', 'any'],
  ['query_to_xml', 'any'],
  ['query_to_xml_and_xmlschema', 'any'],
  ['ts_stat', 'any'],
]);

/** A value that may hold any column's values. */
export const ANY_COLUMN: OutputColumn = Object.freeze({ star: false, sources: [], wholeRows: [], unknown: true });

/** What a call to a table-reading built-in returns values of; undefined for other functions. */
function tableReadingCall(call: PgRecord): OutputColumn | undefined {
  const name = stringItems(call.funcname).at(-1)?.toLowerCase();
  const reads = name === undefined ? undefined : TABLE_READING_FUNCTIONS.get(name);
  if (reads === undefined) return undefined;
  const table = reads === 'table' ? literalRelationName(asList(call.args)[0]) : undefined;
  return table === undefined ? ANY_COLUMN : { star: false, sources: [], wholeRows: [table], ...(STATISTICS_VALUE_COLUMNS.has(table) ? { unknown: true } : {}) };
}

/** Tells the observer of a call to a function that does more than read, with what its arguments come from. */
function observeCall(call: PgRecord, scope: Scope): void {
  const effect = callEffect(call);
  if (effect === undefined || effect.operation === 'read') return;
  const name = calledFunction(call);
  observer!.effectfulCall(name ? `${name.schema ? `${name.schema}.` : ''}${name.name}` : '?', expressionOutput(call.args, scope));
}

/** The relation a string literal names as a regclass (`'public."Customers"'` → `customers`), lower case. */
function literalRelationName(argument: unknown): string | undefined {
  const text = constantString(argument);
  return text === undefined ? undefined : parseRelationName(text)?.name.toLowerCase();
}

/**
 * The catalogs' columns that hold values of other tables' columns: the statistics' samples (most
 * common values, histogram bounds), and the text of other sessions' running statements, which quotes
 * the values they write. Whatever they show counts as possibly any column.
 */
export const STATISTICS_VALUE_COLUMNS: ReadonlyMap<string, readonly string[]> = new Map([
  ['pg_stat_activity', ['query']],
  ['pg_stats', ['most_common_vals', 'histogram_bounds', 'most_common_elems']],
  ['pg_stats_ext', ['most_common_vals']],
  ['pg_stats_ext_exprs', ['most_common_vals', 'histogram_bounds', 'most_common_elems']],
  ['pg_statistic', ['stavalues1', 'stavalues2', 'stavalues3', 'stavalues4', 'stavalues5']],
  ['pg_statistic_ext_data', ['stxdmcv', 'stxdexpr']],
]);

/** Names that are these columns even when the table is unknown (`query` is too common a name to count so). */
const SAMPLED_COLUMN_NAMES: ReadonlySet<string> = new Set([...STATISTICS_VALUE_COLUMNS.values()].flat().filter((name) => name !== 'query'));

/** Whether a column may be one of the statistics catalogs' sampled values (its table unknown: by name alone). */
export function holdsSampledValues(table: string | undefined, column: string): boolean {
  if (table === undefined) return SAMPLED_COLUMN_NAMES.has(column);
  return STATISTICS_VALUE_COLUMNS.get(table)?.includes(column) === true;
}

function resolveColumnRef(columnRef: PgRecord, scope: Scope): OutputColumn {
  const fields = asList(columnRef.fields);
  const names = stringItems(fields).map((part) => part.toLowerCase());
  const starred = unwrapNode(fields[fields.length - 1])?.[0] === 'A_Star';
  if (starred) {
    // `t.*` (or `*`) inside an expression: whole rows.
    const relations = names.length === 0 ? scope.relations : findRelations(scope, names[names.length - 1]!);
    return wholeRowsOf(relations, names[names.length - 1]);
  }
  if (names.length === 1) {
    const [name] = names as [string];
    const derived = derivedColumns(scope, undefined, name);
    const relations = findRelations(scope, name);
    // A derived column of that name, and the whole row when a relation is called so too.
    if (derived.length > 0) return merge(false, relations.length > 0 ? [...derived, wholeRowsOf(relations, name)] : derived);
    // A bare relation name is a whole-row reference unless a table in scope has a column of that
    // name, which only the catalog knows: both, then. With only derived relations in scope (whose
    // columns are known and did not match) it is the whole row alone.
    const whole = relations.length > 0 ? wholeRowsOf(relations, name) : undefined;
    // Tables of this query and every enclosing one: an unqualified name may be an outer query's column.
    const tables = tablesInScope(scope);
    if (whole && tables.length === 0) return whole;
    // Only derived relations in every enclosing query, none with that column: it names nothing.
    if (tables.length === 0) return { star: false, sources: [], wholeRows: [] };
    const column: SourceColumn = tables.length === 1 ? { table: tables[0]!, column: name } : { column: name };
    return merge(false, [{ star: false, sources: [column], wholeRows: [] }, ...(whole ? [whole] : [])]);
  }
  const column = names[names.length - 1]!;
  const qualifier = names[names.length - 2]!;
  const relations = names.length === 2 ? findRelations(scope, qualifier) : [];
  const derived = derivedColumns(scope, qualifier, column);
  if (derived.length > 0) return merge(false, derived);
  // A derived relation has no column of that name (or none yet, in a recursive CTE's first pass).
  if (relations.length > 0 && relations.every((relation) => relation.columns !== undefined)) return { star: false, sources: [], wholeRows: [] };
  // schema.table.column names its table; `t.column` where no relation in scope is called t (a join's
  // alias, which this reading does not track) leaves the table unknown: matched by column name alone.
  const table = names.length > 2 ? qualifier : relations.find((relation) => relation.table !== undefined)?.table;
  return merge(false, [{ star: false, sources: [table === undefined ? { column } : { table, column }], wholeRows: [] }]);
}

/** Derived columns named `column` (of the relation `qualifier`, when given), innermost scope first. */
function derivedColumns(scope: Scope, qualifier: string | undefined, column: string): OutputColumn[] {
  for (let current: Scope | undefined = scope; current; current = current.parent) {
    const matches = current.relations
      .filter((relation) => relation.columns !== undefined && (qualifier === undefined || relation.name === qualifier))
      .flatMap((relation): Traced[] => {
        const named: Traced[] = relation.columns!.filter((output) => output.name === column);
        if (named.length > 0) return named;
        // A relation with a `*` column (a function, `SELECT *`) may hold a column of any name: the
        // column of that name of each table the `*` covers, and whatever else the `*` computes.
        return relation.columns!.filter((output) => output.star).map(({ starTables, ...star }) => ({
          ...star,
          star: false,
          sources: [...star.sources, ...(starTables ?? []).map((table) => ({ table, column }))],
        }));
      });
    if (matches.length > 0) return matches;
    if (qualifier !== undefined && current.relations.some((relation) => relation.name === qualifier)) return [];
  }
  return [];
}

function findRelations(scope: Scope, name: string): Relation[] {
  for (let current: Scope | undefined = scope; current; current = current.parent) {
    const matches = current.relations.filter((relation) => relation.name === name);
    if (matches.length > 0) return matches;
  }
  return [];
}

/** The distinct tables (not derived relations) visible from `scope`, enclosing queries included. */
function tablesInScope(scope: Scope): string[] {
  const tables = new Set<string>();
  for (let current: Scope | undefined = scope; current; current = current.parent) {
    for (const table of tablesOf(current.relations)) tables.add(table);
  }
  return [...tables];
}

/** The tables among `relations` (derived relations have none). */
function tablesOf(relations: readonly Relation[]): string[] {
  return relations.flatMap((relation) => (relation.table !== undefined ? [relation.table] : []));
}

function wholeRowsOf(relations: readonly Relation[], fallback: string | undefined): OutputColumn {
  const derived = relations.flatMap((relation) => relation.columns ?? []);
  const merged = merge(false, derived);
  // A derived relation's `*` columns are whole rows of the tables it covers.
  const wholeRows = [...merged.wholeRows, ...(merged.starTables ?? []), ...tablesOf(relations), ...(relations.length === 0 && fallback !== undefined ? [fallback] : [])];
  const { starTables: _tables, ...values } = merged;
  return merge(false, [{ ...values, star: false, wholeRows: [...new Set(wholeRows)] }]);
}

export function merge(star: boolean, columns: readonly Traced[]): Traced {
  const sources = new Map<string, SourceColumn>();
  const wholeRows = new Set<string>();
  const starTables = new Set<string>();
  let functions: Set<string> | undefined;
  let unknown = false;
  for (const column of columns) {
    if (column.functions) for (const name of column.functions) (functions ??= new Set()).add(name);
    for (const source of column.sources) {
      sources.set(`${source.table ?? ''}.${source.column}`, source);
      unknown ||= holdsSampledValues(source.table, source.column);
    }
    for (const relation of column.wholeRows) {
      wholeRows.add(relation);
      unknown ||= STATISTICS_VALUE_COLUMNS.has(relation);
    }
    for (const table of column.starTables ?? []) starTables.add(table);
    unknown ||= column.unknown === true;
  }
  const merged: Traced = {
    star,
    sources: [...sources.values()],
    wholeRows: [...wholeRows],
    ...(unknown ? { unknown: true } : {}),
    ...(functions ? { functions: [...functions] } : {}),
  };
  return starTables.size > 0 ? { ...merged, starTables: [...starTables] } : merged;
}
