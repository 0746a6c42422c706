// Finds payment card numbers (PANs) in text: 13–19 digits written contiguously or in the printed
// groupings (4-4-4-4, 4-6-5, 4-4-4-4-3 …) with one consistent separator, Luhn-valid, and starting
// with an issuer prefix a card network has assigned. The prefix table is what keeps 16-digit order
// ids, epoch timestamps and snowflake ids (which start with 1 or 9) from being masked.
import { codeAt, isAlnum, isDigit } from './ascii-classes.js';
import type { SpanSink } from './detector-types.js';

interface IssuerRange {
  /** How many leading digits `from`/`to` describe. */
  readonly digits: number;
  readonly from: number;
  readonly to: number;
  readonly lengths: readonly number[];
}

const SIXTEEN_TO_NINETEEN = [16, 17, 18, 19];

// UATP (prefix 1) is left out on purpose: it would make every 15-digit id starting with 1 a "card".
const ISSUER_RANGES: readonly IssuerRange[] = [
  { digits: 1, from: 4, to: 4, lengths: [13, 16, 19] }, // Visa
  { digits: 2, from: 51, to: 55, lengths: [16] }, // Mastercard
  { digits: 4, from: 2221, to: 2720, lengths: [16] }, // Mastercard 2-series
  { digits: 2, from: 34, to: 34, lengths: [15] }, // American Express
  { digits: 2, from: 37, to: 37, lengths: [15] }, // American Express
  { digits: 4, from: 6011, to: 6011, lengths: SIXTEEN_TO_NINETEEN }, // Discover
  { digits: 3, from: 644, to: 649, lengths: SIXTEEN_TO_NINETEEN }, // Discover
  { digits: 2, from: 65, to: 65, lengths: SIXTEEN_TO_NINETEEN }, // Discover, RuPay
  { digits: 3, from: 300, to: 305, lengths: [14, 15, 16, 17, 18, 19] }, // Diners Club
  { digits: 4, from: 3095, to: 3095, lengths: SIXTEEN_TO_NINETEEN }, // Diners Club
  { digits: 2, from: 36, to: 36, lengths: [14, 15, 16, 17, 18, 19] }, // Diners Club
  { digits: 2, from: 38, to: 39, lengths: SIXTEEN_TO_NINETEEN }, // Diners Club
  { digits: 4, from: 3528, to: 3589, lengths: SIXTEEN_TO_NINETEEN }, // JCB
  { digits: 2, from: 62, to: 62, lengths: SIXTEEN_TO_NINETEEN }, // UnionPay
  { digits: 2, from: 81, to: 81, lengths: SIXTEEN_TO_NINETEEN }, // UnionPay
  { digits: 4, from: 2200, to: 2204, lengths: SIXTEEN_TO_NINETEEN }, // Mir
  { digits: 2, from: 60, to: 60, lengths: [16] }, // RuPay
  { digits: 3, from: 508, to: 508, lengths: [16] }, // RuPay
  { digits: 6, from: 506099, to: 506198, lengths: [16, 18, 19] }, // Verve
  ...[5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763].map(
    (prefix): IssuerRange => ({ digits: 4, from: prefix, to: prefix, lengths: [13, 14, 15, 16, 17, 18, 19] }), // Maestro
  ),
];

const MIN_DIGITS = 13;
const MAX_DIGITS = 19;
/** The most separated groups a printed card number has (4-4-4-4-3). */
const MAX_GROUPS = 5;
const SPACE = 0x20;
const DASH = 0x2d;

/** The first six digits of [start, end), skipping separators, as a number. */
function leadingSixDigits(text: string, start: number, end: number): number {
  let value = 0;
  let taken = 0;
  for (let index = start; index < end && taken < 6; index++) {
    const code = text.charCodeAt(index);
    if (!isDigit(code)) continue;
    value = value * 10 + (code - 0x30);
    taken++;
  }
  return value;
}

function hasIssuerPrefix(text: string, start: number, end: number, length: number): boolean {
  const six = leadingSixDigits(text, start, end);
  return ISSUER_RANGES.some((range) => {
    const prefix = Math.floor(six / 10 ** (6 - range.digits));
    return prefix >= range.from && prefix <= range.to && range.lengths.includes(length);
  });
}

export function passesLuhn(text: string, start: number, end: number): boolean {
  let sum = 0;
  let double = false;
  for (let index = end - 1; index >= start; index--) {
    const code = text.charCodeAt(index);
    if (!isDigit(code)) continue;
    let digit = code - 0x30;
    if (double) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
    double = !double;
  }
  return sum % 10 === 0;
}

function isCardNumber(text: string, start: number, end: number, digitCount: number): boolean {
  return (
    digitCount >= MIN_DIGITS &&
    digitCount <= MAX_DIGITS &&
    hasIssuerPrefix(text, start, end, digitCount) &&
    passesLuhn(text, start, end)
  );
}

/**
 * The last MAX_GROUPS digit groups of the current run, addressed backwards from the newest. Fixed
 * size, so memory stays constant however long a run of numbers is.
 */
class GroupWindow {
  private readonly starts = new Int32Array(MAX_GROUPS);
  private readonly lengths = new Int32Array(MAX_GROUPS);
  private readonly separators = new Int32Array(MAX_GROUPS);
  count = 0;

  push(start: number, length: number, separatorBefore: number): void {
    const slot = this.count % MAX_GROUPS;
    this.starts[slot] = start;
    this.lengths[slot] = length;
    this.separators[slot] = separatorBefore;
    this.count++;
  }

  /** Group `back` steps before the newest (0 = newest). */
  start(back: number): number {
    return this.starts[(this.count - 1 - back) % MAX_GROUPS]!;
  }

  length(back: number): number {
    return this.lengths[(this.count - 1 - back) % MAX_GROUPS]!;
  }

  separator(back: number): number {
    return this.separators[(this.count - 1 - back) % MAX_GROUPS]!;
  }
}

/**
 * The digit count of the newest `size` groups if they are laid out like a printed card number (the
 * first group has four digits, the middle groups four or six, the last one to six, one separator
 * throughout), or -1.
 */
function printedLayoutDigits(groups: GroupWindow, size: number): number {
  let digits = 0;
  for (let back = size - 1; back >= 0; back--) {
    const length = groups.length(back);
    const first = back === size - 1;
    const last = back === 0;
    if (first && length !== 4) return -1;
    if (!first && !last && length !== 4 && length !== 6) return -1;
    if (last && length > 6) return -1;
    if (!first && groups.separator(back) !== groups.separator(size - 2)) return -1;
    digits += length;
  }
  return digits;
}

/** Which ends of a run touch letters or a decimal point, so readings that include them are refused. */
interface RunEdges {
  readonly leftBlocked: boolean;
  readonly rightBlocked: boolean;
}

/** Checks every card-shaped reading that ends with the group just pushed. */
function checkNewestGroup(text: string, groups: GroupWindow, edges: RunEdges, lastInRun: boolean, emit: SpanSink): void {
  if (lastInRun && edges.rightBlocked) return;
  const end = groups.start(0) + groups.length(0);
  const largest = Math.min(MAX_GROUPS, groups.count - (edges.leftBlocked ? 1 : 0));
  if (largest >= 1 && isCardNumber(text, groups.start(0), end, groups.length(0))) emit(groups.start(0), end);
  for (let size = 2; size <= largest; size++) {
    const digits = printedLayoutDigits(groups, size);
    if (digits >= 0 && isCardNumber(text, groups.start(size - 1), end, digits)) emit(groups.start(size - 1), end);
  }
}

/** A number may not touch letters (hex ids, identifiers) or continue a decimal fraction (`3.4111…`). */
function runEdges(text: string, start: number, end: number): RunEdges {
  const before = codeAt(text, start - 1);
  const leftBlocked = isAlnum(before) || (before === 0x2e /* . */ && isDigit(codeAt(text, start - 2)));
  return { leftBlocked, rightBlocked: isAlnum(codeAt(text, end)) };
}

/** A run of digit groups joined by single spaces or dashes: where it ends and how many digits it has. */
interface DigitRun {
  readonly end: number;
  readonly digits: number;
}

function digitRun(text: string, start: number): DigitRun {
  let index = start;
  let digits = 0;
  for (;;) {
    while (isDigit(codeAt(text, index))) {
      index++;
      digits++;
    }
    const next = codeAt(text, index);
    if ((next === SPACE || next === DASH) && isDigit(codeAt(text, index + 1))) index++;
    else return { end: index, digits };
  }
}

function scanRun(text: string, start: number, end: number, emit: SpanSink): void {
  const groups = new GroupWindow();
  const edges = runEdges(text, start, end);
  let index = start;
  let separator = 0;
  while (index < end) {
    const groupStart = index;
    while (index < end && isDigit(text.charCodeAt(index))) index++;
    groups.push(groupStart, index - groupStart, separator);
    checkNewestGroup(text, groups, edges, index >= end, emit);
    separator = text.charCodeAt(index);
    index++;
  }
}

export function findCardNumbers(text: string, emit: SpanSink): void {
  let index = 0;
  while (index < text.length) {
    if (!isDigit(text.charCodeAt(index))) {
      index++;
      continue;
    }
    const run = digitRun(text, index);
    if (run.digits >= MIN_DIGITS) scanRun(text, index, run.end, emit);
    index = run.end;
  }
}
