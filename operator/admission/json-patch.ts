// Turns "the object I want" into an RFC 6902 JSON patch against the raw original, as
// controller-runtime's admission helpers do: mutating code edits a copy, this file works out the
// operations. Arrays are diffed by longest common subsequence so an inserted container becomes one
// `add` at its index rather than a cascade of `replace`s over everything after it.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export type JsonPatchOperation =
  | { readonly op: 'add'; readonly path: string; readonly value: JsonValue }
  | { readonly op: 'replace'; readonly path: string; readonly value: JsonValue }
  | { readonly op: 'remove'; readonly path: string }
  | { readonly op: 'test'; readonly path: string; readonly value: JsonValue };

/** Above this many element comparisons an array is diffed index by index (still correct, less tidy). */
const LCS_LIMIT = 250_000;

/** Escapes one JSON pointer segment (RFC 6901): `~` → `~0`, `/` → `~1`. */
export function pointerSegment(key: string | number): string {
  return String(key).replace(/~/g, '~0').replace(/\//g, '~1');
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, index) => jsonEqual(item, b[index]));
  }
  if (isJsonObject(a) && isJsonObject(b)) {
    const keys = definedKeys(a);
    const otherKeys = definedKeys(b);
    return keys.length === otherKeys.length && keys.every((key) => key in b && jsonEqual(a[key], b[key]));
  }
  return false;
}

/** Keys whose value is present: a property set to `undefined` is absent once serialised. */
function definedKeys(object: JsonObject): string[] {
  return Object.keys(object).filter((key) => object[key] !== undefined);
}

/** The operations that turn `original` into `wanted`; empty when they are equal. */
export function createJsonPatch(original: JsonValue, wanted: JsonValue): JsonPatchOperation[] {
  const operations: JsonPatchOperation[] = [];
  diffValue(original, wanted, '', operations);
  return operations;
}

function diffValue(original: JsonValue, wanted: JsonValue, path: string, out: JsonPatchOperation[]): void {
  // Two objects go straight to the per-key diff, which emits nothing when they are equal: comparing
  // them first would walk every subtree once per level above it (an admission's hottest loop).
  if (isJsonObject(original) && isJsonObject(wanted)) return diffObject(original, wanted, path, out);
  if (jsonEqual(original, wanted)) return;
  if (Array.isArray(original) && Array.isArray(wanted)) return diffArray(original, wanted, path, out);
  out.push({ op: 'replace', path, value: clean(wanted) });
}

function diffObject(original: JsonObject, wanted: JsonObject, path: string, out: JsonPatchOperation[]): void {
  for (const key of definedKeys(original)) {
    if (wanted[key] === undefined) out.push({ op: 'remove', path: `${path}/${pointerSegment(key)}` });
  }
  for (const key of definedKeys(wanted)) {
    const childPath = `${path}/${pointerSegment(key)}`;
    if (original[key] === undefined) out.push({ op: 'add', path: childPath, value: clean(wanted[key]!) });
    else diffValue(original[key]!, wanted[key]!, childPath, out);
  }
}

/**
 * Walks the common subsequence; between two matched elements the unmatched originals and wanted
 * elements are paired up and diffed in place (an edited container), the surplus removed or added.
 * `position` tracks the index in the array as the operations so far have left it.
 */
function diffArray(original: JsonValue[], wanted: JsonValue[], path: string, out: JsonPatchOperation[]): void {
  const matches = commonSubsequence(original, wanted);
  let position = 0;
  let i = 0;
  let j = 0;
  for (const [matchI, matchJ] of [...matches, [original.length, wanted.length] as const]) {
    const removed = original.slice(i, matchI);
    const added = wanted.slice(j, matchJ);
    const paired = Math.min(removed.length, added.length);
    for (let k = 0; k < paired; k++) diffValue(removed[k]!, added[k]!, `${path}/${position++}`, out);
    for (let k = paired; k < removed.length; k++) out.push({ op: 'remove', path: `${path}/${position}` });
    for (let k = paired; k < added.length; k++) out.push({ op: 'add', path: `${path}/${position++}`, value: clean(added[k]!) });
    position++; // the matched element itself (or one past the end, harmlessly, for the sentinel)
    i = matchI + 1;
    j = matchJ + 1;
  }
}

/** Index pairs of a longest common subsequence of equal elements, in order. */
function commonSubsequence(a: JsonValue[], b: JsonValue[]): (readonly [number, number])[] {
  if (a.length * b.length > LCS_LIMIT) return [];
  const lengths: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lengths[i]![j] = jsonEqual(a[i], b[j]) ? lengths[i + 1]![j + 1]! + 1 : Math.max(lengths[i + 1]![j]!, lengths[i]![j + 1]!);
    }
  }
  const pairs: (readonly [number, number])[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (jsonEqual(a[i], b[j])) pairs.push([i++, j++]);
    else if (lengths[i + 1]![j]! >= lengths[i]![j + 1]!) i++;
    else j++;
  }
  return pairs;
}

/** A deep copy without `undefined` properties, so a patch value serialises to what was compared. */
function clean(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(clean);
  if (!isJsonObject(value)) return value;
  const copy: JsonObject = {};
  for (const key of definedKeys(value)) copy[key] = clean(value[key]!);
  return copy;
}
