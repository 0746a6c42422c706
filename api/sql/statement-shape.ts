// The cache key of a statement: its text with numeric literals replaced, so `... WHERE id = 1` and
// `... WHERE id = 2` share one classification (no number changes what a statement does). A small
// lexer that knows PostgreSQL's strings, quoted identifiers, dollar quotes and comments; on
// anything it is unsure of it gives up, and the exact text is the key.

// Every statement is shaped before its classification is looked up, so the lexer jumps from one
// place of interest to the next with a regular expression (see NEXT_TOKEN_OF_INTEREST) and looks
// at char codes, not one-character strings, where it stops.

const IDENTIFIER = 1;
/** Which ASCII characters can be part of an identifier; everything from 128 up can. */
const CHAR_CLASS = new Uint8Array(128);
for (let code = 0; code < 128; code += 1) {
  if ((code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95 || code === 36) CHAR_CLASS[code] = IDENTIFIER;
}

/** Letters, digits, `_`, `$` and non-ASCII; false for -1 (outside the text, see codeAt). */
function isIdentifierChar(code: number): boolean {
  return code >= 128 || (code >= 0 && (CHAR_CLASS[code]! & IDENTIFIER) !== 0);
}

/**
 * The char code at `index`, or -1 outside the text. Reading past either end with charCodeAt gives
 * NaN, and makes V8 throw away the optimised code that speculated it would not (the lexer looks one
 * character around a token, so it would, at the ends of statements).
 */
function codeAt(text: string, index: number): number {
  return index >= 0 && index < text.length ? text.charCodeAt(index) : -1;
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

const SINGLE_QUOTE = 0x27;
const DOUBLE_QUOTE = 0x22;
const DOLLAR = 0x24;
const DASH = 0x2d;
const SLASH = 0x2f;
const STAR = 0x2a;

/** End of a quoted run starting at `start` (the opening quote), doubled quotes escaping; -1 if open. */
function endOfQuoted(text: string, start: number, quote: string): number {
  let index = text.indexOf(quote, start + 1);
  while (index >= 0 && codeAt(text, index + 1) === text.charCodeAt(index)) index = text.indexOf(quote, index + 2);
  return index < 0 ? -1 : index + 1;
}

function endOfBlockComment(text: string, start: number): number {
  let depth = 0;
  for (let index = start; index < text.length - 1; index++) {
    const code = text.charCodeAt(index);
    if (code === SLASH && text.charCodeAt(index + 1) === STAR) {
      depth++;
      index++;
    } else if (code === STAR && text.charCodeAt(index + 1) === SLASH) {
      depth--;
      index++;
      if (depth === 0) return index + 1;
    }
  }
  return -1;
}

function endOfDollarQuote(text: string, start: number): number {
  const tagEnd = text.indexOf('$', start + 1);
  if (tagEnd < 0) return -1;
  const tag = text.slice(start, tagEnd + 1);
  if (!/^\$([A-Za-z_][A-Za-z0-9_]*)?\$$/.test(tag)) return -1;
  const close = text.indexOf(tag, tagEnd + 1);
  return close < 0 ? -1 : close + tag.length;
}

/** End of a numeric literal starting at `start`; -1 when it runs into letters (0x1F, 1_000, 1abc). */
function endOfNumber(text: string, start: number): number {
  let index = start;
  while (isDigit(codeAt(text, index))) index++;
  if (codeAt(text, index) === 0x2e && codeAt(text, index + 1) !== 0x2e) {
    index++;
    while (isDigit(codeAt(text, index))) index++;
  }
  const exponent = codeAt(text, index);
  if (exponent === 0x65 || exponent === 0x45) {
    const sign = codeAt(text, index + 1);
    const signed = sign === 0x2b || sign === DASH;
    if (isDigit(codeAt(text, index + (signed ? 2 : 1)))) {
      index += signed ? 2 : 1;
      while (isDigit(codeAt(text, index))) index++;
    }
  }
  return isIdentifierChar(codeAt(text, index)) ? -1 : index;
}

/**
 * Where the lexer has work to do: a quote, a `$`, a comment opener, or a digit that starts a token
 * (one after a letter, digit, `_` or `$` belongs to an identifier or parameter such as t1 or $1).
 * Everything between such places (words, spaces, operators) stays as it is, and the regular
 * expression engine skips it faster than a loop over char codes could.
 */
const NEXT_TOKEN_OF_INTEREST = /['"$]|--|\/\*|(?<![A-Za-z0-9_$\u0080-\uffff])[0-9]/g;

/** The text with numbers replaced by 0, or undefined when it cannot be lexed with certainty. */
export function statementShape(text: string): string | undefined {
  const length = text.length;
  const next = NEXT_TOKEN_OF_INTEREST;
  let shape = '';
  let copied = 0;
  next.lastIndex = 0;
  while (next.test(text)) {
    const found = next.lastIndex;
    // Every alternative is one character long except the two comment openers, which end in - or *.
    const last = text.charCodeAt(found - 1);
    const index = last === DASH || last === STAR ? found - 2 : found - 1;
    let end: number;
    if (last === SINGLE_QUOTE) {
      // E'...' strings give backslash a meaning this lexer does not model: keep the exact text.
      const previous = codeAt(text, index - 1);
      if (previous === 0x45 || previous === 0x65) return undefined;
      end = endOfQuoted(text, index, "'");
    } else if (last === DOUBLE_QUOTE) {
      end = endOfQuoted(text, index, '"');
    } else if (last === DASH) {
      const newline = text.indexOf('\n', index);
      end = newline < 0 ? length : newline;
    } else if (last === STAR) {
      end = endOfBlockComment(text, index);
    } else if (last === DOLLAR) {
      if (isDigit(codeAt(text, index + 1))) {
        // A parameter ($1): an identifier as far as this lexer is concerned.
        end = index + 1;
        while (end < length && isIdentifierChar(text.charCodeAt(end))) end++;
      } else if (isIdentifierChar(codeAt(text, index - 1))) {
        end = index + 1; // inside an identifier (a$b)
      } else {
        end = endOfDollarQuote(text, index);
      }
    } else {
      end = endOfNumber(text, index);
      if (end >= 0) {
        shape += `${text.slice(copied, index)}0`;
        copied = end;
      }
    }
    if (end < 0) return undefined;
    next.lastIndex = end;
  }
  return copied === 0 ? text : shape + text.slice(copied);
}
