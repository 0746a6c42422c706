// Refuses statements that would carry a masked column's values where its masking rules do not
// follow them: `UPDATE customers SET notes = card_number`, `CREATE TABLE copy AS SELECT * FROM
// customers`, `ALTER TABLE customers RENAME COLUMN ssn TO x`, `SELECT set_config('a.b', ssn, false)`.
// Read back from the new place, the values would come out unmasked. A value may go to a column that
// the rules mask at least as strongly (`UPDATE customers SET name = upper(name)`); anywhere else
// (another column, a relation by position, a setting, a notification, a function's effects, a
// server file) it is refused. The flows come from the statement's text (api/sql/value-flows.ts);
// whole rows are narrowed to the table's masked columns with the session's catalog lookup.
import type { SqlClassification } from '../../../api/sql/operations.js';
import { ANY_COLUMN } from '../../../api/sql/output-lineage.js';
import type { FlowTarget, ValueFlow } from '../../../api/sql/value-flows.js';
import type { ColumnLineage, ResultColumn } from '../../masking/column-matcher.js';
import type { Masker } from '../../masking/masker.js';
import { isStronger, type MaskingStrategy } from '../../masking/strategies.js';
import { resolveLineage, sourceLineage, type ColumnIndex, type SourceColumn } from './column-catalog.js';

/** What the metric and the denial name as the blocker. */
export const WRITE_THROUGH = 'masking/write-through';

/** A masked column a flow carries, with the strategy its rules give it. */
interface MaskedSource {
  readonly label: string;
  /** Its name, when known: a relation's columns keep their names through a rename or a `SELECT *` copy. */
  readonly column?: string;
  readonly strategy: MaskingStrategy;
}

/** The index's columns by lower-case table name, built once per index. */
const BY_TABLE = new WeakMap<ColumnIndex, Map<string, SourceColumn[]>>();

function columnsByTable(index: ColumnIndex): Map<string, SourceColumn[]> {
  let byTable = BY_TABLE.get(index);
  if (byTable === undefined) {
    byTable = new Map();
    for (const [key, column] of index) {
      if (key.endsWith(':0')) continue; // whole-row entries
      const table = column.table.name.toLowerCase();
      byTable.set(table, [...(byTable.get(table) ?? []), column]);
    }
    BY_TABLE.set(index, byTable);
  }
  return byTable;
}

/**
 * Why the statements must not run, or undefined when every masked value they move stays masked.
 * `indexCurrent`: the catalog lookup was made for the rules in force (else whole rows count by name).
 */
export function writeThroughRefusal(classification: SqlClassification | undefined, masker: Masker, index: ColumnIndex, indexCurrent: boolean): string | undefined {
  if (!masker.masksColumns || classification === undefined) return undefined;
  for (const statement of classification.statements) {
    for (const flow of statement.flows ?? []) {
      const refusal = flowRefusal(flow, masker, index, indexCurrent);
      if (refusal !== undefined) return refusal;
    }
  }
  return undefined;
}

function flowRefusal(flow: ValueFlow, masker: Masker, index: ColumnIndex, indexCurrent: boolean): string | undefined {
  const from = resolveLineage(index, flow.from);
  const masked = maskedSources(from, masker, index, indexCurrent ? columnsByTable(index) : undefined);
  for (const source of masked) {
    const target = targetStrategy(flow.into, source, masker, indexCurrent);
    if (target === 'unknown' || isStronger(source.strategy, target)) return explain(source, flow.into, target);
  }
  return undefined;
}

function strategyOf(masker: Masker, column: ResultColumn): MaskingStrategy | undefined {
  return masker.planColumn(column).strategy;
}

/** The masked columns among what a flow's values are computed from. */
function maskedSources(from: ColumnLineage, masker: Masker, index: ColumnIndex, byTable: Map<string, SourceColumn[]> | undefined): MaskedSource[] {
  const found: MaskedSource[] = [];
  const add = (label: string, column: string | undefined, strategy: MaskingStrategy | undefined) => {
    if (strategy !== undefined) found.push({ label, ...(column !== undefined ? { column } : {}), strategy });
  };
  if (from.unknown === true) add('columns the statement does not name', undefined, strategyOf(masker, { name: '', derivedFrom: ANY_COLUMN }));
  for (const source of from.sources) {
    const table = source.table === undefined ? {} : { table: { name: source.table } };
    add(`${source.table ?? ''}${source.table ? '.' : ''}${source.column}`, source.column, strategyOf(masker, { name: source.column, sourceName: source.column, ...table }));
  }
  for (const relation of from.wholeRows) {
    if (byTable === undefined) {
      // No catalog answer for the rules in force: any column of the relation a rule could name.
      add(`columns of ${relation}`, undefined, strategyOf(masker, { name: '', derivedFrom: { sources: [], wholeRows: [relation] } }));
      continue;
    }
    for (const column of byTable.get(relation) ?? []) {
      const derivedFrom = sourceLineage(index, column);
      const derived = derivedFrom ? { derivedFrom } : {};
      add(`${relation}.${column.column}`, column.column.toLowerCase(), strategyOf(masker, { name: column.column, sourceName: column.column, table: column.table, ...derived }));
    }
  }
  return found;
}

/** How the rules mask the place the value goes; 'unknown' when no rule can follow it there. */
function targetStrategy(into: FlowTarget, source: MaskedSource, masker: Masker, indexCurrent: boolean): MaskingStrategy | undefined | 'unknown' {
  const columnOf = (table: string, column: string) => strategyOf(masker, { name: column, sourceName: column, table: { name: table } });
  if (into.kind === 'column') return columnOf(into.table, into.column);
  if (into.kind === 'relation' && into.sameNames && indexCurrent && source.column !== undefined) return columnOf(into.table, source.column);
  return 'unknown';
}

function explain(source: MaskedSource, into: FlowTarget, target: MaskingStrategy | undefined | 'unknown'): string {
  const values = `values of masked ${source.label} (${source.strategy})`;
  const refusal = 'Gatehouse refuses statements that would take masked values where masking does not follow them';
  if (into.kind === 'column') {
    const how = target === undefined || target === 'unknown' ? 'no masking rule covers' : `masking rules cover only with ${target}`;
    return `${values} would be written to ${into.table}.${into.column}, which ${how}; ${refusal}`;
  }
  if (into.kind === 'relation') {
    const how = into.sameNames ? 'whose columns masking rules do not cover as strongly' : 'by position; name the target columns';
    return `${values} would be written to ${into.table}, ${how}; ${refusal}`;
  }
  return `${values} would be passed to ${into.what}, where masking cannot follow them; ${refusal}`;
}
