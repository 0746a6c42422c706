import fc from 'fast-check';
import { classifySql, loadSqlParser } from './classify.js';
import { statementShape } from './statement-shape.js';

describe('statementShape', () => {
  test.each([
    ['SELECT abalance FROM pgbench_accounts WHERE aid = 12345;', 'SELECT abalance FROM pgbench_accounts WHERE aid = 0;'],
    ['SELECT 1.5e-3, .5, 10', 'SELECT 0, .0, 0'],
    ['SELECT t1.c2 FROM t1 WHERE x = $1 LIMIT 10', 'SELECT t1.c2 FROM t1 WHERE x = $1 LIMIT 0'],
    ["SELECT '123', \"col 9\" FROM t WHERE a = 7 -- 42\n", "SELECT '123', \"col 9\" FROM t WHERE a = 0 -- 42\n"],
    ['SELECT $tag$ 5 $tag$, $$ 6 $$, 7 /* 8 /* 9 */ 10 */', 'SELECT $tag$ 5 $tag$, $$ 6 $$, 0 /* 8 /* 9 */ 10 */'],
    ["SELECT 'it''s 5', 5", "SELECT 'it''s 5', 0"],
    ['SELECT 1..2', 'SELECT 0..0'],
  ])('%j → %j', (text, shape) => {
    expect(statementShape(text)).toBe(shape);
  });

  test.each([
    ["SELECT E'\\' 1' FROM t"],
    ['SELECT 0x1F'],
    ['SELECT 1_000'],
    ["SELECT 'unterminated 5"],
    ['SELECT $x$ never closed'],
    ['SELECT /* open 5'],
  ])('gives up on %j', (text) => {
    expect(statementShape(text)).toBeUndefined();
  });

  describe('never changes what a statement does', () => {
    beforeAll(() => loadSqlParser());

    const template = fc.constantFrom(
      'SELECT * FROM orders WHERE id = N',
      'DELETE FROM orders WHERE id = N',
      'UPDATE t SET a = N WHERE b > N',
      "SELECT 'x 5' FROM t LIMIT N",
      'SELECT pg_sleep(N)',
      'SELECT pg_terminate_backend(N)',
      'FETCH N FROM c',
      'SET statement_timeout = N',
    );
    test('texts that differ only in numbers share a shape and a classification', () => {
      fc.assert(
        fc.property(template, fc.nat(), fc.nat(), (sql, a, b) => {
          const first = sql.replace(/N/g, String(a));
          const second = sql.replace(/N/g, String(b));
          expect(statementShape(first)).toBe(statementShape(second));
          const strip = (text: string) => JSON.stringify(classifySql(text), (key, value) => (key === 'text' ? undefined : value));
          expect(strip(first)).toBe(strip(second));
        }),
        { numRuns: 300 },
      );
    });
  });
});
