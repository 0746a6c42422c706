// Where a statement puts values other than into its result, and which columns those values are
// computed from: the columns an INSERT, UPDATE or MERGE assigns, the relation CREATE TABLE AS,
// SELECT INTO or CREATE VIEW makes, the new name a RENAME gives a column or relation, the server
// file or program COPY writes to, and the arguments of functions that do more than read
// (set_config, pg_notify, lo_put, a user's function). The sidecar refuses a flow that would carry a
// masked column's values where its masking rules do not follow them (write-through.ts there): read
// back from another column, a setting or a notification, they would not be masked.
//
// Built on the result analysis (output-lineage.ts): names only, no catalog, failing closed.
import {
  ANY_COLUMN,
  EMPTY_SCOPE,
  expressionOutput,
  fromRelations,
  merge,
  selectOutputs,
  statementOutputs,
  sweep,
  tableRelation,
  traverse,
  withCtes,
  type NamedOutput,
  type OutputColumn,
  type Relation,
  type Scope,
  type Traced,
} from './output-lineage.js';
import { asList, asString, nodeBody, stringItems, unwrapNode, type PgRecord } from './parse-tree.js';

/** Where values go. */
export type FlowTarget =
  /** A column of a table (or of the view or table the statement creates). */
  | { readonly kind: 'column'; readonly table: string; readonly column: string }
  /**
   * A relation's columns, which the statement does not name: by position (INSERT without a column
   * list), or under the names they had (`sameNames`: a renamed table, CREATE TABLE AS SELECT *).
   */
  | { readonly kind: 'relation'; readonly table: string; readonly sameNames: boolean }
  /** Somewhere that is not a column: a setting, a notification, a function's effects, a server file. */
  | { readonly kind: 'elsewhere'; readonly what: string };

export interface ValueFlow {
  readonly into: FlowTarget;
  /** What the values are computed from, as output-lineage.ts tells it. */
  readonly from: OutputColumn;
}

/** A statement too large to follow: anything could go anywhere. */
const OVER_BUDGET: readonly ValueFlow[] = Object.freeze([
  Object.freeze({ into: Object.freeze({ kind: 'elsewhere', what: 'a statement too large to follow' }), from: ANY_COLUMN }),
]);

/** What statements that prepare or run a statement run: the flows of one prepared elsewhere are unknown. */
export const UNKNOWN_FLOWS: readonly ValueFlow[] = Object.freeze([
  Object.freeze({ into: Object.freeze({ kind: 'elsewhere', what: 'a statement prepared elsewhere' }), from: ANY_COLUMN }),
]);

/** The flows of a top-level statement (a node as the parser returns it) that carry any column's values. */
export function valueFlows(type: string, node: PgRecord): readonly ValueFlow[] {
  const found: ValueFlow[] = [];
  const watching = {
    effectfulCall: (name: string, args: OutputColumn) => found.push({ into: { kind: 'elsewhere', what: `${name}()` }, from: args }),
    modifyingStatement: (inner: string, body: PgRecord, scope: Scope) => statementFlows(inner, body, scope, found),
  };
  return traverse(
    watching,
    () => {
      statementFlows(type, node, EMPTY_SCOPE, found);
      return found.filter((flow) => carriesColumns(flow.from));
    },
    () => OVER_BUDGET,
  );
}

function carriesColumns(column: OutputColumn): boolean {
  return column.sources.length > 0 || column.wholeRows.length > 0 || column.unknown === true || (column.functions?.length ?? 0) > 0;
}

function statementFlows(type: string, node: PgRecord, outer: Scope, found: ValueFlow[]): void {
  switch (type) {
    case 'SelectStmt': {
      const outputs = selectOutputs(node, outer);
      const into = nodeBody(node.intoClause);
      if (into) newRelationFlows(into, [], outputs, found);
      return;
    }
    case 'InsertStmt':
      return insertFlows(node, outer, found);
    case 'UpdateStmt':
    case 'DeleteStmt':
      return updateFlows(node, outer, found);
    case 'MergeStmt':
      return mergeFlows(node, outer, found);
    case 'CreateTableAsStmt': {
      const into = nodeBody(node.into);
      const query = unwrapNode(node.query);
      if (!into || !query) return;
      // CREATE TABLE ... AS EXECUTE: what the prepared statement returns is not in the text.
      if (query[0] === 'ExecuteStmt') return void found.push(relationFlow(into.rel, false, ANY_COLUMN));
      return newRelationFlows(into, [], statementOutputs(query[0], query[1], outer), found);
    }
    case 'ViewStmt': {
      const query = unwrapNode(node.query);
      if (query) newRelationFlows({ rel: node.view }, stringItems(node.aliases), statementOutputs(query[0], query[1], outer), found);
      return;
    }
    case 'CopyStmt':
      return copyFlows(node, outer, found);
    case 'RenameStmt':
      return renameFlows(node, found);
    case 'PrepareStmt':
    case 'ExplainStmt':
    case 'DeclareCursorStmt': {
      // What runs later (EXECUTE, FETCH) or right away (EXPLAIN ANALYZE).
      const query = unwrapNode(node.query);
      if (query) statementFlows(query[0], query[1], outer, found);
      return;
    }
    case 'CallStmt': {
      const call = nodeBody(node.funccall);
      const name = stringItems(call?.funcname).join('.');
      found.push({ into: { kind: 'elsewhere', what: `procedure ${name}()` }, from: expressionOutput(call?.args, outer) });
      return;
    }
    default:
  }
}

// ── writes to tables ────────────────────────────────────────────────────────────────────────────

function insertFlows(insert: PgRecord, outer: Scope, found: ValueFlow[]): void {
  const scope = withCtes(insert, outer);
  const target = nodeBody(insert.relation);
  const table = tableName(target);
  const columns = asList(insert.cols).map((column) => asString(nodeBody(column)?.name)?.toLowerCase() ?? '');
  const query = unwrapNode(insert.selectStmt);
  const outputs = query ? statementOutputs(query[0], query[1], scope) : [];
  if (table !== undefined) positionalFlows(table, columns, outputs, found);
  const conflict = nodeBody(insert.onConflictClause);
  if (table === undefined || target === undefined) return;
  // ON CONFLICT DO UPDATE SET c = excluded.c: `excluded` is the row the INSERT proposed.
  const excluded: Relation = { name: 'excluded', columns: aligned(columns, outputs) ? outputs.map((output, index) => ({ ...output, name: columns[index]! })) : [{ name: '*', ...merge(true, outputs) }] };
  const local: Scope = { relations: [tableRelation(target), excluded], ctes: scope.ctes, parent: scope };
  if (conflict) {
    assignmentFlows(table, conflict.targetList, local, found);
    sweep(conflict.whereClause, local);
  }
  sweep(insert.returningList, local);
}

/** UPDATE's SET (and, for UPDATE and DELETE, function calls in WHERE and RETURNING). */
function updateFlows(statement: PgRecord, outer: Scope, found: ValueFlow[]): void {
  const scope = withCtes(statement, outer);
  const target = nodeBody(statement.relation);
  const relations = [...(target ? [tableRelation(target)] : []), ...fromRelations([...asList(statement.fromClause), ...asList(statement.usingClause)], scope)];
  const local: Scope = { relations, ctes: scope.ctes, parent: scope };
  const table = tableName(target);
  if (table !== undefined) assignmentFlows(table, statement.targetList, local, found);
  sweep([statement.whereClause, statement.returningList], local);
}

function mergeFlows(statement: PgRecord, outer: Scope, found: ValueFlow[]): void {
  const scope = withCtes(statement, outer);
  const target = nodeBody(statement.relation);
  const table = tableName(target);
  const relations = [...(target ? [tableRelation(target)] : []), ...fromRelations([statement.sourceRelation], scope)];
  const local: Scope = { relations, ctes: scope.ctes, parent: scope };
  sweep([statement.joinCondition, statement.returningList], local);
  if (table === undefined) return;
  for (const item of asList(statement.mergeWhenClauses)) {
    const clause = nodeBody(item) ?? {};
    sweep(clause.condition, local);
    if (clause.commandType === 'CMD_UPDATE') assignmentFlows(table, clause.targetList, local, found);
    if (clause.commandType === 'CMD_INSERT') {
      const columns = asList(clause.targetList).map((column) => asString(nodeBody(column)?.name)?.toLowerCase() ?? '');
      const values = asList(clause.values).map((value): NamedOutput => ({ name: '', ...expressionOutput(value, local) }));
      positionalFlows(table, columns, values, found);
    }
  }
}

/** `SET c = expression` (or `SET (a, b) = (SELECT ...)`, each column from the whole source). */
function assignmentFlows(table: string, targetList: unknown, scope: Scope, found: ValueFlow[]): void {
  for (const item of asList(targetList)) {
    const target = nodeBody(item) ?? {};
    const column = asString(target.name)?.toLowerCase();
    if (column === undefined) continue;
    const multiple = unwrapNode(target.val);
    const value = multiple?.[0] === 'MultiAssignRef' ? multiple[1].source : target.val;
    found.push({ into: { kind: 'column', table, column }, from: expressionOutput(value, scope) });
  }
}

/** Values by position into the named columns; without names (or when they do not line up), into the relation. */
function positionalFlows(table: string, columns: readonly string[], outputs: readonly NamedOutput[], found: ValueFlow[]): void {
  if (aligned(columns, outputs)) {
    columns.forEach((column, index) => found.push({ into: { kind: 'column', table, column }, from: valuesOf(outputs[index]!) }));
    return;
  }
  const all = valuesOf(merge(false, outputs.map(valuesOf)));
  if (columns.length > 0) for (const column of columns) found.push({ into: { kind: 'column', table, column }, from: all });
  else found.push({ into: { kind: 'relation', table, sameNames: false }, from: all });
}

function aligned(columns: readonly string[], outputs: readonly NamedOutput[]): boolean {
  return columns.length > 0 && columns.length === outputs.length && !outputs.some((output) => output.star);
}

/** CREATE TABLE AS, SELECT INTO, CREATE VIEW: the new relation's columns, named by the list or the query. */
function newRelationFlows(into: PgRecord, aliases: readonly string[], outputs: readonly NamedOutput[], found: ValueFlow[]): void {
  const names = aliases.length > 0 ? aliases : stringItems(into.colNames);
  const table = tableName(nodeBody(into.rel));
  if (table === undefined) return;
  if (outputs.some((output) => output.star)) {
    // `SELECT *` keeps the names of the columns it expands to; anything else alongside, by position.
    const sameNames = names.length === 0 && outputs.every((output) => output.star);
    found.push({ into: { kind: 'relation', table, sameNames }, from: valuesOf(merge(false, outputs.map(valuesOf))) });
    return;
  }
  outputs.forEach((output, index) => found.push({ into: { kind: 'column', table, column: names[index]?.toLowerCase() ?? output.name }, from: valuesOf(output) }));
}

function relationFlow(rangeVar: unknown, sameNames: boolean, from: OutputColumn): ValueFlow {
  return { into: { kind: 'relation', table: tableName(nodeBody(rangeVar)) ?? '?', sameNames }, from };
}

// ── COPY to the server, RENAME ──────────────────────────────────────────────────────────────────

function copyFlows(copy: PgRecord, outer: Scope, found: ValueFlow[]): void {
  if (copy.is_from === true) return;
  const query = unwrapNode(copy.query);
  // COPY (UPDATE ... RETURNING ...) TO ...: the UPDATE's own assignments too.
  if (query && query[0] !== 'SelectStmt') statementFlows(query[0], query[1], outer, found);
  const outputs = query ? statementOutputs(query[0], query[1], outer) : [];
  // COPY output to the client has rows but no column names: masking by column cannot follow values there.
  const destination = copy.is_program === true ? 'a program (COPY TO PROGRAM)'
    : asString(copy.filename) !== undefined ? 'a server file (COPY TO)'
    : 'COPY output, which has no column names to mask by (use SELECT)';
  const relation = nodeBody(copy.relation);
  const table = tableName(relation);
  const attributes = stringItems(copy.attlist).map((column) => column.toLowerCase());
  const fromTable: OutputColumn = table === undefined
    ? { star: false, sources: [], wholeRows: [] }
    : attributes.length > 0
      ? { star: false, sources: attributes.map((column) => ({ table, column })), wholeRows: [] }
      : { star: false, sources: [], wholeRows: [table] };
  found.push({ into: { kind: 'elsewhere', what: destination }, from: query ? valuesOf(merge(false, outputs.map(valuesOf))) : fromTable });
}

/** RENAME of a column or a relation: its values are then read under the new name. */
function renameFlows(rename: PgRecord, found: ValueFlow[]): void {
  const table = tableName(nodeBody(rename.relation));
  const newName = asString(rename.newname)?.toLowerCase();
  if (table === undefined || newName === undefined) return;
  if (rename.renameType === 'OBJECT_COLUMN') {
    const column = asString(rename.subname)?.toLowerCase();
    if (column !== undefined) found.push({ into: { kind: 'column', table, column: newName }, from: { star: false, sources: [{ table, column }], wholeRows: [] } });
    return;
  }
  if (RELATION_RENAMES.has(String(rename.renameType))) {
    found.push({ into: { kind: 'relation', table: newName, sameNames: true }, from: { star: false, sources: [], wholeRows: [table] } });
  }
}

const RELATION_RENAMES: ReadonlySet<string> = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE']);

// ── helpers ─────────────────────────────────────────────────────────────────────────────────────

function tableName(rangeVar: PgRecord | undefined): string | undefined {
  return asString(rangeVar?.relname)?.toLowerCase();
}

/** What an entry's values are computed from, a `*`'s tables counted as whole rows. */
function valuesOf(entry: Traced): OutputColumn {
  const wholeRows = [...new Set([...entry.wholeRows, ...(entry.starTables ?? [])])];
  return { star: false, sources: entry.sources, wholeRows, ...(entry.unknown ? { unknown: true } : {}), ...(entry.functions ? { functions: entry.functions } : {}) };
}
