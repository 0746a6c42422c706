// Finds US Social Security numbers written AAA-GG-SSSS, leaving out numbers the SSA never issues
// (area 000, 666 or 900–999, group 00, serial 0000). Undashed nine-digit numbers are not matched:
// too many ordinary ids look like them; mask such columns by name.
import { codeAt, isAlnum, isDigit } from './ascii-classes.js';
import type { SpanSink } from './detector-types.js';

const SSN_LENGTH = 11;
const DASH = 0x2d;

function digitsAt(text: string, start: number, count: number): number {
  let value = 0;
  for (let index = start; index < start + count; index++) {
    const code = codeAt(text, index);
    if (!isDigit(code)) return -1;
    value = value * 10 + (code - 0x30);
  }
  return value;
}

/** Neighbours that would make the match part of a longer token (`1-800-55-1234`, `x123-45-6789`). */
function isTokenCharacter(code: number): boolean {
  return isAlnum(code) || code === DASH;
}

function isSsnAt(text: string, start: number): boolean {
  if (codeAt(text, start + 3) !== DASH || codeAt(text, start + 6) !== DASH) return false;
  if (isTokenCharacter(codeAt(text, start - 1)) || isTokenCharacter(codeAt(text, start + SSN_LENGTH))) return false;
  const area = digitsAt(text, start, 3);
  const group = digitsAt(text, start + 4, 2);
  const serial = digitsAt(text, start + 7, 4);
  return area > 0 && area !== 666 && area < 900 && group > 0 && serial > 0;
}

export function findSsns(text: string, emit: SpanSink): void {
  // Every SSN has a dash at offset 3, so only dashes need a closer look.
  let dash = text.indexOf('-');
  while (dash !== -1) {
    const start = dash - 3;
    if (start >= 0 && isSsnAt(text, start)) {
      emit(start, start + SSN_LENGTH);
      dash = text.indexOf('-', start + SSN_LENGTH);
    } else {
      dash = text.indexOf('-', dash + 1);
    }
  }
}
