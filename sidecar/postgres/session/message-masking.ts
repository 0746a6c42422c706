// Masking applied to server messages (DataRow, CopyData, notices and errors) and to what a
// recording keeps of client messages (statement text, parameters). Pure functions of the masker:
// the session decides when they apply, these decide what the bytes become.
import type { Masker, ColumnPlan } from '../../masking/masker.js';
import { encodeEditedDataRow } from '../protocol/backend-encoders.js';
import { DataRowEdits } from '../protocol/data-row-edits.js';
import type { FrameAllocator } from '../protocol/frame-batch.js';
import { DataRowCells, decodeBackendMessage } from '../protocol/backend-messages.js';
import type { Frame } from '../protocol/frame-splitter.js';
import { noticeFromFields, type PgNotice } from '../protocol/notice-fields.js';
import type { ActiveResult } from './pending-requests.js';

export interface MaskedFrame {
  readonly frame: Buffer;
  /** Values masked in it. */
  readonly masked: number;
}

/** Per masker (one per policy snapshot), planned once: it is asked for every recorded statement. */
const ANONYMOUS_PLANS = new WeakMap<Masker, ColumnPlan | null>();

/** The plan for text whose column is unknown (notices, COPY data, statements): detectors only. */
export function anonymousPlan(masker: Masker): ColumnPlan | undefined {
  if (!masker.active) return undefined;
  let plan = ANONYMOUS_PLANS.get(masker);
  if (plan === undefined) {
    const planned = masker.planColumn({ name: '' });
    plan = planned.inspect ? planned : null;
    ANONYMOUS_PLANS.set(masker, plan);
  }
  return plan ?? undefined;
}

/**
 * Masks DataRows: each row is read in place, only the cells its plan inspects are looked at, and a
 * row with masked cells is re-encoded in one allocation. Keeps scratch space from row to row, so a
 * session has its own.
 */
export class DataRowMasker {
  private readonly cells = new DataRowCells();
  private readonly edits = new DataRowEdits();

  /**
   * The row with the cells its result's plan names masked, written into memory from `into`;
   * undefined when nothing changed.
   */
  mask(result: ActiveResult, frame: Frame, into?: FrameAllocator): MaskedFrame | undefined {
    const { cells, edits } = this;
    const payload = frame.payload;
    cells.read(payload);
    edits.clear();
    let masked = 0;
    for (const index of result.inspected) {
      const length = index < cells.count ? cells.lengths[index]! : -1;
      // NULL is never masked.
      if (length < 0) continue;
      const start = cells.starts[index]!;
      const masking = result.cells[index]!;
      const outcome = masking.fixed ?? masking.mask(payload.subarray(start, start + length));
      if (outcome.masked === 0) continue;
      edits.add(index, outcome.cell);
      masked += outcome.masked;
    }
    return masked === 0 ? undefined : { frame: encodeEditedDataRow(payload, cells, edits, into), masked };
  }
}

const NOTICE_TEXT_FIELDS = ['message', 'detail', 'hint', 'where', 'internalQuery'] as const;

/** Server errors and notices may quote values (a duplicate key's card number): their text is masked. */
export function maskNoticeFrame(masker: Masker, frame: Frame, encode: (notice: PgNotice) => Buffer): Buffer | undefined {
  const plan = anonymousPlan(masker);
  if (!plan) return undefined;
  const message = decodeBackendMessage(frame);
  if (message.kind !== 'ErrorResponse' && message.kind !== 'NoticeResponse') return undefined;
  const notice = noticeFromFields(message.fields) as Record<string, string | undefined>;
  let changed = 0;
  for (const key of NOTICE_TEXT_FIELDS) {
    const value = notice[key];
    if (value === undefined) continue;
    const result = masker.maskValue(plan, value);
    if (result.masked > 0) {
      notice[key] = result.value;
      changed += result.masked;
    }
  }
  return changed > 0 ? encode(notice as PgNotice) : undefined;
}

/** A text or CSV CopyData frame with detected values masked; undefined when nothing changed. */
export function maskCopyDataFrame(masker: Masker, plan: ColumnPlan, frame: Frame): MaskedFrame | undefined {
  const result = masker.maskValue(plan, frame.payload.toString('latin1'));
  if (result.masked === 0) return undefined;
  const data = Buffer.from(result.value, 'latin1');
  const header = Buffer.allocUnsafe(5);
  header[0] = 0x64;
  header.writeInt32BE(data.length + 4, 1);
  return { frame: Buffer.concat([header, data]), masked: result.masked };
}

/** Text as a recording may keep it: detected values masked. */
export function maskForRecord(masker: Masker | undefined, text: string): string {
  const plan = masker ? anonymousPlan(masker) : undefined;
  return plan ? masker!.maskValue(plan, text).value : text;
}
