// Canonical JSON for hashing recordings: object keys sorted, no whitespace, so the same event hashes
// the same wherever it is serialized (the sidecar, the operator, the CLI) whatever its key order.
// The operator canonicalizes every event it stores, so this is written as one pass that appends to a
// string and sorts an object's keys only when they are out of order, rather than with entries,
// filter, sort, map and join per object.
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/**
 * Whether JSON.stringify of the value being written makes the same text: cleared by keys out of
 * order, a non-JSON leaf (function, symbol, undefined where JSON.stringify would drop it) or an
 * object that is not a plain object or array (toJSON, boxed primitives, class instances).
 */
let sameAsStringify = true;

/** Deeper than any event a sidecar writes, shallow enough that the recursion never nears the stack's limit. */
export const MAX_CANONICAL_DEPTH = 256;

/** A value nested deeper than MAX_CANONICAL_DEPTH: it has no canonical JSON (and is no recording event). */
export class TooDeeplyNestedError extends RangeError {
  constructor() {
    super(`the value is nested more than ${MAX_CANONICAL_DEPTH} levels deep`);
    this.name = 'TooDeeplyNestedError';
  }
}

/** JSON of short object keys seen before (an event's keys are the same few again and again); bounded in count and size. */
const keyTexts = new Map<string, string>();
const KEY_TEXTS_MAX = 512;
const KEY_TEXT_MAX_LENGTH = 64;

function keyJson(key: string): string {
  let text = keyTexts.get(key);
  if (text === undefined) {
    text = `${JSON.stringify(key)}:`;
    if (key.length <= KEY_TEXT_MAX_LENGTH) {
      if (keyTexts.size >= KEY_TEXTS_MAX) keyTexts.clear();
      keyTexts.set(key, text);
    }
  }
  return text;
}

function ascending(keys: readonly string[]): boolean {
  for (let index = 1; index < keys.length; index += 1) if (!(keys[index - 1]! < keys[index]!)) return false;
  return true;
}

function write(value: unknown, depth: number): string {
  if (value === null || typeof value !== 'object') {
    const type = typeof value;
    if (type === 'function' || type === 'symbol' || type === 'undefined') sameAsStringify = false;
    // JSON.stringify writes non-finite numbers as null, and undefined only occurs inside objects.
    return JSON.stringify(value) ?? 'null';
  }
  if (depth >= MAX_CANONICAL_DEPTH) throw new TooDeeplyNestedError();
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) sameAsStringify = false;
    let out = '[';
    for (let index = 0; index < value.length; index += 1) {
      if (index > 0) out += ',';
      const item: unknown = value[index];
      out += item === undefined ? 'null' : write(item, depth + 1);
    }
    return `${out}]`;
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  if ((prototype !== Object.prototype && prototype !== null) || typeof (value as { toJSON?: unknown }).toJSON === 'function') sameAsStringify = false;
  const keys = Object.keys(value);
  if (!ascending(keys)) {
    // Integer-like keys come first in an object's own order, so even JSON.parse output can need this.
    keys.sort();
    sameAsStringify = false;
  }
  let out = '{';
  let first = true;
  for (const key of keys) {
    const item: unknown = (value as Record<string, unknown>)[key];
    if (item === undefined) continue;
    if (!first) out += ',';
    out += keyJson(key);
    first = false;
    out += write(item, depth + 1);
  }
  return `${out}}`;
}

/** Throws TooDeeplyNestedError for a value nested more than MAX_CANONICAL_DEPTH levels deep. */
export function canonicalJson(value: unknown): string {
  return write(value, 0);
}

/**
 * The canonical JSON of a value, and whether JSON.stringify(value) would write exactly the same
 * text (true for a JSON.parse result whose keys are already in order at every level), so a caller
 * that needs both serializations can make one.
 */
export function canonicalJsonWithOrder(value: unknown): { readonly text: string; readonly sameAsStringify: boolean } {
  sameAsStringify = true;
  const text = write(value, 0);
  return { text, sameAsStringify };
}

export function isJsonObject(value: unknown): value is { readonly [key: string]: JsonValue } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
