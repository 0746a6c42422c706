// Finds IBANs, compact (DE89370400440532013000) or printed in groups of four
// (DE89 3704 0044 0532 0130 00): a registered country code, that country's exact length, and the
// ISO 7064 mod-97 check that catches every single-character error.
import { codeAt, isAlnum, isDigit, isLetter } from './ascii-classes.js';
import type { SpanSink } from './detector-types.js';

/** IBAN length per country, from the SWIFT IBAN registry. */
const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BI: 27, BR: 29, BY: 28,
  CH: 21, CR: 22, CY: 28, CZ: 24, DE: 22, DJ: 27, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18,
  FK: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HN: 28, HR: 21, HU: 28,
  IE: 22, IL: 23, IQ: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20,
  LU: 20, LV: 21, LY: 25, MC: 27, MD: 24, ME: 22, MK: 19, MN: 20, MR: 27, MT: 31, MU: 30, NI: 28,
  NL: 18, NO: 15, OM: 23, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29, RO: 24, RS: 22, RU: 33, SA: 24,
  SC: 31, SD: 18, SE: 24, SI: 19, SK: 24, SM: 27, SO: 23, ST: 25, SV: 28, TL: 23, TN: 24, TR: 26,
  UA: 29, VA: 22, VG: 24, XK: 20, YE: 30,
};

/** The same table indexed by the two letters (A=0 … Z=25), so the scan never builds a string. */
const LENGTH_BY_CODE: Uint8Array = (() => {
  const table = new Uint8Array(26 * 26);
  for (const [country, length] of Object.entries(IBAN_LENGTHS)) {
    table[(country.charCodeAt(0) - 0x41) * 26 + (country.charCodeAt(1) - 0x41)] = length;
  }
  return table;
})();

const SHORTEST_IBAN = 15;
const SPACE = 0x20;

function letterIndex(code: number): number {
  return (code | 0x20) - 0x61; // case-insensitive: 'A' and 'a' are both 0
}

function countryLength(text: string, start: number): number {
  return LENGTH_BY_CODE[letterIndex(text.charCodeAt(start)) * 26 + letterIndex(text.charCodeAt(start + 1))]!;
}

/** End of a compact IBAN of `length` characters starting at `start`, or -1. */
function compactEnd(text: string, start: number, length: number): number {
  for (let index = start + 4; index < start + length; index++) {
    if (!isAlnum(codeAt(text, index))) return -1;
  }
  return isAlnum(codeAt(text, start + length)) ? -1 : start + length;
}

/** End of an IBAN printed in space-separated groups of four, or -1. */
function groupedEnd(text: string, start: number, length: number): number {
  let index = start + 4;
  let counted = 4;
  while (counted < length) {
    if (codeAt(text, index) !== SPACE) return -1;
    index++;
    const groupLength = Math.min(4, length - counted);
    for (const groupEnd = index + groupLength; index < groupEnd; index++) {
      if (!isAlnum(codeAt(text, index))) return -1;
    }
    counted += groupLength;
  }
  return isAlnum(codeAt(text, index)) ? -1 : index;
}

function mod97Step(remainder: number, code: number): number {
  if (isDigit(code)) return (remainder * 10 + (code - 0x30)) % 97;
  return (remainder * 100 + letterIndex(code) + 10) % 97;
}

/** ISO 13616 check: move the first four characters to the end, read letters as 10–35, mod 97 is 1. */
export function ibanChecksumValid(text: string, start: number, end: number): boolean {
  let remainder = 0;
  for (let index = start + 4; index < end; index++) {
    const code = text.charCodeAt(index);
    if (code !== SPACE) remainder = mod97Step(remainder, code);
  }
  for (let index = start; index < start + 4; index++) remainder = mod97Step(remainder, text.charCodeAt(index));
  return remainder === 1;
}

function ibanEndAt(text: string, start: number): number {
  const c0 = text.charCodeAt(start);
  const c1 = text.charCodeAt(start + 1);
  if (!isLetter(c0) || !isLetter(c1) || !isDigit(text.charCodeAt(start + 2)) || !isDigit(text.charCodeAt(start + 3))) {
    return -1;
  }
  if (isAlnum(codeAt(text, start - 1))) return -1;
  const length = countryLength(text, start);
  if (length === 0) return -1;
  const end = codeAt(text, start + 4) === SPACE ? groupedEnd(text, start, length) : compactEnd(text, start, length);
  return end > 0 && ibanChecksumValid(text, start, end) ? end : -1;
}

export function findIbans(text: string, emit: SpanSink): void {
  const lastStart = text.length - SHORTEST_IBAN;
  for (let start = 0; start <= lastStart; start++) {
    const end = ibanEndAt(text, start);
    if (end > 0) {
      emit(start, end);
      start = end - 1;
    }
  }
}
