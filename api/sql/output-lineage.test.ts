import { classifySql, loadSqlParser } from './classify.js';
import type { OutputColumn, OutputLineage } from './output-lineage.js';

beforeAll(async () => {
  await loadSqlParser();
});

function lineage(sql: string): OutputLineage | undefined {
  return classifySql(sql).statements[0]!.outputs;
}

/** Each result entry as `[star?]table.column,...|whole:relation,...`, for compact expectations. */
function summary(sql: string): string[] {
  const result = lineage(sql);
  if (result?.kind !== 'known') throw new Error(`expected a known lineage for ${sql}, got ${JSON.stringify(result)}`);
  return result.columns.map((column: OutputColumn) => {
    const sources = column.sources.map((source) => `${source.table ?? '?'}.${source.column}`).sort().join(',');
    const whole = column.wholeRows.length > 0 ? `|whole:${[...column.wholeRows].sort().join(',')}` : '';
    return `${column.star ? '*' : ''}${sources}${whole}`;
  });
}

describe('outputLineage: what each result column is computed from', () => {
  it.each([
    ["SELECT card_number || '' FROM customers", ['customers.card_number']],
    ['SELECT upper(email) AS e, id, 1 FROM customers', ['customers.email', 'customers.id', '']],
    ['SELECT c.card_number, length(c.email) FROM customers c', ['customers.card_number', 'customers.email']],
    ['SELECT lower("Email") FROM "Customers"', ['customers.email']],
    ['SELECT public.customers.card_number FROM public.customers', ['customers.card_number']],
    ['SELECT o.id, cu.card_number FROM orders o JOIN customers cu ON cu.id = o.customer_id', ['orders.id', 'customers.card_number']],
    // Two tables, an unqualified name: its table is unknown.
    ['SELECT card_number FROM orders, customers', ['?.card_number']],
    // A join's alias is not tracked: the column's table is unknown, so any table.column rule of that name applies.
    ['SELECT upper(j.card_number) FROM (customers c JOIN orders o ON o.customer_id = c.id) AS j', ['customers.card_number,orders.card_number']],
    ["SELECT coalesce(card_number, 'none')::text, CASE WHEN id > 1 THEN email END FROM customers", ['customers.card_number', 'customers.email,customers.id']],
  ])('%s', (sql, expected) => {
    expect(summary(sql)).toEqual(expected);
  });

  it.each([
    ['a subquery alias', 'SELECT k FROM (SELECT card_number AS k FROM customers) s', ['customers.card_number']],
    ['a subquery alias through an expression', "SELECT s.k || '!' FROM (SELECT upper(card_number) k FROM customers) s", ['customers.card_number']],
    ['a subquery column list', 'SELECT x FROM (SELECT card_number FROM customers) AS s(x)', ['customers.card_number']],
    ['a CTE', 'WITH x AS (SELECT email AS e FROM customers) SELECT e FROM x', ['customers.email']],
    ['a CTE column list and a nested CTE', 'WITH a(v) AS (SELECT card_number FROM customers), b AS (SELECT v || \'\' AS w FROM a) SELECT w FROM b', ['customers.card_number']],
    ['a recursive CTE', 'WITH RECURSIVE r(n, c) AS (SELECT 1, card_number FROM customers UNION ALL SELECT n + 1, c FROM r WHERE n < 3) SELECT c FROM r', ['customers.card_number']],
    // Unqualified inside a subquery, the name could be the outer query's too: its table is left unknown.
    ['a scalar subquery', 'SELECT (SELECT max(card_number) FROM customers), count(*) FROM orders', ['?.card_number', '']],
    ['a correlated subquery', 'SELECT (SELECT c.email FROM customers c WHERE c.id = o.customer_id) FROM orders o', ['customers.email']],
    // card_number is the outer query's (orders has none): with two tables in reach, its table is unknown.
    ['an unqualified outer reference', 'SELECT (SELECT upper(card_number) FROM orders LIMIT 1) FROM customers', ['?.card_number']],
    ['an ARRAY subquery', 'SELECT ARRAY(SELECT email FROM customers)', ['customers.email']],
    ['a data-modifying CTE', 'WITH d AS (DELETE FROM customers RETURNING card_number AS gone) SELECT gone FROM d', ['customers.card_number']],
    ['a column of a SELECT * subquery, through an expression', 'SELECT upper(x.card_number), length(name) FROM (SELECT * FROM customers) x', ['customers.card_number', 'customers.name']],
    ['a column of a UNION of SELECT *', 'SELECT upper(u.email) FROM (SELECT * FROM customers UNION ALL SELECT * FROM customers) u', ['customers.email']],
    ['a LATERAL subquery', 'SELECT l.v FROM orders o, LATERAL (SELECT o.id::text || cu.email AS v FROM customers cu) l', ['customers.email,orders.id']],
  ])('resolves %s', (_name, sql, expected) => {
    expect(summary(sql)).toEqual(expected);
  });

  it('counts a column renamed by a table or join alias as any column of the relations behind it', () => {
    // Which column `x` renames is the catalog's to know: every column of customers, then.
    expect(summary('SELECT upper(x), upper(t.x), email FROM customers AS t(i, x)')).toEqual(['|whole:customers', '|whole:customers', 'customers.email']);
    expect(summary('SELECT (SELECT x FROM customers AS t(i, x) LIMIT 1)')).toEqual(['|whole:customers']);
    expect(summary('SELECT upper(j.x), j.total FROM (customers c JOIN orders o ON o.customer_id = c.id) AS j(a, x)')).toEqual([
      '|whole:customers,orders', 'customers.total,orders.total',
    ]);
  });

  it('follows built-ins that read a table by name, and counts those it cannot place as any column', () => {
    expect(summary("SELECT table_to_xml('customers', true, false, '')")).toEqual(['|whole:customers']);
    expect(summary(`SELECT pg_catalog.table_to_xml_and_xmlschema('public."Customers"'::regclass, true, false, '')`)).toEqual(['|whole:customers']);
    expect(summary("SELECT xmlserialize(content table_to_xml('orders', true, false, '') AS text)")).toEqual(['|whole:orders']);
    for (const sql of [
      "SELECT table_to_xml((SELECT 'customers'), true, false, '')",
      "SELECT table_to_xml($1, true, false, '')",
      "SELECT database_to_xml(true, false, '')::text",
      "SELECT schema_to_xml('public', true, false, '')",
      "SELECT cursor_to_xml('c', 10, true, false, '')",
      "SELECT query_to_xml('SELECT 1', true, false, '')",
      "SELECT * FROM ts_stat('SELECT v FROM docs')",
      "SELECT t.word FROM ts_stat('SELECT v FROM docs') t",
    ]) {
      const result = lineage(sql);
      expect(result?.kind === 'known' && result.columns.every((column) => column.unknown === true)).toBe(true);
    }
    // Its schema alone reads no values.
    expect(summary("SELECT table_to_xmlschema('customers', true, false, '')")).toEqual(['']);
  });

  it('names the functions whose bodies the statement does not show, and not known built-ins', () => {
    const functions = (sql: string) => {
      const result = lineage(sql);
      return result?.kind === 'known' ? result.columns.map((column) => [...(column.functions ?? [])].sort()) : [];
    };
    expect(functions('SELECT card_of(42), upper(app.name_of(o.id)), lower(\'x\'), count(*) FROM orders o GROUP BY o.id')).toEqual([['card_of'], ['name_of'], [], []]);
    expect(functions('SELECT * FROM customer_rows(1)')).toEqual([['customer_rows']]);
    expect(functions('SELECT r.n FROM customer_rows(1) AS r(i, n)')).toEqual([['customer_rows']]);
    expect(functions('SELECT (SELECT mask_me(c.email) FROM customers c LIMIT 1)')).toEqual([['mask_me']]);
    // A quoted upper-case name is never a built-in; a schema other than pg_catalog neither.
    expect(functions('SELECT "LOWER"(\'x\'), app.lower(\'x\'), pg_catalog.lower(\'x\')')).toEqual([['lower'], ['lower'], []]);
  });

  it('counts the statistics catalogs\' sampled values as any column, however they are reached', () => {
    const unknown = (sql: string) => {
      const result = lineage(sql);
      return result?.kind === 'known' ? result.columns.map((column) => column.unknown === true) : [];
    };
    expect(unknown("SELECT histogram_bounds::text, most_common_vals::text, null_frac FROM pg_stats WHERE tablename = 'customers'")).toEqual([true, true, false]);
    expect(unknown('SELECT s.most_common_vals::text FROM pg_catalog.pg_stats s, pg_class c')).toEqual([true]);
    expect(unknown('SELECT upper(most_common_vals::text) FROM pg_stats, pg_class')).toEqual([true]);
    expect(unknown('SELECT x.histogram_bounds::text FROM (SELECT * FROM pg_stats) x')).toEqual([true]);
    expect(unknown('SELECT row_to_json(s) FROM pg_stats s')).toEqual([true]);
    expect(unknown('SELECT stavalues1::text FROM pg_statistic')).toEqual([true]);
    expect(unknown("SELECT table_to_xml('pg_stats', true, false, '')")).toEqual([true]);
    // Other sessions' running statements quote the values they write.
    expect(unknown('SELECT pid, upper(query) FROM pg_stat_activity')).toEqual([false, true]);
    // `query` alone is too common a name: another table's column of that name stays a column.
    expect(unknown('SELECT upper(s.query), upper(query) FROM searches s, users u')).toEqual([false, false]);
  });

  it('takes every branch of a set operation, by position', () => {
    expect(summary('SELECT name, id FROM customers UNION SELECT card_number, 1 FROM customers')).toEqual(['customers.card_number,customers.name', 'customers.id']);
    expect(summary('SELECT name FROM customers EXCEPT SELECT email FROM customers INTERSECT SELECT notes FROM customers')).toEqual(['customers.email,customers.name,customers.notes']);
  });

  it('marks * entries, with what derived relations behind them compute', () => {
    expect(summary('SELECT * FROM customers')).toEqual(['*']);
    expect(summary("SELECT *, 1 FROM (SELECT card_number || '' AS k FROM customers) s")).toEqual(['*customers.card_number', '']);
    expect(summary("SELECT s.*, t.* FROM (SELECT upper(email) AS e FROM customers) s, orders t")).toEqual(['*customers.email', '*']);
    // A star on one side of a UNION: the positions cannot be told, so one star entry stands for all.
    expect(summary('SELECT * FROM orders UNION ALL SELECT * FROM (SELECT card_number FROM customers) s')).toEqual(['*customers.card_number']);
  });

  it('names whole rows: row_to_json(t), t.* inside an expression, a bare relation name', () => {
    expect(summary('SELECT row_to_json(c) FROM customers c')).toEqual(['customers.c|whole:customers']);
    expect(summary('SELECT to_jsonb(c.*) FROM customers c')).toEqual(['|whole:customers']);
    expect(summary('SELECT json_agg(s) FROM (SELECT email FROM customers) s')).toEqual(['customers.email']);
    // The whole row of a SELECT * subquery is the whole row of its table.
    expect(summary('SELECT row_to_json(x) FROM (SELECT * FROM customers) x')).toEqual(['customers.x|whole:customers']);
  });

  it('follows RETURNING and VALUES', () => {
    expect(summary("UPDATE customers SET notes = 'x' WHERE id = 1 RETURNING card_number AS c, id")).toEqual(['customers.card_number', 'customers.id']);
    expect(summary("INSERT INTO orders (customer_id) SELECT id FROM customers RETURNING id, (SELECT c.email FROM customers c LIMIT 1)")).toEqual(['orders.id', 'customers.email']);
    expect(summary('DELETE FROM orders o USING customers c WHERE c.id = o.customer_id RETURNING c.email')).toEqual(['customers.email']);
    expect(summary("VALUES (1, 'a'), (2, 'b')")).toEqual(['', '']);
  });

  it('returns what a prepared statement will return for PREPARE, and unknown for FETCH or an EXECUTE nobody resolved', () => {
    expect(lineage("PREPARE p AS SELECT card_number || '' FROM customers")).toEqual({ kind: 'known', columns: [{ star: false, sources: [{ table: 'customers', column: 'card_number' }], wholeRows: [] }] });
    expect(lineage('FETCH ALL FROM c')).toEqual({ kind: 'unknown' });
    expect(lineage('EXECUTE p')).toEqual({ kind: 'unknown' });
    const prepared = classifySql("PREPARE p AS SELECT upper(email) FROM customers");
    expect(classifySql('EXECUTE p', { preparedStatement: () => prepared }).statements[0]!.outputs).toEqual(prepared.statements[0]!.outputs);
    expect(lineage('CALL refresh_totals()')).toEqual({ kind: 'unknown' });
  });

  it('has none for statements without rows of their own', () => {
    for (const sql of ['INSERT INTO orders (customer_id) VALUES (1)', 'CREATE TABLE t (a int)', 'SET search_path = public', 'EXPLAIN SELECT email FROM customers', 'BEGIN']) {
      expect(lineage(sql)).toBeUndefined();
    }
  });
});

describe('outputLineage on statements built to explode it', () => {
  it('gives up (unknown: every computed column masked) rather than work exponentially', () => {
    let sql = 'SELECT card_number FROM customers';
    for (let depth = 0; depth < 40; depth++) sql = `WITH RECURSIVE r${depth}(c) AS (${sql} UNION ALL SELECT c FROM r${depth}) SELECT c FROM r${depth}`;
    // Without the budget this would analyse 2^40 queries; the test's own timeout is the bound.
    expect(lineage(sql)).toEqual({ kind: 'unknown' });
  });
});
