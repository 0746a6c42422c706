// Masking applied to server messages (DataRow, CopyData, notices and errors) and to what a
// recording keeps of client messages (statement text, parameters). Pure functions of the masker:
// the session decides when they apply, these decide what the bytes become.
import type { Masker, ColumnPlan } from '../../masking/masker.js';
import { encodeDataRow } from '../protocol/backend-encoders.js';
import { decodeBackendMessage } from '../protocol/backend-messages.js';
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

/** A DataRow with the cells its plan names masked; undefined when nothing changed. */
export function maskDataRow(masker: Masker, result: ActiveResult, frame: Frame): MaskedFrame | undefined {
  const message = decodeBackendMessage(frame);
  if (message.kind !== 'DataRow') return undefined;
  const { plan, formats, fields } = result;
  let masked = 0;
  const columns = message.columns.map((cell, index) => {
    const column = plan.columns[index];
    if (!column?.inspect) return cell;
    const outcome = masker.maskCell(column, cell, formats[index] ?? 'text', fields[index]?.typeOid ?? 0);
    masked += outcome.masked;
    return outcome.cell;
  });
  return masked === 0 ? undefined : { frame: encodeDataRow(columns), masked };
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
