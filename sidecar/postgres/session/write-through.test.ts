// Which value flows the sidecar refuses, by the strategies the rules give their source and target.
import { classifySql, loadSqlParser } from '../../../api/sql/classify.js';
import { createMasker } from '../../masking/masker.js';
import { columnKey, type ColumnIndex, type SourceColumn } from './column-catalog.js';
import { writeThroughRefusal } from './write-through.js';

beforeAll(async () => {
  await loadSqlParser();
});

const masker = createMasker([
  { columns: ['customers.ssn'], strategy: 'redact' },
  { columns: ['customers.email', 'archive.email'], strategy: 'hash' },
  { columns: ['archive.ssn_last4'], strategy: 'partial' },
  { columns: ['archive.secret'], strategy: 'redact' },
], { hashKey: new Uint8Array(32).fill(7) });

/** The catalog lookup: customers' and archive's columns a rule could name. */
const index: ColumnIndex = new Map<string, SourceColumn>([
  [columnKey(1, 2), { column: 'ssn', table: { schema: 'public', name: 'customers' } }],
  [columnKey(1, 3), { column: 'email', table: { schema: 'public', name: 'customers' } }],
  [columnKey(2, 1), { column: 'email', table: { schema: 'public', name: 'archive' } }],
]);

function refusal(sql: string, current = true): string | undefined {
  return writeThroughRefusal(classifySql(sql), masker, index, current);
}

describe('writeThroughRefusal', () => {
  it('allows a masked value into a column masked at least as strongly', () => {
    expect(refusal('UPDATE customers SET ssn = trim(ssn), email = lower(email)')).toBeUndefined();
    expect(refusal('INSERT INTO archive (email, secret) SELECT email, ssn FROM customers')).toBeUndefined();
    expect(refusal('INSERT INTO archive (secret) SELECT email FROM customers')).toBeUndefined();
  });

  it('refuses it into a column masked more weakly or not at all', () => {
    expect(refusal('INSERT INTO archive (email) SELECT ssn FROM customers')).toBe(
      'values of masked customers.ssn (redact) would be written to archive.email, which masking rules cover only with hash; Gatehouse refuses statements that would take masked values where masking does not follow them',
    );
    expect(refusal('INSERT INTO archive (ssn_last4) SELECT email FROM customers')).toMatch(/customers\.email \(hash\) would be written to archive\.ssn_last4, which masking rules cover only with partial/);
    expect(refusal('UPDATE customers SET name = ssn')).toMatch(/which no masking rule covers/);
  });

  it('narrows whole rows to the masked columns the catalog knows, and counts every rule without it', () => {
    // customers' email goes to archive.email (hash, as strong); its ssn to archive.ssn (no rule).
    expect(refusal('CREATE TABLE archive2 AS SELECT * FROM customers')).toMatch(/customers\.ssn \(redact\) would be written to archive2, whose columns/);
    expect(refusal('ALTER TABLE customers RENAME TO archive')).toMatch(/customers\.ssn \(redact\)/);
    expect(refusal('CREATE TABLE orders2 AS SELECT * FROM orders')).toBeUndefined();
    // A lookup made for other rules: a whole row counts by the rules' table names (orders is none of them).
    expect(refusal('CREATE TABLE orders2 AS SELECT * FROM orders', false)).toBeUndefined();
    expect(refusal('CREATE TABLE customers2 AS SELECT * FROM customers', false)).toMatch(/columns of customers \(redact\)/);
  });

  it('refuses COPY output of what a function or a view reads, which the tables a COPY names do not show', () => {
    const withFunctions: ColumnIndex = Object.assign(new Map(index), { functions: { known: new Set(['card_of', 'doubled']), reads: new Map([['card_of', { sources: [], wholeRows: ['customers'] }]]) } });
    expect(writeThroughRefusal(classifySql('COPY (SELECT card_of(1)) TO STDOUT'), masker, withFunctions, true)).toMatch(/customers\.ssn \(redact\) would be passed to COPY output/);
    expect(writeThroughRefusal(classifySql('COPY (SELECT doubled(1)) TO STDOUT'), masker, withFunctions, true)).toBeUndefined();
    expect(writeThroughRefusal(classifySql('COPY (SELECT created_since(1)) TO STDOUT'), masker, withFunctions, true)).toMatch(/columns the statement does not name/);
  });

  it('refuses masked values passed where no column rule can follow them, and lets others pass', () => {
    expect(refusal("SELECT set_config('app.x', ssn, false) FROM customers")).toMatch(/would be passed to set_config\(\)/);
    expect(refusal("SELECT set_config('app.x', name, false) FROM customers")).toBeUndefined();
    expect(refusal('EXECUTE p')).toMatch(/columns the statement does not name \(redact\) would be passed to a statement prepared elsewhere/);
    expect(writeThroughRefusal(classifySql('UPDATE customers SET name = ssn'), createMasker([{ detectors: ['us-ssn'] }]), index, true)).toBeUndefined();
  });
});
