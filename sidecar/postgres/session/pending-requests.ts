// What the sidecar has sent upstream and still awaits answers to, in order. PostgreSQL answers
// messages strictly in the order it receives them, so a FIFO tells, for every server message, which
// client request it belongs to: which result set a DataRow is part of (for masking), which
// statement a CommandComplete ends (for the audit record), which error is a denial to rewrite.
// It must skip exactly what the server skips: after an extended-protocol error the server ignores
// every message up to the next Sync (a Query or FunctionCall included), and a FIFO that kept waiting
// for those would pair later rows with the wrong request.
import type { ClassifiedStatement } from '../../../api/sql/operations.js';
import type { OutputLineage } from '../../../api/sql/output-lineage.js';
import type { CellMasking, ResultSetPlan } from '../../masking/masker.js';
import type { RowField } from '../protocol/backend-messages.js';
import type { Denial } from './denial.js';
import type { ProvisionalChange } from './prepared-statements.js';

export interface StatementTiming {
  readonly started: number;
}

/**
 * The layout of the rows an Execute returns, from a Describe the sidecar sends just before it:
 * filled, as the plan to mask them by, when that Describe is answered.
 */
export interface ResultLayout {
  result?: ActiveResult;
  /** What the portal's statement computes its columns from (undefined: a statement without rows of its own). */
  readonly lineage: OutputLineage | undefined;
}

/** The statements of a Query, for the lineage of each result set: one per statement, in order. */
export interface QueryOutputs {
  readonly statements: readonly ClassifiedStatement[];
  /** Statements completed so far (CommandComplete): the index of the one whose results come next. */
  next: number;
}

/** SQL PREPAREs of one Query, confirmed one by one as their PREPARE command tags arrive. */
export interface QueryPrepares {
  readonly changes: readonly ProvisionalChange[];
  completed: number;
}

export type PendingRequest =
  | { readonly kind: 'parse' | 'close'; readonly change?: ProvisionalChange }
  | { readonly kind: 'bind' }
  /** `layout` set: the sidecar's own Describe for an Execute, answered to the sidecar only. */
  | { readonly kind: 'describe'; readonly layout?: ResultLayout }
  /** `layout` undefined: no masking was in force when the Execute was sent. */
  | {
      readonly kind: 'execute';
      readonly layout: ResultLayout | undefined;
      readonly timing: StatementTiming;
      readonly guardCopyOut?: boolean;
      /** A PREPARE sent through Parse runs here. */
      readonly prepares?: QueryPrepares;
    }
  | { readonly kind: 'sync' }
  /** A simple Query, or a FunctionCall: both end with ReadyForQuery. */
  | {
      readonly kind: 'query';
      readonly timing?: StatementTiming;
      readonly denial?: Denial;
      readonly prepares?: QueryPrepares;
      /** COPY output it may produce is withheld (see Judgement.guardCopyOut). */
      readonly guardCopyOut?: boolean;
      /** Set while masking is in force. */
      readonly outputs?: QueryOutputs;
    }
  /** The injected unparsable Parse standing in for a denied extended-protocol message. */
  | { readonly kind: 'denied'; readonly denial: Denial };

/** The result set being streamed, if any, and how to mask it. */
export interface ActiveResult {
  readonly fields: readonly RowField[];
  /** Per column: 'text' or 'binary'. */
  readonly formats: readonly ('text' | 'binary')[];
  readonly plan: ResultSetPlan;
  /** Per column, how its cells are masked; undefined for columns passed as they are. */
  readonly cells: readonly (CellMasking | undefined)[];
  /** The indexes of the columns that have a CellMasking, ascending. */
  readonly inspected: readonly number[];
}

/** Reverts what a request the server never processed would have changed. */
function undoOf(request: PendingRequest): (() => void) | undefined {
  if (request.kind === 'parse' || request.kind === 'close') return request.change?.undo;
  if ((request.kind === 'query' || request.kind === 'execute') && request.prepares) return () => undoUnfinishedPrepares(request.prepares!);
  return undefined;
}

/** A Query failed or was skipped: its PREPAREs without a PREPARE tag did not happen. */
export function undoUnfinishedPrepares(prepares: QueryPrepares): void {
  const { changes } = prepares;
  for (let index = changes.length - 1; index >= prepares.completed; index--) changes[index]!.undo();
  prepares.completed = changes.length;
}

export class PendingRequests {
  private readonly items: PendingRequest[] = [];
  private head_ = 0;
  /** The server is skipping to the next Sync; undos of what it skipped, in the order sent. */
  private skipped: (() => void)[] | undefined;

  push(request: PendingRequest): void {
    this.items.push(request);
  }

  get head(): PendingRequest | undefined {
    return this.items[this.head_];
  }

  get size(): number {
    return this.items.length - this.head_;
  }

  shift(): PendingRequest | undefined {
    const item = this.items[this.head_];
    if (item === undefined) return undefined;
    this.head_++;
    if (this.head_ === this.items.length) {
      // Drained (after every ReadyForQuery, typically): let go of the answered requests at once.
      this.items.length = 0;
      this.head_ = 0;
    } else if (this.head_ > 1024 && this.head_ * 2 > this.items.length) {
      // Compact now and then instead of Array.shift on every answer.
      this.items.splice(0, this.head_);
      this.head_ = 0;
    }
    return item;
  }

  /** An extended-protocol message failed: the server skips everything up to the next Sync. */
  failExtended(): void {
    this.skipped ??= [];
    while (this.head && this.head.kind !== 'sync') this.skipOne();
  }

  /**
   * ReadyForQuery ends everything up to and including the Sync, Query or FunctionCall it answers;
   * while skipping, only a Sync can be answered. What was skipped is undone, newest first, once
   * the whole skipped run is known (a change can only be undone after the ones made after it).
   */
  completeCycle(): void {
    const skipping = this.skipped !== undefined;
    for (let item = this.head; item; item = this.head) {
      if (item.kind === 'sync' || (item.kind === 'query' && !skipping)) {
        this.shift();
        break;
      }
      this.skipOne();
    }
    const undos = this.skipped ?? [];
    this.skipped = undefined;
    for (let index = undos.length - 1; index >= 0; index--) undos[index]!();
  }

  private skipOne(): void {
    const undo = undoOf(this.shift()!);
    if (undo) (this.skipped ??= []).push(undo);
  }
}

export function formatsFor(fields: readonly RowField[], resultFormats: readonly number[]): ('text' | 'binary')[] {
  // Bind's result formats: none = all text, one = applies to all, else one per column.
  return fields.map((field, index) => {
    const code = resultFormats.length === 0 ? field.format : resultFormats.length === 1 ? resultFormats[0] : resultFormats[index];
    return code === 1 ? 'binary' : 'text';
  });
}
