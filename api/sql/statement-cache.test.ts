// Tests for the bounded LRU that backs SqlClassifier: eviction order, recency, and the bound itself.

import { isGatehouseError } from '../errors.js';
import { StatementCache } from './statement-cache.js';

describe('StatementCache', () => {
  test('returns what was stored and undefined for what was not', () => {
    const cache = new StatementCache<number>(3);
    cache.set('a', 1);
    expect(cache.get('a')).toBe(1);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.has('a')).toBe(true);
  });

  test('evicts the least recently stored entry when full', () => {
    const cache = new StatementCache<number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3);
    expect([...cache.keys()]).toEqual(['b', 'c']);
    expect(cache.size).toBe(2);
  });

  test('a read makes an entry recently used, so it outlives older ones', () => {
    const cache = new StatementCache<number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.get('a');
    cache.set('c', 3);
    expect(cache.has('a')).toBe(true);
    expect(cache.has('b')).toBe(false);
    expect([...cache.keys()]).toEqual(['a', 'c']);
  });

  test('overwriting a key refreshes it without evicting anything', () => {
    const cache = new StatementCache<number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('a', 10);
    expect(cache.size).toBe(2);
    expect([...cache.keys()]).toEqual(['b', 'a']);
    expect(cache.get('a')).toBe(10);
  });

  test('never grows past its capacity', () => {
    const cache = new StatementCache<number>(100);
    for (let index = 0; index < 10_000; index += 1) cache.set(`SELECT ${index}`, index);
    expect(cache.size).toBe(100);
    expect(cache.get('SELECT 9999')).toBe(9999);
    expect(cache.get('SELECT 9899')).toBeUndefined();
  });

  test('delete and clear remove entries', () => {
    const cache = new StatementCache<number>(3);
    cache.set('a', 1);
    cache.set('b', 2);
    expect(cache.delete('a')).toBe(true);
    expect(cache.delete('a')).toBe(false);
    cache.clear();
    expect(cache.size).toBe(0);
  });

  test.each([0, -1, 2.5, Number.NaN])('rejects capacity %p', (capacity) => {
    let caught: unknown;
    try {
      new StatementCache<number>(capacity);
    } catch (error) {
      caught = error;
    }
    expect(isGatehouseError(caught, 'GH_ERR_INVALID_ARGUMENT')).toBe(true);
  });
});
