// Masking applied to server messages (DataRow, CopyData, notices and errors) and to what a
// recording keeps of client messages (statement text, parameters). Pure functions of the masker:
// the session decides when they apply, these decide what the bytes become.
import type { Masker, ColumnPlan } from '../../masking/masker.js';
import { encodeBackendMessage, encodeEditedDataRow } from '../protocol/backend-encoders.js';
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

/**
 * SQLSTATE classes whose texts name objects and states but never quote stored values: connection,
 * unsupported feature, transaction state, authorization, statement and cursor names, rollbacks
 * (serialization failure, deadlock), syntax and access rules, resources, program limits, object
 * state, operator intervention, system and configuration errors.
 */
const CLASSES_WITHOUT_VALUES: ReadonlySet<string> = new Set([
  '08', '0A', '0B', '0F', '0L', '0P', '0Z', '25', '26', '28', '2B', '2D', '34', '3B', '3D', '3F', '40', '42', '53', '54',
  '55', '57', '58', 'F0',
]);

/** Classes raised by code running in the database (RAISE, external routines, foreign data): any text. */
const CLASSES_OF_ROUTINES: ReadonlySet<string> = new Set(['P0', '38', '39', 'HV', '2F']);

export const WITHHELD_MESSAGE = 'gatehouse: message withheld: it may hold values of masked columns';
export const WITHHELD_DETAIL = 'gatehouse: detail withheld: it may quote values of masked columns';
const QUOTED = /"(?:[^"]|"")*"/g;

/**
 * A server error or notice with what may quote a masked column's value withheld, for sessions where
 * rules mask columns by name (values no detector recognises: a name, a diagnosis). PostgreSQL quotes
 * values in messages (`invalid input syntax for type integer: "Ada Lovelace"`) and lists them in
 * details (`Key (email)=(…)`, `Failing row contains (…)`) and contexts (`JSON data, line 1: …`).
 * Classes that never carry values pass whole; otherwise quoted text is redacted unless it is an
 * identifier the error names in its own fields (table, column, constraint), detail and context are
 * withheld, and a text raised by code in the database (RAISE in PL/pgSQL) is withheld whole.
 * Undefined when nothing changes.
 */
export function withholdQuotedValues(notice: PgNotice): PgNotice | undefined {
  const sqlClass = notice.code.slice(0, 2);
  if (CLASSES_WITHOUT_VALUES.has(sqlClass)) return undefined;
  const identifiers = new Set([notice.schema, notice.table, notice.column, notice.dataType, notice.constraint].filter((name) => name !== undefined).map((name) => `"${name!.replace(/"/g, '""')}"`));
  const redactQuoted = (text: string) => text.replace(QUOTED, (quoted) => (identifiers.has(quoted) ? quoted : '"[REDACTED]"'));
  const routine = CLASSES_OF_ROUTINES.has(sqlClass) || /\bPL\/\w+ function\b/.test(notice.where ?? '');
  const { where: _where, internalQuery: _query, internalPosition: _position, ...kept } = notice;
  const withheld: PgNotice = {
    ...kept,
    message: routine ? WITHHELD_MESSAGE : redactQuoted(notice.message),
    ...(notice.detail !== undefined ? { detail: WITHHELD_DETAIL } : {}),
    ...(notice.hint !== undefined ? { hint: routine ? WITHHELD_DETAIL : redactQuoted(notice.hint) } : {}),
  };
  const same = withheld.message === notice.message && withheld.detail === notice.detail && withheld.hint === notice.hint
    && notice.where === undefined && notice.internalQuery === undefined;
  return same ? undefined : withheld;
}

/**
 * A server error or notice as a client (and a recording) may see it: values of masked columns
 * withheld (withholdQuotedValues) when rules mask columns, detected values masked in every text.
 * Undefined when nothing changes.
 */
export function maskNotice(masker: Masker, notice: PgNotice): PgNotice | undefined {
  if (!masker.active) return undefined;
  let result = masker.masksColumns ? withholdQuotedValues(notice) : undefined;
  const plan = anonymousPlan(masker);
  if (plan) {
    const texts = { ...(result ?? notice) } as Record<string, string | undefined>;
    let changed = 0;
    for (const key of NOTICE_TEXT_FIELDS) {
      const value = texts[key];
      if (value === undefined) continue;
      const masked = masker.maskValue(plan, value);
      if (masked.masked > 0) {
        texts[key] = masked.value;
        changed += masked.masked;
      }
    }
    if (changed > 0) result = texts as PgNotice;
  }
  return result;
}

/** Server errors and notices may quote values (a duplicate key's card number): see maskNotice. */
export function maskNoticeFrame(masker: Masker, frame: Frame, encode: (notice: PgNotice) => Buffer): Buffer | undefined {
  const message = decodeBackendMessage(frame);
  if (message.kind !== 'ErrorResponse' && message.kind !== 'NoticeResponse') return undefined;
  const masked = maskNotice(masker, noticeFromFields(message.fields));
  return masked === undefined ? undefined : encode(masked);
}

/**
 * A NotificationResponse as a client may see it. Payloads are whatever the notifying session sent,
 * often a row a trigger serialised (`pg_notify('changed', row_to_json(NEW)::text)`): in a JSON payload,
 * members named like a column a rule masks get that rule's strategy (their table unknown, so a
 * `table.column` rule counts by the column's name), at any depth; then detected values are masked in
 * the whole text. Undefined when nothing changes.
 */
export function maskNotificationFrame(masker: Masker, frame: Frame): Buffer | undefined {
  if (!masker.active) return undefined;
  const message = decodeBackendMessage(frame);
  if (message.kind !== 'NotificationResponse') return undefined;
  let payload = masker.masksColumns ? maskJsonMembers(masker, message.payload) ?? message.payload : message.payload;
  const plan = anonymousPlan(masker);
  if (plan) payload = masker.maskValue(plan, payload).value;
  return payload === message.payload ? undefined : encodeBackendMessage({ ...message, payload });
}

/** A JSON text with the members a column rule names masked; undefined when it is not JSON or nothing changed. */
function maskJsonMembers(masker: Masker, text: string): string | undefined {
  const start = text.trimStart()[0];
  if (start !== '{' && start !== '[') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  let changed = false;
  const visit = (node: unknown, depth: number): unknown => {
    if (depth > 64 || typeof node !== 'object' || node === null) return node;
    if (Array.isArray(node)) return node.map((item) => visit(item, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [key, member] of Object.entries(node)) {
      const plan = member === null ? undefined : masker.planColumn({ name: key });
      if (plan?.strategy !== undefined) {
        out[key] = masker.maskValue(plan, typeof member === 'string' ? member : JSON.stringify(member)).value;
        changed = true;
      } else {
        out[key] = visit(member, depth + 1);
      }
    }
    return out;
  };
  const masked = visit(value, 0);
  return changed ? JSON.stringify(masked) : undefined;
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
