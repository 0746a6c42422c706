// A bounded least-recently-used cache keyed by statement text. The sidecar sees the same few
// statement texts over and over (ORMs, prepared queries), so classifying each text once and
// remembering the answer keeps the fast path fast; the bound keeps a client that sends endless
// unique texts from growing the sidecar's memory without limit.

import { GatehouseError } from '../errors.js';

export class StatementCache<V> {
  readonly capacity: number;
  // A Map iterates in insertion order, so re-inserting on every hit keeps the least recently used
  // entry first: eviction is "delete the first key", O(1) without a linked list of our own.
  readonly #entries = new Map<string, V>();

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
    const value = this.#entries.get(key);
    if (value === undefined) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, value);
    return value;
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** Stores a value as most recently used, evicting the least recently used entry when full. */
  set(key: string, value: V): void {
    if (this.#entries.has(key)) this.#entries.delete(key);
    else if (this.#entries.size >= this.capacity) this.#evictOldest();
    this.#entries.set(key, value);
  }

  delete(key: string): boolean {
    return this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }

  /** Keys from least to most recently used. */
  keys(): IterableIterator<string> {
    return this.#entries.keys();
  }

  #evictOldest(): void {
    const oldest = this.#entries.keys().next();
    if (!oldest.done) this.#entries.delete(oldest.value);
  }
}
