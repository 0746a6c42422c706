// SASLprep (RFC 4013) of a password before SCRAM, the way PostgreSQL does it on both ends: the
// server prepared the password this way when it stored the verifier, so a client that skips the
// step fails to log in whenever a non-ASCII password changes under normalisation (e.g. "Ⅸ" → "IX").
// Like libpq, a password that SASLprep prohibits is used unchanged rather than refused.

/** RFC 3454 C.1.2: non-ASCII spaces, mapped to U+0020. */
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/gu;
/** RFC 3454 B.1: characters commonly mapped to nothing. */
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu;
/**
 * RFC 3454 C.1.2, C.2.1, C.2.2, C.3 to C.9 (controls, private use, non-characters, surrogates,
 * display-changing and tagging characters), plus unassigned code points (A.1, approximated with
 * the current Unicode version's unassigned set, which is a subset of Unicode 3.2's).
 */
const PROHIBITED = new RegExp([
  '[\\u00A0\\u1680\\u2000-\\u200B\\u202F\\u205F\\u3000]',
  '[\\u0000-\\u001F\\u007F-\\u009F\\u06DD\\u070F\\u180E\\u200C-\\u200F\\u2028-\\u202E\\u2060-\\u2063\\u206A-\\u206F\\uFEFF\\uFFF9-\\uFFFD]',
  '[\\u{1D173}-\\u{1D17A}\\uE000-\\uF8FF\\u{F0000}-\\u{FFFFD}\\u{100000}-\\u{10FFFD}\\uFDD0-\\uFDEF\\uD800-\\uDFFF]',
  '[\\u0340\\u0341\\u2FF0-\\u2FFB\\u{E0001}\\u{E0020}-\\u{E007F}]',
  '\\p{Noncharacter_Code_Point}',
  '\\p{Cn}',
].join('|'), 'u');
/** Right-to-left characters (RFC 3454 D.1), approximated by the right-to-left scripts. */
const RIGHT_TO_LEFT = /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}]/u;
/** Left-to-right characters (RFC 3454 D.2), approximated by letters of the other scripts. */
const LEFT_TO_RIGHT = /(?![\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}])\p{L}/u;

/** The password as SCRAM must hash it. ASCII passes through untouched, as in PostgreSQL. */
export function saslprep(password: string): string {
  if (/^[\x00-\x7F]*$/.test(password)) return password;
  const prepared = password.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC');
  if (PROHIBITED.test(prepared) || !bidiAcceptable(prepared)) return password;
  return prepared;
}

/** RFC 3454 section 6: right-to-left text may not mix with left-to-right, and must start and end right-to-left. */
function bidiAcceptable(value: string): boolean {
  if (!RIGHT_TO_LEFT.test(value)) return true;
  const characters = [...value];
  return !LEFT_TO_RIGHT.test(value)
    && RIGHT_TO_LEFT.test(characters[0])
    && RIGHT_TO_LEFT.test(characters[characters.length - 1]);
}
