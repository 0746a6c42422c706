// ASCII character-class tests on UTF-16 code units, for the detectors. Detectors match ASCII only,
// so they work unchanged on byte strings (a Latin-1 view of any ASCII-compatible encoding) and a
// replacement never splits a multi-byte character.

export function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

export function isUpper(code: number): boolean {
  return code >= 0x41 && code <= 0x5a;
}

export function isLower(code: number): boolean {
  return code >= 0x61 && code <= 0x7a;
}

export function isLetter(code: number): boolean {
  return isUpper(code) || isLower(code);
}

export function isAlnum(code: number): boolean {
  return isDigit(code) || isLetter(code);
}

/** The base64url alphabet (JWT segments, Google API keys). */
export function isBase64Url(code: number): boolean {
  return isAlnum(code) || code === 0x2d /* - */ || code === 0x5f /* _ */;
}

/** The standard base64 alphabet with padding (Azure keys, AWS secret keys). */
export function isBase64(code: number): boolean {
  return isAlnum(code) || code === 0x2b /* + */ || code === 0x2f /* / */ || code === 0x3d /* = */;
}

export function isLowerHex(code: number): boolean {
  return isDigit(code) || (code >= 0x61 && code <= 0x66);
}

/** Code unit at `index`, or -1 outside the string (charCodeAt's NaN would silently compare false). */
export function codeAt(text: string, index: number): number {
  return index >= 0 && index < text.length ? text.charCodeAt(index) : -1;
}

/** End of the run of characters matching `accept` that starts at `from`, scanning at most `limit`. */
export function skipWhile(text: string, from: number, accept: (code: number) => boolean, limit = Infinity): number {
  const stop = Math.min(text.length, from + limit);
  let index = from;
  while (index < stop && accept(text.charCodeAt(index))) index++;
  return index;
}
