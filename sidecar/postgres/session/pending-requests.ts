// What the sidecar has sent upstream and still awaits answers to, in order. PostgreSQL answers
// messages strictly in the order it receives them, so a FIFO tells, for every server message, which
// client request it belongs to: which result set a DataRow is part of (for masking), which
// statement a CommandComplete ends (for the audit record), which error is a denial to rewrite.
import type { ResultSetPlan } from '../../masking/masker.js';
import type { RowField } from '../protocol/backend-messages.js';
import type { Denial } from './denial.js';

/** A prepared statement as the session knows it (Parse, or SQL PREPARE). */
export interface StatementRecord {
  readonly text: string;
  /** Filled when a Describe of the statement is answered. */
  fields?: readonly RowField[];
}

/** A bound portal: which statement, and the result formats the client asked for. */
export interface PortalRecord {
  readonly statement: StatementRecord;
  readonly resultFormats: readonly number[];
  /** Filled when a Describe of the portal is answered (formats then are the real ones). */
  fields?: readonly RowField[];
}

export interface StatementTiming {
  readonly text: string;
  readonly started: bigint;
}

export type PendingRequest =
  | { readonly kind: 'parse' | 'bind' | 'close' }
  | { readonly kind: 'describe'; readonly statement?: StatementRecord; readonly portal?: PortalRecord; readonly swallow: boolean }
  | { readonly kind: 'execute'; readonly portal: PortalRecord | undefined; readonly timing: StatementTiming }
  | { readonly kind: 'sync' }
  /** A simple Query, or a FunctionCall: both end with ReadyForQuery. */
  | { readonly kind: 'query'; readonly timing?: StatementTiming; readonly denial?: Denial }
  /** The injected unparsable Parse standing in for a denied extended-protocol message. */
  | { readonly kind: 'denied'; readonly denial: Denial };

/** The result set being streamed, if any, and how to mask it. */
export interface ActiveResult {
  readonly fields: readonly RowField[];
  /** Per column: 'text' or 'binary'. */
  readonly formats: readonly ('text' | 'binary')[];
  readonly plan: ResultSetPlan;
}

export class PendingRequests {
  private readonly items: PendingRequest[] = [];
  private head_ = 0;

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
    // Compact now and then instead of Array.shift on every answer.
    if (this.head_ > 1024 && this.head_ * 2 > this.items.length) {
      this.items.splice(0, this.head_);
      this.head_ = 0;
    }
    return item;
  }

  /** After an extended-protocol error the server skips to Sync: drop what it will not answer. */
  dropUntilSync(): void {
    while (this.head && this.head.kind !== 'sync' && this.head.kind !== 'query') this.shift();
  }

  /** ReadyForQuery ends everything up to and including the Sync, Query or FunctionCall it answers. */
  completeCycle(): void {
    for (let item = this.shift(); item; item = this.shift()) {
      if (item.kind === 'sync' || item.kind === 'query') return;
    }
  }
}

export function formatsFor(fields: readonly RowField[], resultFormats: readonly number[]): ('text' | 'binary')[] {
  // Bind's result formats: none = all text, one = applies to all, else one per column.
  return fields.map((field, index) => {
    const code = resultFormats.length === 0 ? field.format : resultFormats.length === 1 ? resultFormats[0] : resultFormats[index];
    return code === 1 ? 'binary' : 'text';
  });
}
