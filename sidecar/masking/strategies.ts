// The three masking strategies a rule can ask for, as pure functions of the value:
//   redact  — a fixed bracketed marker, `[REDACTED]` or `[REDACTED:<detector>]`;
//   hash    — `[HASH:<20 hex>]`, a truncated HMAC-SHA-256 under a per-deployment key, so equal values
//             stay equal (joins, GROUP BY, counting distinct) but nothing is reversible without the key;
//   partial — keeps what people need to recognise a value (last 4 of a card or SSN, first letter and
//             domain of an email) and nothing of a secret.
// Every output is ASCII without quotes, backslashes, commas, braces or whitespace (beyond what a
// partial keeps from the value), so it is valid in any ASCII-compatible client encoding and can be
// spliced into JSON strings and array literals without escaping.
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { MASKING_STRATEGIES } from '../../api/kinds/vocabulary.js';
import { GatehouseError } from '../../api/errors.js';
import { isAlnum, isDigit } from './ascii-classes.js';
import type { DetectorName } from './detector-types.js';

export type MaskingStrategy = (typeof MASKING_STRATEGIES)[number];

const STRENGTH: Readonly<Record<MaskingStrategy, number>> = { partial: 1, hash: 2, redact: 3 };

export function isMaskingStrategy(value: string): value is MaskingStrategy {
  return (MASKING_STRATEGIES as readonly string[]).includes(value);
}

/** redact > hash > partial: what stays of the value shrinks from some, to a pseudonym, to nothing. */
export function isStronger(candidate: MaskingStrategy, than: MaskingStrategy | undefined): boolean {
  return than === undefined || STRENGTH[candidate] > STRENGTH[than];
}

export function strongest(a: MaskingStrategy | undefined, b: MaskingStrategy): MaskingStrategy {
  return isStronger(b, a) ? b : (a ?? b);
}

// ── redact ──────────────────────────────────────────────────────────────────────────────────────

export const REDACTED = '[REDACTED]';

/** Naming the detector tells a reader why a value vanished without saying anything about it. */
export function redactionMarker(detector?: DetectorName): string {
  return detector === undefined ? REDACTED : `[REDACTED:${detector}]`;
}

// ── hash ────────────────────────────────────────────────────────────────────────────────────────

/** 128 bits: shorter keys make brute-forcing the small space of card numbers or SSNs practical. */
export const MIN_HASH_KEY_BYTES = 16;
/** 80 bits of the HMAC: collisions stay negligible (birthday bound ~10^12 values) at a readable width. */
const HASH_HEX_LENGTH = 20;

/** How a string maps back to the bytes that were hashed: a JS string, or a Latin-1 view of raw bytes. */
export type TextEncoding = 'utf8' | 'latin1';

export type ValueHasher = (text: string, encoding: TextEncoding) => string;

export function createValueHasher(key: Uint8Array): ValueHasher {
  if (key.byteLength < MIN_HASH_KEY_BYTES) {
    throw new GatehouseError('GH_ERR_MASKING_HASH_KEY', { minimum: MIN_HASH_KEY_BYTES, length: key.byteLength });
  }
  // A KeyObject holds its own copy: later changes to the caller's buffer cannot change the hashes.
  const secret: KeyObject = createSecretKey(Buffer.from(key));
  return (text, encoding) => {
    const digest = createHmac('sha256', secret).update(text, encoding).digest('hex');
    return `[HASH:${digest.slice(0, HASH_HEX_LENGTH)}]`;
  };
}

function keepCharacters(text: string, keep: (code: number) => boolean): string {
  let kept = '';
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (keep(code)) kept += text[index];
  }
  return kept;
}

/**
 * The form a value is hashed in, so that one card number hashes the same whether printed with
 * spaces, found inside a sentence, or stored bare in a column masked by name.
 */
export function canonicalForHash(text: string, kind: DetectorName | undefined): string {
  switch (kind) {
    case 'credit-card':
    case 'us-ssn':
      return keepCharacters(text, isDigit);
    case 'iban':
      return keepCharacters(text, isAlnum).toUpperCase();
    case 'email':
      return text.toLowerCase();
    default:
      return text;
  }
}

// ── partial ─────────────────────────────────────────────────────────────────────────────────────

const MASK = '*';
/** Fixed width, so a partial value does not reveal how long the original was. */
const GENERIC_MASK = '****';
/** Below this length, four kept characters would be too much of the value: mask it all. */
const GENERIC_MIN_LENGTH_TO_KEEP = 12;
const KEEP_LAST = 4;

/** Well-known credential prefixes: they say what leaked without saying anything secret. */
const CREDENTIAL_PREFIXES = ['github_pat_', 'AKIA', 'ASIA', 'AIza', 'ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_', 'xoxa-', 'xoxb-', 'xoxp-', 'xoxr-', 'xoxs-'];

/** Masks letters and digits except the first `keepFirst` and last `keepLast`; separators stay. */
function maskAlnumExcept(text: string, keepFirst: number, keepLast: number): string {
  let total = 0;
  for (let index = 0; index < text.length; index++) if (isAlnum(text.charCodeAt(index))) total++;
  let seen = 0;
  let masked = '';
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!;
    if (!isAlnum(text.charCodeAt(index))) {
      masked += char;
      continue;
    }
    masked += seen < keepFirst || seen >= total - keepLast ? char : MASK;
    seen++;
  }
  return masked;
}

function partialEmail(text: string): string {
  const at = text.lastIndexOf('@');
  if (at <= 0) return genericPartial(text);
  const first = isAlnum(text.charCodeAt(0)) ? text[0]! : MASK;
  return `${first}***${text.slice(at)}`;
}

function partialCredential(text: string): string {
  const prefix = CREDENTIAL_PREFIXES.find((candidate) => text.startsWith(candidate));
  return `${prefix ?? ''}${GENERIC_MASK}`;
}

/** Whether a kept tail starting here would begin mid-character (UTF-8 continuation byte or low surrogate). */
function isInsideCharacter(code: number): boolean {
  return (code >= 0x80 && code <= 0xbf) || (code >= 0xdc00 && code <= 0xdfff);
}

/** Keeps the last four characters of long values and masks short ones entirely. */
export function genericPartial(text: string): string {
  const trimmed = text.trimEnd();
  if (trimmed.length < GENERIC_MIN_LENGTH_TO_KEEP) return GENERIC_MASK;
  let tailStart = trimmed.length - KEEP_LAST;
  while (tailStart < trimmed.length && isInsideCharacter(trimmed.charCodeAt(tailStart))) tailStart++;
  return GENERIC_MASK + trimmed.slice(tailStart);
}

/** The partial form of `text`, shaped by what it is when a detector recognised it. */
export function partialMask(text: string, kind: DetectorName | undefined): string {
  switch (kind) {
    case 'credit-card':
    case 'us-ssn':
      return maskAlnumExcept(text, 0, KEEP_LAST);
    case 'iban':
      return maskAlnumExcept(text, 2, KEEP_LAST);
    case 'email':
      return partialEmail(text);
    case 'cloud-access-key':
      return partialCredential(text);
    case 'jwt':
    case 'private-key':
      // A partial secret is still a leak: nothing of it is kept.
      return redactionMarker(kind);
    default:
      return genericPartial(text);
  }
}
