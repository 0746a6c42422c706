// Reading libpg-query's JSON parse tree: nodes come wrapped in their type name (`{SelectStmt: {...}}`)
// or bare where the parser types a field; these helpers unwrap them without trusting their shape.

import type { QualifiedName } from './operations.js';

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

/** `schema.name` or `name` from a dotted list's parts (the last two count). */
export function qualifiedName(parts: readonly string[]): QualifiedName | undefined {
  if (parts.length === 0) return undefined;
  const name = parts[parts.length - 1];
  return parts.length === 1 ? { name } : { schema: parts[parts.length - 2], name };
}

/** The text of a string constant, through casts (`'s'::regclass`); undefined for anything else. */
export function constantString(value: unknown): string | undefined {
  const node = unwrapNode(value);
  if (node === undefined) return undefined;
  if (node[0] === 'TypeCast') return constantString(node[1].arg);
  if (node[0] !== 'A_Const') return undefined;
  return asString(asRecord(node[1].sval)?.sval);
}
