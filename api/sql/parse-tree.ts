// Reading libpg-query's JSON parse tree: nodes come wrapped in their type name (`{SelectStmt: {...}}`)
// or bare where the parser types a field; these helpers unwrap them without trusting their shape.

export type PgRecord = Readonly<Record<string, unknown>>;

export function asRecord(value: unknown): PgRecord | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as PgRecord) : undefined;
}

export function asList(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

export function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * `{SelectStmt: {...}}` → ['SelectStmt', {...}]. Fields the parser types as a generic Node come
 * wrapped in their type name like this; node type names start upper case and field names never do.
 */
export function unwrapNode(value: unknown): readonly [string, PgRecord] | undefined {
  const record = asRecord(value);
  if (record === undefined) return undefined;
  // for-in rather than Object.keys: this runs for every object in the tree, so skip the allocation.
  let type: string | undefined;
  for (const key in record) {
    if (type !== undefined) return undefined;
    type = key;
  }
  if (type === undefined) return undefined;
  const first = type.charCodeAt(0);
  if (first < 65 || first > 90) return undefined;
  const body = asRecord(record[type]);
  return body === undefined ? undefined : [type, body];
}

/** The body of a node that may come wrapped (`{RangeVar: {...}}`) or bare (a field typed RangeVar). */
export function nodeBody(value: unknown): PgRecord | undefined {
  return unwrapNode(value)?.[1] ?? asRecord(value);
}

/** The texts of a list of String nodes: how the parser spells dotted names. */
export function stringItems(list: unknown): string[] {
  const items: string[] = [];
  for (const item of asList(list)) {
    const node = unwrapNode(item);
    const text = node !== undefined && node[0] === 'String' ? asString(node[1].sval) : undefined;
    if (text !== undefined) items.push(text);
  }
  return items;
}
