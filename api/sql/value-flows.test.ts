import { classifySql, loadSqlParser } from './classify.js';
import type { ValueFlow } from './value-flows.js';

beforeAll(async () => {
  await loadSqlParser();
});

/** Each flow as `target <- sources|whole:relations|any`, for compact expectations. */
function flows(sql: string): string[] {
  return classifySql(sql).statements.flatMap((statement) => statement.flows ?? []).map(summarise);
}

function summarise(flow: ValueFlow): string {
  const into = flow.into.kind === 'column' ? `${flow.into.table}.${flow.into.column}`
    : flow.into.kind === 'relation' ? `${flow.into.table}(${flow.into.sameNames ? 'same names' : 'by position'})`
    : flow.into.what;
  const from = [
    ...flow.from.sources.map((source) => `${source.table ?? '?'}.${source.column}`).sort(),
    ...[...flow.from.wholeRows].sort().map((relation) => `whole:${relation}`),
    ...(flow.from.unknown ? ['any'] : []),
    ...[...(flow.from.functions ?? [])].sort().map((name) => `fn:${name}`),
  ].join(',');
  return `${into} <- ${from}`;
}

describe('valueFlows', () => {
  it.each([
    ['SELECT id, upper(name) FROM customers WHERE id = 1', []],
    ["INSERT INTO customers (name, email) VALUES ('a', $1)", []],
    ["UPDATE customers SET notes = 'x' WHERE card_number LIKE '4%'", []],
    ['DELETE FROM customers WHERE email IS NULL', []],
    ["SELECT nextval('orders_id_seq'), pg_notify('ch', 'static')", []],
  ])('finds nothing where no column value goes anywhere: %s', (sql, expected) => {
    expect(flows(sql)).toEqual(expected);
  });

  it.each([
    ['UPDATE customers SET notes = card_number', ['customers.notes <- customers.card_number']],
    ['UPDATE customers c SET notes = upper(c.name), name = lower(name) WHERE id = 1', ['customers.notes <- customers.name', 'customers.name <- customers.name']],
    ['UPDATE customers SET (notes, name) = (SELECT email, name FROM customers c2 WHERE c2.id = 1)', ['customers.notes <- customers.email,customers.name', 'customers.name <- customers.email,customers.name']],
    ['UPDATE orders o SET note = c.email FROM customers c WHERE c.id = o.customer_id', ['orders.note <- customers.email']],
    ['INSERT INTO archive (who, card) SELECT name, card_number FROM customers', ['archive.who <- customers.name', 'archive.card <- customers.card_number']],
    ['INSERT INTO archive SELECT * FROM customers', ['archive(by position) <- whole:customers']],
    ['INSERT INTO archive (a, b) SELECT * FROM customers', ['archive.a <- whole:customers', 'archive.b <- whole:customers']],
    ['WITH x AS (SELECT email FROM customers) INSERT INTO archive (e) SELECT email FROM x', ['archive.e <- customers.email']],
    ["INSERT INTO customers (id, name) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET notes = customers.card_number, name = excluded.name", ['customers.notes <- customers.card_number']],
    ['INSERT INTO customers (id, name) SELECT id, email FROM customers ON CONFLICT (id) DO UPDATE SET notes = excluded.name', ['customers.id <- customers.id', 'customers.name <- customers.email', 'customers.notes <- customers.email']],
    ['MERGE INTO archive a USING customers c ON a.id = c.id WHEN MATCHED THEN UPDATE SET who = c.name WHEN NOT MATCHED THEN INSERT (id, who) VALUES (c.id, c.email)', ['archive.who <- customers.name', 'archive.id <- customers.id', 'archive.who <- customers.email']],
    ['WITH u AS (UPDATE customers SET notes = email RETURNING id) SELECT * FROM u', ['customers.notes <- customers.email']],
  ])('follows assigned values: %s', (sql, expected) => {
    expect(flows(sql)).toEqual(expected);
  });

  it.each([
    ['CREATE TABLE copy AS SELECT name AS who, id FROM customers', ['copy.who <- customers.name', 'copy.id <- customers.id']],
    ['CREATE TABLE copy (a, b) AS SELECT name, id FROM customers', ['copy.a <- customers.name', 'copy.b <- customers.id']],
    ['CREATE TABLE copy AS SELECT * FROM customers', ['copy(same names) <- whole:customers']],
    ['SELECT name INTO copy FROM customers', ['copy.name <- customers.name']],
    ['CREATE VIEW v (who) AS SELECT name FROM customers', ['v.who <- customers.name']],
    ['CREATE MATERIALIZED VIEW mv AS SELECT upper(email) AS e FROM customers', ['mv.e <- customers.email']],
    ['CREATE TABLE t AS EXECUTE p', ['t(by position) <- any']],
    ['ALTER TABLE customers RENAME COLUMN card_number TO cc', ['customers.cc <- customers.card_number']],
    ['ALTER TABLE customers RENAME TO people', ['people(same names) <- whole:customers']],
    ["COPY (SELECT name FROM customers) TO '/tmp/names'", ['a server file (COPY TO) <- customers.name']],
    ["COPY customers (email) TO PROGRAM 'cat'", ['a program (COPY TO PROGRAM) <- customers.email']],
    ["COPY customers TO '/tmp/all'", ['a server file (COPY TO) <- whole:customers']],
    ['COPY (SELECT card_of(id) FROM orders) TO STDOUT', ['card_of() <- orders.id', 'COPY output, which has no column names to mask by (use SELECT) <- orders.id,fn:card_of']],
    ['COPY (UPDATE customers SET notes = name RETURNING id) TO STDOUT', ['customers.notes <- customers.name', 'COPY output, which has no column names to mask by (use SELECT) <- customers.id']],
  ])('follows values into new relations, new names and server files: %s', (sql, expected) => {
    expect(flows(sql)).toEqual(expected);
  });

  it.each([
    ["SELECT set_config('app.x', name, false) FROM customers", ['set_config() <- customers.name']],
    ["SELECT 1 FROM customers WHERE set_config('app.x', email, false) IS NOT NULL", ['set_config() <- customers.email']],
    ["SELECT count(*) FROM customers c JOIN orders o ON pg_notify('ch', c.card_number) IS NULL", ['pg_notify() <- customers.card_number']],
    ['SELECT app.audit(name) FROM customers', ['app.audit() <- customers.name']],
    ['SELECT * FROM customers ORDER BY app.remember(email)', ['app.remember() <- customers.email']],
    ['CALL app.keep((SELECT name FROM customers LIMIT 1))', ['procedure app.keep() <- customers.name']],
    ["PREPARE p AS UPDATE customers SET notes = name", ['customers.notes <- customers.name']],
    ['EXPLAIN ANALYZE UPDATE customers SET notes = name', ['customers.notes <- customers.name']],
  ])('follows arguments of functions with effects, wherever they are called: %s', (sql, expected) => {
    expect(flows(sql)).toEqual(expected);
  });

  it('counts an EXECUTE of a statement it did not see prepared as anything going anywhere', () => {
    expect(flows('EXECUTE p')).toEqual(['a statement prepared elsewhere <- any']);
    const prepared = classifySql('UPDATE customers SET notes = name');
    const executed = classifySql('EXECUTE p', { preparedStatement: () => prepared });
    expect(executed.statements[0]!.flows?.map(summarise)).toEqual(['customers.notes <- customers.name']);
  });
});
