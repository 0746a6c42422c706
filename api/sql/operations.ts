// The operations a SQL statement is classified into (DESIGN.md), and their strictness order.
import type { OutputLineage } from './output-lineage.js';
import type { ValueFlow } from './value-flows.js';

export const SQL_OPERATIONS = [
  'session',
  'transaction',
  'read',
  'write',
  'delete',
  'truncate',
  'call',
  'ddl',
  'dcl',
  'admin',
] as const;

export type SqlOperation = (typeof SQL_OPERATIONS)[number];

/** Higher is stricter: a statement counts as the strictest operation it contains. */
const STRICTNESS: Readonly<Record<SqlOperation, number>> = Object.fromEntries(
  SQL_OPERATIONS.map((operation, index) => [operation, index]),
) as Record<SqlOperation, number>;

export function strictness(operation: SqlOperation): number {
  return STRICTNESS[operation];
}

export function strictest(operations: Iterable<SqlOperation>): SqlOperation | undefined {
  let best: SqlOperation | undefined;
  for (const operation of operations) {
    if (best === undefined || STRICTNESS[operation] > STRICTNESS[best]) best = operation;
  }
  return best;
}

export function isSqlOperation(value: string): value is SqlOperation {
  return (SQL_OPERATIONS as readonly string[]).includes(value);
}

/** A schema-qualified name as written in the statement; `schema` is absent when unqualified. */
export interface QualifiedName {
  readonly schema?: string;
  readonly name: string;
}

/**
 * One thing a statement does: an operation, and what it does it to. A statement yields one access
 * per relation or function it touches (plus one table-less access when it touches none, e.g. `SELECT 1`).
 */
export interface SqlAccess {
  readonly operation: SqlOperation;
  /** Table, view or sequence the operation applies to. */
  readonly relation?: QualifiedName;
  /** Function called, for function-driven operations (`SELECT pg_terminate_backend(1)`). */
  readonly function?: QualifiedName;
  /** UPDATE or DELETE with no WHERE clause (and no WHERE CURRENT OF). */
  readonly unbounded?: boolean;
}

export interface ClassifiedStatement {
  /** The statement's own text, trimmed, as cut from the original string. */
  readonly text: string;
  /** PostgreSQL's command tag for the top-level statement, e.g. SELECT, DELETE, CREATE TABLE. */
  readonly command: string;
  /** Strictest operation the statement contains. */
  readonly operation: SqlOperation;
  readonly accesses: readonly SqlAccess[];
  /** For `PREPARE name AS ...`: the name, so a session can resolve a later `EXECUTE name`. */
  readonly prepares?: string;
  /**
   * What each column of the statement's result is computed from (output-lineage.ts), so computed
   * columns can be masked; absent when the statement returns no rows of its own.
   */
  readonly outputs?: OutputLineage;
  /**
   * Where it puts values other than into its result (a column it assigns, a table it creates, a
   * function with effects) and what they are computed from (value-flows.ts); absent when nowhere.
   */
  readonly flows?: readonly ValueFlow[];
}

export interface SqlClassification {
  /** Strictest operation across every statement in the string. */
  readonly operation: SqlOperation;
  /** Every distinct operation present, strictest first. */
  readonly operations: readonly SqlOperation[];
  readonly statements: readonly ClassifiedStatement[];
}
