// Finds PEM private keys (PKCS#1, PKCS#8, encrypted, EC, DSA, OpenSSH) and PGP private key blocks,
// from the BEGIN line to the end of the matching END line. A key whose END line is missing (a
// truncated value) is masked to the end of the text: failing closed beats leaking half a key.
import { isDigit, isUpper, skipWhile } from './ascii-classes.js';
import type { SpanSink } from './detector-types.js';

const BEGIN = '-----BEGIN ';
const END = '-----END ';
const DASHES = '-----';
/** Longest label we accept between BEGIN and the dashes (`ENCRYPTED PRIVATE KEY`, `PGP PRIVATE KEY BLOCK`). */
const MAX_LABEL_LENGTH = 40;

function isLabelCharacter(code: number): boolean {
  return isUpper(code) || isDigit(code) || code === 0x20;
}

/** End of the BEGIN line's closing dashes when its label names a private key, or -1. */
function privateKeyHeaderEnd(text: string, labelStart: number): number {
  const labelEnd = skipWhile(text, labelStart, isLabelCharacter, MAX_LABEL_LENGTH + 1);
  if (!text.startsWith(DASHES, labelEnd)) return -1;
  const label = text.slice(labelStart, labelEnd);
  return label.endsWith('PRIVATE KEY') || label.endsWith('PRIVATE KEY BLOCK') ? labelEnd + DASHES.length : -1;
}

/**
 * End of the first complete END line (`-----END <label>-----`) from `from`, or the end of the text.
 * Stray dashes do not count, so a truncated key cannot end inside the next key and hide it.
 */
function privateKeyEnd(text: string, from: number): number {
  for (let endLine = text.indexOf(END, from); endLine !== -1; endLine = text.indexOf(END, endLine + END.length)) {
    const labelEnd = skipWhile(text, endLine + END.length, isLabelCharacter, MAX_LABEL_LENGTH + 1);
    if (text.startsWith(DASHES, labelEnd)) return labelEnd + DASHES.length;
  }
  return text.length;
}

export function findPrivateKeys(text: string, emit: SpanSink): void {
  let begin = text.indexOf(BEGIN);
  while (begin !== -1) {
    const headerEnd = privateKeyHeaderEnd(text, begin + BEGIN.length);
    if (headerEnd === -1) {
      begin = text.indexOf(BEGIN, begin + BEGIN.length);
      continue;
    }
    const end = privateKeyEnd(text, headerEnd);
    emit(begin, end);
    begin = text.indexOf(BEGIN, end);
  }
}
