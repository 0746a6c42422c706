import { isGatehouseError } from '../../api/errors.js';
import type { MaskingRuleT } from '../../api/kinds/kinds.js';
import { compileColumnGlob, compileMaskingRules, type ResultColumn } from './column-matcher.js';

const customers = { schema: 'public', name: 'customers' };
const orders = { name: 'orders' };

function strategyFor(rules: MaskingRuleT[], column: ResultColumn): string | undefined {
  return compileMaskingRules(rules).match(column).strategy;
}

function thrownBy(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('compileColumnGlob', () => {
  test.each([
    ['email', { name: 'email' }, true],
    ['email', { name: 'EMAIL' }, true], // PostgreSQL folds unquoted names; quoted ones are masked too
    ['Email', { name: 'email' }, true],
    ['email', { name: 'emails' }, false],
    ['*_token', { name: 'refresh_token' }, true],
    ['*_token', { name: 'token' }, false],
    ['card_*', { name: 'card_number' }, true],
    ['c?rd', { name: 'card' }, true],
    ['c?rd', { name: 'cord_x' }, false],
    ['*', { name: 'anything' }, true],
    ['*a*b*c', { name: 'xxaxxbxxc' }, true],
    ['*a*b*c', { name: 'xxaxxcxxb' }, false],
    ['customers.card_number', { name: 'card_number', table: customers }, true],
    ['customers.card_number', { name: 'card_number', table: orders }, false],
    ['CUSTOMERS.card_number', { name: 'card_number', table: customers }, true],
    ['cust*.card_*', { name: 'card_hash', table: customers }, true],
    ['*.email', { name: 'email', table: orders }, true],
    // Unknown source table: a table.column rule still masks a column of that name (fail closed).
    ['customers.card_number', { name: 'card_number' }, true],
    ['customers.card_number', { name: 'other' }, false],
    // Aliased: the source name counts too.
    ['email', { name: 'contact', sourceName: 'email', table: customers }, true],
    ['customers.email', { name: 'e', sourceName: 'email', table: customers }, true],
    ['customers.email', { name: 'e', sourceName: 'email', table: orders }, false],
    // Computed columns: what they are computed from counts (api/sql/output-lineage.ts).
    ['customers.card_number', { name: '?column?', derivedFrom: { sources: [{ table: 'customers', column: 'card_number' }], wholeRows: [] } }, true],
    ['customers.card_number', { name: 'k', derivedFrom: { sources: [{ column: 'card_number' }], wholeRows: [] } }, true],
    ['customers.card_number', { name: 'k', derivedFrom: { sources: [{ table: 'orders', column: 'card_number' }], wholeRows: [] } }, false],
    ['email', { name: 'upper', derivedFrom: { sources: [{ table: 'orders', column: 'id' }, { table: 'customers', column: 'EMAIL' }], wholeRows: [] } }, true],
    ['email', { name: 'n', derivedFrom: { sources: [{ table: 'customers', column: 'name' }], wholeRows: [] } }, false],
    ['customers.card_number', { name: 'row_to_json', derivedFrom: { sources: [], wholeRows: ['customers'] } }, true],
    ['customers.card_number', { name: 'row_to_json', derivedFrom: { sources: [], wholeRows: ['orders'] } }, false],
    ['email', { name: 'row_to_json', derivedFrom: { sources: [], wholeRows: ['orders'] } }, true],
    ['customers.card_number', { name: 'k', derivedFrom: { sources: [], wholeRows: [], unknown: true } }, true],
  ] as const)('%j against %j: %s', (glob, column, expected) => {
    expect(compileColumnGlob(glob)(column)).toBe(expected);
  });

  test.each(['a.b.c', '', 'customers.', '.email', 'card number', 'e"mail'])('refuses %j', (glob) => {
    expect(isGatehouseError(thrownBy(() => compileColumnGlob(glob)), 'GH_ERR_BAD_GLOB')).toBe(true);
  });
});

describe('compileMaskingRules', () => {
  test('a column no rule names gets no strategy', () => {
    expect(strategyFor([{ columns: ['email'] }], { name: 'id' })).toBeUndefined();
  });

  test('strategy defaults to redact', () => {
    expect(strategyFor([{ columns: ['email'] }], { name: 'email' })).toBe('redact');
  });

  test.each([
    [['partial', 'hash'], 'hash'],
    [['hash', 'partial'], 'hash'],
    [['partial', 'redact', 'hash'], 'redact'],
    [['partial', 'partial'], 'partial'],
  ] as const)('rules %j on one column: %s wins, whatever the order', (strategies, expected) => {
    const rules = strategies.map((strategy, index): MaskingRuleT => ({
      columns: [index % 2 === 0 ? 'email' : 'customers.*'],
      strategy,
    }));
    expect(strategyFor(rules, { name: 'email', table: customers })).toBe(expected);
  });

  test('detector rules apply to every column, each detector at its strongest strategy', () => {
    const matcher = compileMaskingRules([
      { detectors: ['credit-card', 'email'], strategy: 'partial' },
      { detectors: ['credit-card'], strategy: 'hash' },
      { columns: ['ssn'], detectors: ['jwt'] },
    ]);
    const expected = [
      { detector: 'credit-card', strategy: 'hash' },
      { detector: 'email', strategy: 'partial' },
      { detector: 'jwt', strategy: 'redact' },
    ];
    expect(matcher.match({ name: 'notes' })).toEqual({ strategy: undefined, detectors: expected });
    // A rule with both columns and detectors masks its columns whole and scans every column.
    expect(matcher.match({ name: 'ssn' })).toEqual({ strategy: 'redact', detectors: expected });
    expect(matcher.hasColumnRules).toBe(true);
    expect([...matcher.strategies].sort()).toEqual(['hash', 'partial', 'redact']);
  });

  test('no rules: nothing applies', () => {
    const matcher = compileMaskingRules([]);
    expect(matcher.match({ name: 'email' })).toEqual({ strategy: undefined, detectors: [] });
    expect(matcher.hasColumnRules).toBe(false);
  });

  test('refuses unknown detectors and strategies instead of silently masking nothing', () => {
    const badDetector = { detectors: ['passport'] } as unknown as MaskingRuleT;
    const badStrategy = { columns: ['x'], strategy: 'scramble' } as unknown as MaskingRuleT;
    expect(isGatehouseError(thrownBy(() => compileMaskingRules([badDetector])), 'GH_ERR_MASKING_RULE')).toBe(true);
    expect(isGatehouseError(thrownBy(() => compileMaskingRules([badStrategy])), 'GH_ERR_MASKING_RULE')).toBe(true);
    expect(isGatehouseError(thrownBy(() => compileMaskingRules([{ columns: ['a.b.c'] }])), 'GH_ERR_BAD_GLOB')).toBe(true);
  });
});
