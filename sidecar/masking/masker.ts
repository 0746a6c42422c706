// The masking engine a proxy calls: compiled once from the masking rules of the policies that apply
// to a session, it plans each result column once (so result sets no rule touches pass through
// untouched) and masks values cell by cell. Protocol-independent at its core (`maskValue` on
// strings); `maskCell` adds what PostgreSQL wire values need (text/binary formats, type OIDs).
//
// Cells are handled as Latin-1 views of their bytes: lossless for any byte sequence, and since
// every detector matches ASCII only, bytes outside the replaced spans pass through unchanged in
// any ASCII-compatible client encoding (UTF-8, LATIN1, EUC-*). Work and memory per cell are linear
// in the cell and nothing is kept between cells or rows.
import { GatehouseError } from '../../api/errors.js';
import type { MaskingRuleT } from '../../api/kinds/kinds.js';
import { compileMaskingRules, type DetectorBinding, type ResultColumn } from './column-matcher.js';
import { DETECTOR_FINDERS, recogniseWholeValue, type DetectorName } from './detectors.js';
import {
  decodeBinaryNumber,
  isReadableJsonb,
  someBinaryArrayElement,
} from './postgres-binary-values.js';
import {
  acceptsReplacement,
  mayHoldDetectableValue,
  PG_TYPE,
  valueClass,
  type CellFormat,
  type ValueClass,
} from './postgres-value-classes.js';
import { mergeSpans, rewriteSpans, type MaskSpan } from './span-rewriting.js';
import {
  canonicalForHash,
  createValueHasher,
  isStronger,
  MIN_HASH_KEY_BYTES,
  partialMask,
  REDACTED,
  redactionMarker,
  type MaskingStrategy,
  type TextEncoding,
  type ValueHasher,
} from './strategies.js';

export type { ResultColumn } from './column-matcher.js';
export type { CellFormat } from './postgres-value-classes.js';

export interface MaskerOptions {
  /**
   * Per-deployment secret for strategy hash (at least 16 bytes). Required when a rule uses hash:
   * an unkeyed hash of a card number or SSN is reversible by enumeration.
   */
  readonly hashKey?: Uint8Array;
}

/** What to do with one column's values, decided once per result set. */
export interface ColumnPlan {
  /** Whether values need looking at; false means pass them through untouched. */
  readonly inspect: boolean;
  /** Strategy of the column rules naming this column: the whole value is masked. */
  readonly strategy: MaskingStrategy | undefined;
  /**
   * Detectors to scan with. With a column strategy, only those whose strategy is stronger: a hit
   * upgrades the whole-value masking to that strategy (the strongest applicable rule wins).
   */
  readonly detectors: readonly DetectorBinding[];
}

export interface ResultSetPlan {
  /** False when no column needs inspection: the proxy can forward the rows as they are. */
  readonly inspect: boolean;
  readonly columns: readonly ColumnPlan[];
}

export interface MaskedValue {
  readonly value: string;
  /** Spans replaced, or 1 for a value masked whole; 0 means `value` is the input unchanged. */
  readonly masked: number;
}

export interface MaskedCell {
  /** The cell to send: the input buffer itself when nothing was masked, or NULL. */
  readonly cell: Buffer | null;
  /** Spans replaced, or 1 for a cell masked whole or nulled; 0 means unchanged. */
  readonly masked: number;
}

/**
 * How the values of one result column are masked, worked out once per result set: the column's
 * plan bound to its type and format (see Masker.planCell).
 */
export interface CellMasking {
  /**
   * The outcome for every non-NULL value of the column, when it does not depend on the value (a
   * value redacted or nulled whole): the proxy can replace the cell without reading it.
   */
  readonly fixed: MaskedCell | undefined;
  /** The same as Masker.maskCell with this column's plan, format and type. */
  mask(cell: Buffer | null): MaskedCell;
}

export interface Masker {
  /** False when there are no rules at all: every result set passes through. */
  readonly active: boolean;
  /** Whether some rule masks columns by name (not only detected values). */
  readonly masksColumns: boolean;
  planColumn(column: ResultColumn): ColumnPlan;
  planResultSet(columns: readonly ResultColumn[]): ResultSetPlan;
  /** Masks a text value (protocol-independent: the value is text whatever its source type). */
  maskValue(plan: ColumnPlan, value: string): MaskedValue;
  /** Masks a PostgreSQL DataRow cell given its format and type OID (see postgres-value-classes.ts). */
  maskCell(plan: ColumnPlan, cell: Buffer | null, format: CellFormat, typeOid: number): MaskedCell;
  /** `plan` bound to a column's format and type; undefined when the column is not inspected. */
  planCell(plan: ColumnPlan, format: CellFormat, typeOid: number): CellMasking | undefined;
}

const PASS_THROUGH: ColumnPlan = { inspect: false, strategy: undefined, detectors: [] };

/** Hashing and encoding context shared by the text operations. */
interface TextMasking {
  readonly hasher: ValueHasher | undefined;
  readonly encoding: TextEncoding;
}

function requireHasher(context: TextMasking): ValueHasher {
  // createMasker refuses hash rules without a key, so this only guards against a foreign plan.
  if (context.hasher === undefined) throw new GatehouseError('GH_ERR_MASKING_HASH_KEY', { minimum: MIN_HASH_KEY_BYTES, length: 0 });
  return context.hasher;
}

function applyStrategy(text: string, strategy: MaskingStrategy, kind: DetectorName | undefined, context: TextMasking): string {
  switch (strategy) {
    case 'redact':
      return redactionMarker(kind);
    case 'hash':
      return requireHasher(context)(canonicalForHash(text, kind), context.encoding);
    case 'partial':
      return partialMask(text, kind);
  }
}

const NO_SPANS: MaskSpan[] = [];

/** What the plan's detectors find in `text`, merged; the shared empty list when nothing is found. */
function spansOf(text: string, detectors: readonly DetectorBinding[]): MaskSpan[] {
  let found: MaskSpan[] | undefined;
  for (const { detector, strategy } of detectors) {
    DETECTOR_FINDERS[detector](text, (start, end) => {
      (found ??= []).push({ start, end, detector, strategy });
    });
  }
  return found === undefined ? NO_SPANS : mergeSpans(found);
}

/** The replacement for a value masked whole by a column rule (after any upgrade by a detector hit). */
function maskWhole(text: string, plan: ColumnPlan, context: TextMasking): string {
  let strategy = plan.strategy ?? 'redact';
  for (const span of spansOf(text, plan.detectors)) {
    if (isStronger(span.strategy, strategy)) strategy = span.strategy;
  }
  if (strategy === 'redact') return REDACTED;
  const kind = recogniseWholeValue(text);
  return applyStrategy(kind === undefined ? text : text.trim(), strategy, kind, context);
}

/** Detector masking of text that may be rewritten in place. */
function maskSpans(text: string, plan: ColumnPlan, context: TextMasking, json: boolean): MaskedValue {
  const spans = spansOf(text, plan.detectors);
  if (spans.length === 0) return { value: text, masked: 0 };
  const replace = (span: MaskSpan): string =>
    applyStrategy(text.slice(span.start, span.end), span.strategy, span.detector, context);
  const rewritten = rewriteSpans(text, spans, replace, json);
  // Broken JSON structure: mask the whole document instead, which always parses.
  return { value: rewritten ?? JSON.stringify(REDACTED), masked: spans.length };
}

function maskText(text: string, plan: ColumnPlan, context: TextMasking, json: boolean): MaskedValue {
  if (plan.strategy === undefined) return maskSpans(text, plan, context, json);
  const whole = maskWhole(text, plan, context);
  return { value: json ? JSON.stringify(whole) : whole, masked: 1 };
}

// ── PostgreSQL cells ────────────────────────────────────────────────────────────────────────────

const NULLED: MaskedCell = { cell: null, masked: 1 };

function unchanged(cell: Buffer | null): MaskedCell {
  return { cell, masked: 0 };
}

function hasDetection(text: string, plan: ColumnPlan): boolean {
  return spansOf(text, plan.detectors).length > 0;
}

/** How a cell's bytes hold text that may be rewritten in place. */
interface TextPayload {
  /** Bytes before the text (jsonb's binary version byte), kept as they are. */
  readonly prefixLength: number;
  readonly json: boolean;
}

const PLAIN_TEXT: TextPayload = { prefixLength: 0, json: false };
const JSON_TEXT: TextPayload = { prefixLength: 0, json: true };
const JSONB_BINARY: TextPayload = { prefixLength: 1, json: true };

/** The text payload of a cell, or undefined when its bytes are not text we may rewrite. */
function textPayloadOf(cell: Buffer, cellClass: ValueClass, format: CellFormat, typeOid: number): TextPayload | undefined {
  if (cellClass === 'text' || cellClass === 'text-array') return PLAIN_TEXT;
  if (cellClass !== 'json') return undefined;
  if (format === 'text' || typeOid !== PG_TYPE.jsonb) return JSON_TEXT;
  return isReadableJsonb(cell) ? JSONB_BINARY : undefined;
}

// A value redacted whole by its column becomes the same marker whatever it holds (no detector is
// stronger than redact, so none can change that): its bytes are made once, not per cell. Shared,
// so nothing may write into them.
const REDACTED_TEXT_CELL: MaskedCell = { cell: Buffer.from(REDACTED, 'latin1'), masked: 1 };
const REDACTED_JSON_CELL: MaskedCell = { cell: Buffer.from(JSON.stringify(REDACTED), 'latin1'), masked: 1 };

function redactedWhole(cell: Buffer, payload: TextPayload): MaskedCell {
  const marker = payload.json ? REDACTED_JSON_CELL : REDACTED_TEXT_CELL;
  if (payload.prefixLength === 0) return marker;
  return { cell: Buffer.concat([cell.subarray(0, payload.prefixLength), marker.cell!]), masked: 1 };
}

function maskTextPayload(cell: Buffer, payload: TextPayload, plan: ColumnPlan, context: TextMasking): MaskedCell {
  if (plan.strategy === 'redact') return redactedWhole(cell, payload);
  const result = maskText(cell.toString('latin1', payload.prefixLength), plan, context, payload.json);
  if (result.masked === 0) return unchanged(cell);
  const masked = Buffer.from(result.value, 'latin1');
  const prefix = cell.subarray(0, payload.prefixLength);
  return { cell: payload.prefixLength === 0 ? masked : Buffer.concat([prefix, masked]), masked: result.masked };
}

/** The text detectors should see in a value that is nulled, not rewritten, on a hit. */
function scannableText(cell: Buffer, cellClass: ValueClass, format: CellFormat, typeOid: number): string {
  if (cellClass === 'number') return decodeBinaryNumber(typeOid, cell) ?? cell.toString('latin1');
  const text = cell.toString('latin1');
  // bytea's text format is hex by default; what it encodes is what may be sensitive.
  if (cellClass === 'bytea' && format === 'text' && text.startsWith('\\x')) {
    return Buffer.from(text.slice(2), 'hex').toString('latin1');
  }
  return text;
}

function binaryArrayHasDetection(cell: Buffer, plan: ColumnPlan): boolean {
  const found = someBinaryArrayElement(cell, (elementOid, element) => {
    const elementClass = valueClass(elementOid, 'binary');
    if (elementClass === 'inert') return false;
    const payload = elementOid === PG_TYPE.jsonb && isReadableJsonb(element) ? element.subarray(1) : element;
    return hasDetection(scannableText(payload, elementClass, 'binary', elementOid), plan);
  });
  // Malformed array bytes: scan them raw rather than let anything through unseen.
  return found ?? hasDetection(cell.toString('latin1'), plan);
}

/** What maskTypedCell makes of any non-NULL cell of this class, when that does not depend on the bytes. */
function fixedOutcome(plan: ColumnPlan, format: CellFormat, typeOid: number): MaskedCell | undefined {
  if (plan.strategy === undefined) return undefined; // detectors: it depends on what they find
  const cellClass = valueClass(typeOid, format);
  if (!acceptsReplacement(cellClass)) return NULLED;
  if (plan.strategy !== 'redact') return undefined; // hash and partial keep something of the value
  if (cellClass === 'text') return REDACTED_TEXT_CELL;
  // jsonb's binary form is nulled instead when its version byte is unknown.
  return format === 'binary' && typeOid === PG_TYPE.jsonb ? undefined : REDACTED_JSON_CELL;
}

function maskTypedCell(cell: Buffer, plan: ColumnPlan, format: CellFormat, typeOid: number, context: TextMasking): MaskedCell {
  const cellClass = valueClass(typeOid, format);
  const payload = textPayloadOf(cell, cellClass, format, typeOid);
  if (plan.strategy !== undefined) {
    // A whole-value replacement needs a type that takes any text (a text array does not).
    return payload !== undefined && acceptsReplacement(cellClass) ? maskTextPayload(cell, payload, plan, context) : NULLED;
  }
  if (cellClass === 'inert') return unchanged(cell);
  if (payload !== undefined) return maskTextPayload(cell, payload, plan, context);
  const hit =
    cellClass === 'binary-array'
      ? binaryArrayHasDetection(cell, plan)
      : hasDetection(scannableText(cell, cellClass, format, typeOid), plan);
  return hit ? NULLED : unchanged(cell);
}

// ── planning ────────────────────────────────────────────────────────────────────────────────────

export function createMasker(rules: readonly MaskingRuleT[], options: MaskerOptions = {}): Masker {
  const matcher = compileMaskingRules(rules);
  const hasher = options.hashKey === undefined ? undefined : createValueHasher(options.hashKey);
  if (hasher === undefined && matcher.strategies.has('hash')) {
    throw new GatehouseError('GH_ERR_MASKING_HASH_KEY', { minimum: MIN_HASH_KEY_BYTES, length: 0 });
  }
  const strings: TextMasking = { hasher, encoding: 'utf8' };
  const bytes: TextMasking = { hasher, encoding: 'latin1' };
  const active = matcher.hasColumnRules || matcher.detectors.length > 0;

  const planColumn = (column: ResultColumn): ColumnPlan => {
    if (!active) return PASS_THROUGH;
    const { strategy, detectors } = matcher.match(column);
    if (strategy !== undefined) {
      return { inspect: true, strategy, detectors: detectors.filter((binding) => isStronger(binding.strategy, strategy)) };
    }
    if (detectors.length === 0 || !mayHoldDetectableValue(column.typeOid)) return PASS_THROUGH;
    return { inspect: true, strategy: undefined, detectors };
  };

  return {
    active,
    masksColumns: matcher.hasColumnRules,
    planColumn,
    planResultSet(columns) {
      const plans = columns.map(planColumn);
      return { inspect: plans.some((plan) => plan.inspect), columns: plans };
    },
    maskValue(plan, value) {
      return plan.inspect ? maskText(value, plan, strings, false) : { value, masked: 0 };
    },
    maskCell(plan, cell, format, typeOid) {
      if (cell === null || !plan.inspect) return unchanged(cell);
      return maskTypedCell(cell, plan, format, typeOid, bytes);
    },
    planCell(plan, format, typeOid) {
      if (!plan.inspect) return undefined;
      return {
        fixed: fixedOutcome(plan, format, typeOid),
        mask: (cell) => (cell === null ? unchanged(cell) : maskTypedCell(cell, plan, format, typeOid, bytes)),
      };
    },
  };
}
