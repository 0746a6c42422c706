// How masking treats a PostgreSQL value, by type OID and wire format. The engine itself is
// protocol-independent; this is the one place that knows PostgreSQL types.
//
// A masked value must stay something the client can read as the column's type. Text-like types
// take any replacement text; JSON takes it as a JSON string; a text array takes spliced markers
// (they need no quoting). Every other type cannot hold a marker, so a value that must be masked
// becomes NULL — in the text format too, where `[REDACTED]` in an int8 column would break the
// client's parser — and a masked value never reaches the client in any form.

export const PG_TYPE = {
  bool: 16,
  bytea: 17,
  char: 18,
  name: 19,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  oid: 26,
  json: 114,
  xml: 142,
  float4: 700,
  float8: 701,
  unknown: 705,
  nameArray: 1003,
  charArray: 1002,
  textArray: 1009,
  bpcharArray: 1014,
  varcharArray: 1015,
  xmlArray: 143,
  bpchar: 1042,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  numeric: 1700,
  uuid: 2950,
  jsonb: 3802,
} as const;

/** OIDs below this are built into PostgreSQL; above it are extension and user types (citext, enums). */
const FIRST_NORMAL_OBJECT_ID = 16384;

export type ValueClass =
  /** Any text is a valid value: replacements are spliced or substituted. */
  | 'text'
  /** JSON text (jsonb binary: after its version byte): replacements outside strings become strings. */
  | 'json'
  /** A text-format array of a text type: spliced markers keep it a valid array literal. */
  | 'text-array'
  /** Binary integers, numeric and float8: decoded to decimal text and scanned; a hit means NULL. */
  | 'number'
  /** A binary array: its elements are decoded and scanned; a hit means NULL. */
  | 'binary-array'
  /** bytea: scanned as raw bytes (text format: after decoding the hex); a hit means NULL. */
  | 'bytea'
  /** Types whose text form can hold no detector match at all: never scanned. */
  | 'inert'
  /** Anything else: scanned as text, binary scanned byte-wise as Latin-1; a hit means NULL. */
  | 'opaque';

export type CellFormat = 'text' | 'binary';

const TEXT_TYPES = new Set<number>([PG_TYPE.text, PG_TYPE.varchar, PG_TYPE.bpchar, PG_TYPE.name, PG_TYPE.char, PG_TYPE.xml, PG_TYPE.unknown]);
const TEXT_ARRAY_TYPES = new Set<number>([
  PG_TYPE.textArray, PG_TYPE.varcharArray, PG_TYPE.bpcharArray, PG_TYPE.nameArray, PG_TYPE.charArray, PG_TYPE.xmlArray,
]);
/**
 * The text form of these is at most 11 characters of digits and a sign, `t`/`f`, a date or time, or a
 * UUID (8-4-4-4-12 hex): none can contain a card number (13+ digits), an SSN (dashed 3-2-4), or any
 * of the detectors' letter-bearing formats. Recheck this list when adding a detector.
 */
const INERT_TYPES = new Set<number>([
  PG_TYPE.bool, PG_TYPE.int2, PG_TYPE.int4, PG_TYPE.oid, PG_TYPE.float4, PG_TYPE.date, PG_TYPE.time, PG_TYPE.timetz,
  PG_TYPE.timestamp, PG_TYPE.timestamptz, PG_TYPE.interval, PG_TYPE.uuid,
]);
const BINARY_NUMBER_TYPES = new Set<number>([PG_TYPE.int8, PG_TYPE.numeric, PG_TYPE.float8]);
/** Built-in array types whose binary form we decode element by element. */
const BINARY_ARRAY_TYPES = new Set<number>([
  ...TEXT_ARRAY_TYPES, 1016 /* int8[] */, 1231 /* numeric[] */, 1022 /* float8[] */, 199 /* json[] */, 3807 /* jsonb[] */,
  1001 /* bytea[] */,
]);

function isJsonType(typeOid: number): boolean {
  return typeOid === PG_TYPE.json || typeOid === PG_TYPE.jsonb;
}

function textFormatClass(typeOid: number): ValueClass {
  if (TEXT_TYPES.has(typeOid)) return 'text';
  if (isJsonType(typeOid)) return 'json';
  if (TEXT_ARRAY_TYPES.has(typeOid)) return 'text-array';
  if (typeOid === PG_TYPE.bytea) return 'bytea';
  // User types are mostly text-like (citext, enums, domains report their base type); 0 is "unknown".
  if (typeOid === 0 || typeOid >= FIRST_NORMAL_OBJECT_ID) return 'text';
  return 'opaque';
}

function binaryFormatClass(typeOid: number): ValueClass {
  // A user type's binary layout is unknown, so it is never spliced: scanned as bytes like opaque.
  if (TEXT_TYPES.has(typeOid)) return 'text';
  if (isJsonType(typeOid)) return 'json';
  if (BINARY_NUMBER_TYPES.has(typeOid)) return 'number';
  if (BINARY_ARRAY_TYPES.has(typeOid)) return 'binary-array';
  if (typeOid === PG_TYPE.bytea) return 'bytea';
  return 'opaque';
}

export function valueClass(typeOid: number, format: CellFormat): ValueClass {
  if (INERT_TYPES.has(typeOid)) return 'inert';
  return format === 'text' ? textFormatClass(typeOid) : binaryFormatClass(typeOid);
}

/** Whether detectors could ever find something in values of this type (used when planning). */
export function mayHoldDetectableValue(typeOid: number | undefined): boolean {
  return typeOid === undefined || !INERT_TYPES.has(typeOid);
}

/** Whether a whole-value replacement (column rules) can be written into this class. */
export function acceptsReplacement(valueClassOfCell: ValueClass): boolean {
  return valueClassOfCell === 'text' || valueClassOfCell === 'json';
}
