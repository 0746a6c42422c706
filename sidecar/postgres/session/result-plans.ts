// How a session's result sets are masked, by their RowDescription. Apps run the same few queries
// over and over, and a RowDescription's bytes decide the plan (given the session's column index and
// the masker in force), so a description seen recently is matched by its bytes instead of being
// decoded and planned again for every statement. The statement's output lineage is part of the key:
// `SELECT a || '' AS c` and `SELECT card_number || '' AS c` describe alike and mask differently.
import type { OutputLineage } from '../../../api/sql/output-lineage.js';
import type { Masker } from '../../masking/masker.js';
import { decodeBackendMessage, type RowField } from '../protocol/backend-messages.js';
import type { ReceivedFrame } from '../protocol/frame-splitter.js';
import { BackendType } from '../protocol/message-types.js';
import type { ActiveResult } from './pending-requests.js';

/** Rows of a result set no rule can touch (no masking in force, or no rows at all). */
export const PASS_THROUGH_RESULT: ActiveResult = { fields: [], formats: [], plan: { inspect: false, columns: [] }, cells: [], inspected: [] };

/** Distinct descriptions remembered; compared byte by byte, newest first. */
const RECENT_DESCRIPTIONS = 8;

interface RememberedPlan {
  /** A copy: holding a view would keep the whole socket read it came from alive. */
  readonly description: Buffer;
  /** Compared by identity: a statement shape's classification, and so its lineage, is cached once. */
  readonly lineage: OutputLineage | undefined;
  readonly result: ActiveResult;
}

export class ResultPlans {
  private masker: Masker | undefined;
  private readonly recent: RememberedPlan[] = [];

  /** @param plan plans the rows of a description's fields with the masker in force */
  constructor(private readonly plan: (masker: Masker, fields: readonly RowField[], lineage: OutputLineage | undefined) => ActiveResult) {}

  /** Forgets every plan: the session's column index changed. */
  reset(): void {
    this.recent.length = 0;
  }

  /** The plan for the rows a RowDescription (its payload) announces for a statement of that lineage. */
  forDescription(masker: Masker, description: Buffer, lineage: OutputLineage | undefined): ActiveResult {
    return this.forBytes(masker, description, 0, description.length, lineage);
  }

  /**
   * forDescription of a RowDescription frame, matched in place: one per result set, and most
   * are remembered, so no payload view is made unless it has to be planned.
   */
  forFrame(masker: Masker, frame: ReceivedFrame, lineage: OutputLineage | undefined): ActiveResult {
    return this.forBytes(masker, frame.source, frame.start + 5, frame.end, lineage);
  }

  /** The plan for the description in source[start, end). */
  private forBytes(masker: Masker, source: Buffer, start: number, end: number, lineage: OutputLineage | undefined): ActiveResult {
    if (!masker.active) return PASS_THROUGH_RESULT;
    if (masker !== this.masker) {
      // A new policy snapshot: plans made with the old one no longer hold.
      this.masker = masker;
      this.recent.length = 0;
    }
    for (let index = 0; index < this.recent.length; index += 1) {
      const entry = this.recent[index]!;
      if (entry.lineage === lineage && sameBytes(entry.description, source, start, end)) return this.promote(index).result;
    }
    const description = source.subarray(start, end);
    const result = this.plan(masker, fieldsOf(description), lineage);
    this.recent.unshift({ description: Buffer.from(description), lineage, result });
    if (this.recent.length > RECENT_DESCRIPTIONS) this.recent.pop();
    return result;
  }

  /** Moves a hit to the front, where the next lookup starts. */
  private promote(index: number): RememberedPlan {
    const entry = this.recent[index]!;
    if (index > 0) {
      this.recent.splice(index, 1);
      this.recent.unshift(entry);
    }
    return entry;
  }
}

/** Whether `remembered` holds the bytes source[start, end): a loop, as descriptions are short and a call into C++ costs more. */
function sameBytes(remembered: Buffer, source: Buffer, start: number, end: number): boolean {
  if (remembered.length !== end - start) return false;
  for (let index = 0; index < remembered.length; index += 1) {
    if (remembered[index] !== source[start + index]) return false;
  }
  return true;
}

function fieldsOf(description: Buffer): readonly RowField[] {
  const message = decodeBackendMessage({ type: BackendType.RowDescription, payload: description });
  return message.kind === 'RowDescription' ? message.fields : [];
}

