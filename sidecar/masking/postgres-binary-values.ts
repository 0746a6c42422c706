// Decodes the PostgreSQL binary wire formats masking needs to look into: int8, numeric and float8
// as decimal text (so a card number stored as a number is found), jsonb's version byte, and array
// elements. Anything malformed decodes to undefined and the caller falls back to scanning bytes.
import { PG_TYPE } from './postgres-value-classes.js';

const NUMERIC_POSITIVE = 0x0000;
const NUMERIC_NEGATIVE = 0x4000;
const NUMERIC_SPECIALS: Readonly<Record<number, string>> = { 0xc000: 'NaN', 0xd000: 'Infinity', 0xf000: '-Infinity' };
const NUMERIC_BASE_DIGITS = 4; // numeric digits are base 10000
const JSONB_VERSION = 1;
/** PostgreSQL's MAXDIM. */
const MAX_ARRAY_DIMENSIONS = 6;

/** numeric_send: ndigits, weight, sign, dscale (int16 each), then ndigits base-10000 digits. */
export function decodeNumeric(bytes: Buffer): string | undefined {
  if (bytes.length < 8) return undefined;
  const digitCount = bytes.readInt16BE(0);
  const weight = bytes.readInt16BE(2);
  const sign = bytes.readUInt16BE(4);
  const scale = bytes.readInt16BE(6);
  if (digitCount < 0 || scale < 0 || bytes.length !== 8 + 2 * digitCount) return undefined;
  const special = NUMERIC_SPECIALS[sign];
  if (special !== undefined) return special;
  if (sign !== NUMERIC_POSITIVE && sign !== NUMERIC_NEGATIVE) return undefined;
  const digit = (index: number): number => (index >= 0 && index < digitCount ? bytes.readUInt16BE(8 + 2 * index) : 0);
  let integer = weight < 0 ? '0' : String(digit(0));
  for (let index = 1; index <= weight; index++) integer += String(digit(index)).padStart(NUMERIC_BASE_DIGITS, '0');
  let fraction = '';
  for (let index = weight + 1; fraction.length < scale; index++) fraction += String(digit(index)).padStart(NUMERIC_BASE_DIGITS, '0');
  const magnitude = scale > 0 ? `${integer}.${fraction.slice(0, scale)}` : integer;
  return sign === NUMERIC_NEGATIVE ? `-${magnitude}` : magnitude;
}

/** Decimal text of a binary int8, numeric or float8 value; undefined for other types or bad lengths. */
export function decodeBinaryNumber(typeOid: number, bytes: Buffer): string | undefined {
  switch (typeOid) {
    case PG_TYPE.int8:
      return bytes.length === 8 ? bytes.readBigInt64BE(0).toString() : undefined;
    case PG_TYPE.numeric:
      return decodeNumeric(bytes);
    case PG_TYPE.float8:
      // JS prints integral doubles below 1e21 in full, so a card number held in a float8 shows up.
      return bytes.length === 8 ? String(bytes.readDoubleBE(0)) : undefined;
    default:
      return undefined;
  }
}

/** Whether a binary jsonb value has the one format version we can read as JSON text after byte 0. */
export function isReadableJsonb(bytes: Buffer): boolean {
  return bytes.length >= 1 && bytes[0] === JSONB_VERSION;
}

/**
 * Calls `visit` for each non-NULL element of a binary array (array_send layout: ndim, flags,
 * element type, ndim × (length, lower bound), then length-prefixed elements) until it returns true.
 * Returns whether some visit returned true, or undefined when the bytes are not a well-formed array.
 */
export function someBinaryArrayElement(bytes: Buffer, visit: (elementOid: number, element: Buffer) => boolean): boolean | undefined {
  if (bytes.length < 12) return undefined;
  const dimensions = bytes.readInt32BE(0);
  const elementOid = bytes.readUInt32BE(8);
  if (dimensions < 0 || dimensions > MAX_ARRAY_DIMENSIONS) return undefined;
  let offset = 12 + 8 * dimensions;
  if (offset > bytes.length) return undefined;
  while (offset < bytes.length) {
    if (offset + 4 > bytes.length) return undefined;
    const length = bytes.readInt32BE(offset);
    offset += 4;
    if (length === -1) continue;
    if (length < 0 || offset + length > bytes.length) return undefined;
    if (visit(elementOid, bytes.subarray(offset, offset + length))) return true;
    offset += length;
  }
  return false;
}
