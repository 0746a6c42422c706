// Finds email addresses: an RFC 5322 dot-atom local part, `@`, and a domain of at least two labels
// whose last label (the TLD) is alphabetic. Scanning starts only at `@`, and every character is
// looked at at most twice (once as a domain, once as the next local part), so long text stays linear.
import { isAlnum, isLetter } from './ascii-classes.js';
import type { SpanSink } from './detector-types.js';

/** RFC 5322 atext plus the dot: characters a local part may contain. */
const LOCAL_PART = new Uint8Array(128);
for (const char of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~.") {
  LOCAL_PART[char.charCodeAt(0)] = 1;
}

/** Leading characters that quote an address far more often than they begin one. */
const LOCAL_PART_QUOTES = new Set([0x27 /* ' */, 0x60 /* ` */, 0x2e /* . */]);

/**
 * "Top-level domains" that are really file extensions (`icon@2x.png`, `logo@3x.svg`); none of them
 * is a delegated TLD, so skipping them costs no real address.
 */
export const FILE_EXTENSION_TLDS: ReadonlySet<string> = new Set([
  'png', 'jpg', 'jpeg', 'gif', 'svg', 'webp', 'bmp', 'ico', 'tif', 'tiff', 'pdf', 'txt', 'css', 'js', 'mjs',
  'json', 'xml', 'yaml', 'yml', 'csv', 'log', 'html', 'htm', 'lock', 'wasm',
]);

const DOT = 0x2e;
const DASH = 0x2d;

function isLocalPartCharacter(code: number): boolean {
  return code < 128 && LOCAL_PART[code] === 1;
}

function isDomainCharacter(code: number): boolean {
  return isAlnum(code) || code === DASH || code === DOT;
}

/** Start of the local part ending just before `at`, never reaching back past `floor`. */
function localPartStart(text: string, at: number, floor: number): number {
  let start = at;
  while (start > floor && isLocalPartCharacter(text.charCodeAt(start - 1))) start--;
  let unquoted = start;
  while (unquoted < at && LOCAL_PART_QUOTES.has(text.charCodeAt(unquoted))) unquoted++;
  // A local part made only of such characters is still one: keep it all rather than leak it.
  return unquoted < at ? unquoted : start;
}

function isAlphabetic(text: string, start: number, end: number): boolean {
  for (let index = start; index < end; index++) {
    if (!isLetter(text.charCodeAt(index))) return false;
  }
  return true;
}

/** End of the run of domain characters from `from`, stopping before an empty label (`..`). */
function domainRunEnd(text: string, from: number): number {
  let end = from;
  while (end < text.length) {
    const code = text.charCodeAt(end);
    if (!isDomainCharacter(code) || (code === DOT && text.charCodeAt(end - 1) === DOT)) break;
    end++;
  }
  return end;
}

function lastDotBetween(text: string, from: number, end: number): number {
  for (let index = end - 1; index > from; index--) {
    if (text.charCodeAt(index) === DOT) return index;
  }
  return -1;
}

/**
 * End of the domain starting at `from`, or -1: trailing dots and dashes (sentence punctuation) are
 * dropped, and labels are dropped from the right until the last one is an alphabetic TLD.
 */
function domainEnd(text: string, from: number): number {
  let end = domainRunEnd(text, from);
  for (;;) {
    while (end > from && (text.charCodeAt(end - 1) === DOT || text.charCodeAt(end - 1) === DASH)) end--;
    const lastDot = lastDotBetween(text, from, end);
    if (lastDot === -1) return -1;
    if (end - lastDot - 1 >= 2 && isAlphabetic(text, lastDot + 1, end)) {
      return FILE_EXTENSION_TLDS.has(text.slice(lastDot + 1, end).toLowerCase()) ? -1 : end;
    }
    end = lastDot;
  }
}

export function findEmails(text: string, emit: SpanSink): void {
  let floor = 0;
  let at = text.indexOf('@');
  while (at !== -1) {
    const start = localPartStart(text, at, floor);
    const end = start < at ? domainEnd(text, at + 1) : -1;
    if (end > 0) {
      emit(start, end);
      floor = end;
      at = text.indexOf('@', end);
    } else {
      at = text.indexOf('@', at + 1);
    }
  }
}
