// The cache key of a statement: its text with numeric literals replaced, so `... WHERE id = 1` and
// `... WHERE id = 2` share one classification (no number changes what a statement does). A small
// lexer that knows PostgreSQL's strings, quoted identifiers, dollar quotes and comments; on
// anything it is unsure of it gives up, and the exact text is the key.

function isIdentifierChar(code: number): boolean {
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95 || code === 36 || code >= 128;
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

/** End of a quoted run starting at `start` (the opening quote), doubled quotes escaping; -1 if open. */
function endOfQuoted(text: string, start: number, quote: string): number {
  for (let index = start + 1; index < text.length; index++) {
    if (text[index] !== quote) continue;
    if (text[index + 1] === quote) {
      index++;
      continue;
    }
    return index + 1;
  }
  return -1;
}

function endOfBlockComment(text: string, start: number): number {
  let depth = 0;
  for (let index = start; index < text.length - 1; index++) {
    if (text[index] === '/' && text[index + 1] === '*') {
      depth++;
      index++;
    } else if (text[index] === '*' && text[index + 1] === '/') {
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
  while (isDigit(text.charCodeAt(index))) index++;
  if (text[index] === '.' && text[index + 1] !== '.') {
    index++;
    while (isDigit(text.charCodeAt(index))) index++;
  }
  if ((text[index] === 'e' || text[index] === 'E') && /^[eE][+-]?[0-9]/.test(text.slice(index, index + 3))) {
    index += text[index + 1] === '+' || text[index + 1] === '-' ? 2 : 1;
    while (isDigit(text.charCodeAt(index))) index++;
  }
  return isIdentifierChar(text.charCodeAt(index)) ? -1 : index;
}

/** The text with numbers replaced by 0, or undefined when it cannot be lexed with certainty. */
export function statementShape(text: string): string | undefined {
  let shape = '';
  let copied = 0;
  let index = 0;
  while (index < text.length) {
    const char = text[index]!;
    const code = text.charCodeAt(index);
    let end = index + 1;
    if (char === "'") {
      // E'...' strings give backslash a meaning this lexer does not model: keep the exact text.
      if (index > 0 && (text[index - 1] === 'E' || text[index - 1] === 'e')) return undefined;
      end = endOfQuoted(text, index, "'");
    } else if (char === '"') {
      end = endOfQuoted(text, index, '"');
    } else if (char === '-' && text[index + 1] === '-') {
      const newline = text.indexOf('\n', index);
      end = newline < 0 ? text.length : newline;
    } else if (char === '/' && text[index + 1] === '*') {
      end = endOfBlockComment(text, index);
    } else if (char === '$' && !isDigit(text.charCodeAt(index + 1))) {
      if (index > 0 && isIdentifierChar(text.charCodeAt(index - 1))) end = index + 1;
      else end = endOfDollarQuote(text, index);
    } else if (isIdentifierChar(code) && !isDigit(code)) {
      while (end < text.length && isIdentifierChar(text.charCodeAt(end))) end++;
    } else if (isDigit(code) && !(index > 0 && (isIdentifierChar(text.charCodeAt(index - 1)) || text[index - 1] === '$'))) {
      end = endOfNumber(text, index);
      if (end < 0) return undefined;
      shape += `${text.slice(copied, index)}0`;
      copied = end;
    }
    if (end < 0) return undefined;
    index = end;
  }
  return copied === 0 ? text : shape + text.slice(copied);
}
