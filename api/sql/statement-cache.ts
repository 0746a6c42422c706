// A bounded least-recently-used cache keyed by statement text. The sidecar sees the same few
// statement texts over and over (ORMs, prepared queries), so classifying each text once and
// remembering the answer keeps the fast path fast; the bound keeps a client that sends endless
// unique texts from growing the sidecar's memory without limit.

import { GatehouseError } from '../errors.js';

interface Entry<V> {
  readonly key: string;
  value: V;
  /** Neighbours in recency order: `older` towards the least recently used end. */
  older: Entry<V> | undefined;
  newer: Entry<V> | undefined;
}

export class StatementCache<V> {
  readonly capacity: number;
  // Recency is a linked list threaded through the entries, so a hit only relinks one entry. Moving
  // it within the Map instead (delete, then set) costs time proportional to the Map's size in V8,
  // which tombstones deleted slots and rehashes as they pile up: ~26 µs per hit at 10,000 entries.
  readonly #entries = new Map<string, Entry<V>>();
  #oldest: Entry<V> | undefined;
  #newest: Entry<V> | undefined;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      const detail = `cache capacity must be a positive integer, got ${capacity}`;
      throw new GatehouseError('GH_ERR_INVALID_ARGUMENT', { detail });
    }
    this.capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The cached value, marked as most recently used; undefined when absent. */
  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#touch(entry);
    return entry.value;
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** Stores a value as most recently used, evicting the least recently used entry when full. */
  set(key: string, value: V): void {
    const existing = this.#entries.get(key);
    if (existing !== undefined) {
      existing.value = value;
      this.#touch(existing);
      return;
    }
    if (this.#entries.size >= this.capacity && this.#oldest !== undefined) this.delete(this.#oldest.key);
    const entry: Entry<V> = { key, value, older: this.#newest, newer: undefined };
    this.#link(entry);
    this.#entries.set(key, entry);
  }

  delete(key: string): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    this.#unlink(entry);
    return this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
    this.#oldest = undefined;
    this.#newest = undefined;
  }

  /** Keys from least to most recently used. */
  *keys(): IterableIterator<string> {
    for (let entry = this.#oldest; entry !== undefined; entry = entry.newer) yield entry.key;
  }

  /** Makes `entry` the most recently used. */
  #touch(entry: Entry<V>): void {
    if (entry === this.#newest) return;
    this.#unlink(entry);
    entry.older = this.#newest;
    this.#link(entry);
  }

  /** Appends `entry` (whose `older` is the current newest) at the most recently used end. */
  #link(entry: Entry<V>): void {
    entry.newer = undefined;
    if (this.#newest !== undefined) this.#newest.newer = entry;
    else this.#oldest = entry;
    this.#newest = entry;
  }

  #unlink(entry: Entry<V>): void {
    if (entry.older !== undefined) entry.older.newer = entry.newer;
    else this.#oldest = entry.newer;
    if (entry.newer !== undefined) entry.newer.older = entry.older;
    else this.#newest = entry.older;
    entry.older = undefined;
    entry.newer = undefined;
  }
}
