// Finds JSON Web Tokens (JWS compact form): three base64url segments joined by dots, the first of
// which decodes to a JSON object with an `alg`. Plain base64 that happens to start with `eyJ`
// (the encoding of `{"`) is not a token unless it has that shape and that header.
import { codeAt, isBase64Url, skipWhile } from './ascii-classes.js';
import type { SpanSink } from './detector-types.js';

/** JOSE headers are small; even one carrying an x5c certificate chain fits. Longer is not a header. */
const MAX_HEADER_LENGTH = 16_384;
/** base64url length of the smallest header with an alg, `{"alg":""}`. */
const MIN_HEADER_LENGTH = 14;
const DOT = 0x2e;
/** base64url of `{"`, how every JSON header starts when serialised without leading whitespace. */
const HEADER_START = 'eyJ';

function headerHasAlgorithm(segment: string): boolean {
  const decoded = Buffer.from(segment, 'base64url').toString('utf8');
  // Cheap shape checks first: most `eyJ` candidates fail here, without JSON.parse throwing.
  if (!decoded.trimEnd().endsWith('}') || !decoded.includes('"alg"')) return false;
  try {
    const header: unknown = JSON.parse(decoded);
    return typeof header === 'object' && header !== null && typeof (header as { alg?: unknown }).alg === 'string';
  } catch {
    return false;
  }
}

/** End of the token starting at `start`, or -1. */
function jwsEnd(text: string, start: number): number {
  const headerEnd = skipWhile(text, start, isBase64Url, MAX_HEADER_LENGTH + 1);
  const headerLength = headerEnd - start;
  if (codeAt(text, headerEnd) !== DOT || headerLength < MIN_HEADER_LENGTH || headerLength > MAX_HEADER_LENGTH) return -1;
  const payloadEnd = skipWhile(text, headerEnd + 1, isBase64Url);
  if (codeAt(text, payloadEnd) !== DOT) return -1;
  const signatureEnd = skipWhile(text, payloadEnd + 1, isBase64Url);
  // An empty payload is a detached-payload JWS and an empty signature is alg "none"; never both.
  if (payloadEnd === headerEnd + 1 && signatureEnd === payloadEnd + 1) return -1;
  return headerHasAlgorithm(text.slice(start, headerEnd)) ? signatureEnd : -1;
}

export function findJwts(text: string, emit: SpanSink): void {
  let start = text.indexOf(HEADER_START);
  while (start !== -1) {
    // Inside a longer base64url run `eyJ` is just data, and skipping it keeps the scan linear.
    const end = isBase64Url(codeAt(text, start - 1)) ? -1 : jwsEnd(text, start);
    if (end > 0) {
      emit(start, end);
      start = text.indexOf(HEADER_START, end);
    } else {
      start = text.indexOf(HEADER_START, start + HEADER_START.length);
    }
  }
}
