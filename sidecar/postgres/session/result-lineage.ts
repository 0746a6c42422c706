// Lines a statement's output lineage (api/sql/output-lineage.ts) up with the fields of the
// RowDescription it produced, so each computed field (table OID 0) knows which columns its values
// come from and column rules reach it. Table columns (OID set) are matched by their catalog names
// and get nothing here, unless the session's catalog lookup predates the rules in force. Where the two cannot be lined up exactly (several `*`, a count that does
// not fit), every computed field gets what any entry is computed from: masking more, never less.
import { ANY_COLUMN, type OutputColumn, type OutputLineage } from '../../../api/sql/output-lineage.js';
import type { ColumnLineage } from '../../masking/column-matcher.js';
import type { RowField } from '../protocol/backend-messages.js';

const UNKNOWN_COLUMN: ColumnLineage = ANY_COLUMN;

/**
 * Per field, what it is computed from; undefined for values computed from no column, and for table
 * columns unless `tableColumns` (when the catalog that would name them predates the rules in force).
 */
export function columnLineages(fields: readonly RowField[], lineage: OutputLineage | undefined, tableColumns = false): (ColumnLineage | undefined)[] {
  if (lineage === undefined) return fields.map(() => undefined);
  if (lineage.kind === 'unknown') return fields.map((field) => (tableColumns || field.tableOid === 0 ? UNKNOWN_COLUMN : undefined));
  const perField = alignedEntries(fields.length, lineage.columns);
  return fields.map((field, index) => (tableColumns || field.tableOid === 0 ? lineageOf(perField[index]!) : undefined));
}

/** The entry each field comes from; when that cannot be told, every field gets all entries at once. */
function alignedEntries(count: number, entries: readonly OutputColumn[]): (readonly OutputColumn[])[] {
  const stars = entries.filter((entry) => entry.star).length;
  if (stars === 0 && entries.length === count) return entries.map((entry) => [entry]);
  const width = count - (entries.length - 1);
  if (stars === 1 && width >= 0) {
    const star = entries.findIndex((entry) => entry.star);
    return Array.from({ length: count }, (_, index) => {
      if (index < star) return [entries[index]!];
      if (index < star + width) return [entries[star]!];
      return [entries[index - width + 1]!];
    });
  }
  return Array.from({ length: count }, () => entries);
}

function lineageOf(entries: readonly OutputColumn[]): ColumnLineage | undefined {
  if (entries.length === 1) {
    const [entry] = entries as [OutputColumn];
    return entry.sources.length === 0 && entry.wholeRows.length === 0 && entry.unknown !== true && entry.functions === undefined ? undefined : entry;
  }
  if (entries.some((entry) => entry.unknown === true)) return UNKNOWN_COLUMN;
  const sources = entries.flatMap((entry) => entry.sources);
  const wholeRows = [...new Set(entries.flatMap((entry) => entry.wholeRows))];
  const functions = [...new Set(entries.flatMap((entry) => entry.functions ?? []))];
  if (sources.length === 0 && wholeRows.length === 0 && functions.length === 0) return undefined;
  return functions.length > 0 ? { sources, wholeRows, functions } : { sources, wholeRows };
}
