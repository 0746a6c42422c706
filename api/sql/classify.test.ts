// Tests for the SQL classifier: the case table in classify.cases.ts, parse failures, statement texts,
// PREPARE/EXECUTE with and without a session, the SqlClassifier cache, and the function catalog.

import { isGatehouseError } from '../errors.js';
import { CLASSIFY_CASES, EMPTY_CASES, UNPARSABLE_CASES } from './classify.cases.js';
import { classifySql, loadSqlParser, SqlClassifier, type ClassifyContext } from './classify.js';
import { classifyFunctionCall, knownFunctionOperation, parseRelationName } from './functions.js';
import { strictest, strictness, type QualifiedName, type SqlAccess, type SqlClassification } from './operations.js';

function qualified(name: QualifiedName): string {
  return name.schema === undefined ? name.name : `${name.schema}.${name.name}`;
}

/** The compact access notation of classify.cases.ts: "operation [relation] [function()] [unbounded]". */
function describeAccess(access: SqlAccess): string {
  const parts: string[] = [access.operation];
  if (access.relation !== undefined) parts.push(qualified(access.relation));
  if (access.function !== undefined) parts.push(`${qualified(access.function)}()`);
  if (access.unbounded === true) parts.push('unbounded');
  return parts.join(' ');
}

function allAccesses(classification: SqlClassification): string[] {
  return classification.statements.flatMap((statement) => statement.accesses.map(describeAccess)).sort();
}

function errorCodeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    return isGatehouseError(error) ? error.code : `not a GatehouseError: ${String(error)}`;
  }
  return undefined;
}

/** A session that prepared statements by name, as the PostgreSQL session module will provide. */
function sessionWith(prepared: Record<string, string>): ClassifyContext {
  return { preparedStatement: (name) => (prepared[name] === undefined ? undefined : classifySql(prepared[name])) };
}

// Runs before the describe blocks below load the parser: module state is per test file.
describe('before loadSqlParser', () => {
  test('classifying fails with a clear error instead of crashing inside the parser', () => {
    expect(errorCodeOf(() => classifySql('SELECT 1'))).toBe('GH_ERR_SQL_PARSER_NOT_LOADED');
    expect(errorCodeOf(() => new SqlClassifier().classify('SELECT 1'))).toBe('GH_ERR_SQL_PARSER_NOT_LOADED');
  });
});

describe('classifySql', () => {
  beforeAll(async () => {
    await loadSqlParser();
    await loadSqlParser(); // idempotent
  });

  test('the case table is broad', () => {
    expect(CLASSIFY_CASES.length).toBeGreaterThanOrEqual(220);
  });

  test.each(CLASSIFY_CASES)('$theme: $sql → $operation', ({ sql, operation, commands, accesses }) => {
    const classification = classifySql(sql);
    expect(classification.operation).toBe(operation);
    if (commands !== undefined) expect(classification.statements.map((statement) => statement.command)).toEqual(commands);
    if (accesses !== undefined) expect(allAccesses(classification)).toEqual([...accesses].sort());
  });

  test.each(CLASSIFY_CASES)('invariants hold: $sql', ({ sql }) => {
    const classification = classifySql(sql);
    for (const statement of classification.statements) {
      expect(statement.accesses.length).toBeGreaterThan(0);
      expect(statement.operation).toBe(strictest(statement.accesses.map((access) => access.operation)));
      expect(statement.text).toBe(statement.text.trim());
      expect(statement.text.length).toBeGreaterThan(0);
    }
    const operations = classification.operations;
    expect(new Set(operations).size).toBe(operations.length);
    expect([...operations].sort((left, right) => strictness(right) - strictness(left))).toEqual(operations);
    expect(classification.operation).toBe(operations[0]);
    expect(new Set(operations)).toEqual(new Set(classification.statements.map((statement) => statement.operation)));
  });

  test.each(UNPARSABLE_CASES)('unparsable text is denied: %j', (sql) => {
    expect(errorCodeOf(() => classifySql(sql))).toBe('GH_ERR_SQL_UNPARSABLE');
  });

  test.each(EMPTY_CASES)('text without a statement is empty: %j', (sql) => {
    expect(errorCodeOf(() => classifySql(sql))).toBe('GH_ERR_SQL_EMPTY');
  });

  test('a parse error says what and where, counting characters from 1 like PostgreSQL', () => {
    try {
      classifySql("SELECT 'é', 'abc");
      throw new Error('expected a parse error');
    } catch (error) {
      expect(isGatehouseError(error, 'GH_ERR_SQL_UNPARSABLE')).toBe(true);
      expect((error as Error).message).toContain('unterminated quoted string');
      expect((error as Error).message).toContain('at character 13');
    }
  });

  test('nesting deeper than the stack allows fails closed as unparsable', () => {
    const deep = `SELECT ${'abs('.repeat(3000)}1${')'.repeat(3000)}`;
    expect(errorCodeOf(() => classifySql(deep))).toBe('GH_ERR_SQL_UNPARSABLE');
  });

  test('results are frozen, so a cached answer cannot be changed by one caller for the next', () => {
    const classification = classifySql('DELETE FROM t');
    expect(Object.isFrozen(classification)).toBe(true);
    expect(Object.isFrozen(classification.statements)).toBe(true);
    expect(Object.isFrozen(classification.statements[0])).toBe(true);
    expect(Object.isFrozen(classification.statements[0].accesses[0])).toBe(true);
  });
});

describe('statement texts', () => {
  beforeAll(loadSqlParser);

  test('each statement of a string gets its own trimmed text', () => {
    const classification = classifySql('  SELECT 1 ;\n\n  DELETE FROM t WHERE id = 2;  -- trailing comment\n');
    expect(classification.statements.map((statement) => statement.text)).toEqual(['SELECT 1', 'DELETE FROM t WHERE id = 2']);
  });

  test('byte offsets from the parser are cut correctly around multi-byte characters', () => {
    const sql = "SELECT 'é'; DELETE FROM \"ünïcödé\" WHERE note = '🦄🦄'; SELECT '日本語' AS x";
    const texts = classifySql(sql).statements.map((statement) => statement.text);
    expect(texts).toEqual(["SELECT 'é'", 'DELETE FROM "ünïcödé" WHERE note = \'🦄🦄\'', "SELECT '日本語' AS x"]);
    expect(texts.join('; ')).toBe(sql);
  });

  test('a multi-byte character right before the statement boundary', () => {
    const texts = classifySql('SELECT 1 AS ü;SELECT 2 AS 🦄;TABLE t').statements.map((statement) => statement.text);
    expect(texts).toEqual(['SELECT 1 AS ü', 'SELECT 2 AS 🦄', 'TABLE t']);
  });

  test('comments before a statement stay with it', () => {
    const texts = classifySql('/* first */ SELECT 1; /* ü */ SELECT 2').statements.map((statement) => statement.text);
    expect(texts).toEqual(['/* first */ SELECT 1', '/* ü */ SELECT 2']);
  });
});

describe('PREPARE and EXECUTE', () => {
  beforeAll(loadSqlParser);

  test('without a context an EXECUTE is a call: what it runs is unknown', () => {
    expect(classifySql('EXECUTE del(1)').operation).toBe('call');
  });

  test('with a context EXECUTE counts as the prepared statement', () => {
    const session = sessionWith({ del: 'DELETE FROM orders WHERE id = $1', get: 'SELECT * FROM orders WHERE id = $1' });
    const deletion = classifySql('EXECUTE del(1)', session);
    expect(deletion.operation).toBe('delete');
    expect(allAccesses(deletion)).toEqual(['delete orders']);
    expect(deletion.statements[0].command).toBe('EXECUTE');
    expect(classifySql('EXECUTE get(1)', session).operation).toBe('read');
  });

  test('a name the session does not know is still a call', () => {
    expect(classifySql('EXECUTE missing', sessionWith({})).operation).toBe('call');
    expect(classifySql('EXECUTE missing', {}).operation).toBe('call');
  });

  test('EXPLAIN ANALYZE EXECUTE runs it; plain EXPLAIN EXECUTE only reads', () => {
    const session = sessionWith({ wipe: 'DELETE FROM orders' });
    expect(classifySql('EXPLAIN ANALYZE EXECUTE wipe', session).operation).toBe('delete');
    expect(classifySql('EXPLAIN EXECUTE wipe', session).operation).toBe('read');
  });

  test('prepared names are looked up as the parser folds them', () => {
    const asked: string[] = [];
    classifySql('EXECUTE MyPlan; EXECUTE "MyPlan"', { preparedStatement: (name) => (asked.push(name), undefined) });
    expect(asked).toEqual(['myplan', 'MyPlan']);
  });

  test('PREPARE counts as what it prepares, so a later EXECUTE can be resolved from it', () => {
    const prepared = classifySql('PREPARE del(int) AS DELETE FROM orders WHERE id = $1');
    expect(prepared.operation).toBe('delete');
    const session: ClassifyContext = { preparedStatement: (name) => (name === 'del' ? prepared : undefined) };
    expect(classifySql('EXECUTE del(7)', session).operation).toBe('delete');
  });
});

describe('SqlClassifier', () => {
  beforeAll(loadSqlParser);

  test('answers repeated texts from its cache', () => {
    const classifier = new SqlClassifier();
    const first = classifier.classify('SELECT * FROM orders');
    const second = classifier.classify('SELECT * FROM orders');
    expect(second).toBe(first);
    expect(classifier.stats).toEqual({ hits: 1, misses: 1, size: 1 });
  });

  test('forgets the least recently used text once full', () => {
    const classifier = new SqlClassifier({ cacheSize: 2 });
    classifier.classify('SELECT c1');
    classifier.classify('SELECT c2');
    classifier.classify('SELECT c1'); // hit: SELECT c2 is now the least recently used
    classifier.classify('SELECT c3'); // evicts SELECT c2
    expect(classifier.stats).toEqual({ hits: 1, misses: 3, size: 2 });
    classifier.classify('SELECT c1');
    expect(classifier.stats.hits).toBe(2);
    classifier.classify('SELECT c2');
    expect(classifier.stats.misses).toBe(4);
  });

  test('answers a run of one shape from its last lookup, interleaved shapes correctly, and keeps the cache\'s order', () => {
    const classifier = new SqlClassifier({ cacheSize: 2 });
    const reading = classifier.classify('SELECT * FROM orders WHERE id = 1');
    expect(classifier.classify('SELECT * FROM orders WHERE id = 2')).toBe(reading);
    const deleting = classifier.classify('DELETE FROM orders WHERE id = 3');
    expect(deleting.operation).toBe('delete');
    expect(classifier.classify('SELECT * FROM orders WHERE id = 4')).toBe(reading); // from the cache: now the most recent
    expect(classifier.classify('SELECT * FROM orders WHERE id = 5')).toBe(reading);
    expect(classifier.classify('UPDATE orders SET paid = true WHERE id = 6').operation).toBe('write'); // evicts the DELETE
    expect(classifier.stats).toEqual({ hits: 3, misses: 3, size: 2 });
    expect(classifier.classify('SELECT * FROM orders WHERE id = 7')).toBe(reading);
    expect(classifier.classify('DELETE FROM orders WHERE id = 8').operation).toBe('delete');
    expect(classifier.stats).toEqual({ hits: 4, misses: 4, size: 2 });
  });

  test('stays within its bound whatever it is fed', () => {
    const classifier = new SqlClassifier({ cacheSize: 50 });
    for (let index = 0; index < 500; index += 1) classifier.classify(`SELECT c${index}`);
    expect(classifier.stats.size).toBe(50);
    expect(classifier.stats.misses).toBe(500);
  });

  test('statements that differ only in numbers share one entry', () => {
    const classifier = new SqlClassifier();
    for (let index = 0; index < 100; index += 1) classifier.classify(`SELECT * FROM orders WHERE id = ${index}`);
    expect(classifier.stats).toEqual({ hits: 99, misses: 1, size: 1 });
  });

  test('caches parse errors too, throwing a fresh error each time', () => {
    const classifier = new SqlClassifier();
    let firstError: unknown;
    let secondError: unknown;
    try {
      classifier.classify('SELEC x');
    } catch (error) {
      firstError = error;
    }
    try {
      classifier.classify('SELEC x');
    } catch (error) {
      secondError = error;
    }
    expect(isGatehouseError(firstError, 'GH_ERR_SQL_UNPARSABLE')).toBe(true);
    expect(isGatehouseError(secondError, 'GH_ERR_SQL_UNPARSABLE')).toBe(true);
    expect(secondError).not.toBe(firstError);
    expect((secondError as Error).message).toBe((firstError as Error).message);
    expect(errorCodeOf(() => classifier.classify('-- nothing'))).toBe('GH_ERR_SQL_EMPTY');
    expect(errorCodeOf(() => classifier.classify('-- nothing'))).toBe('GH_ERR_SQL_EMPTY');
    expect(classifier.stats).toEqual({ hits: 2, misses: 2, size: 2 });
  });

  test('does not answer an EXECUTE from one session with what another session prepared', () => {
    const classifier = new SqlClassifier();
    const deleting = sessionWith({ p: 'DELETE FROM orders WHERE id = $1' });
    const reading = sessionWith({ p: 'SELECT * FROM orders WHERE id = $1' });
    expect(classifier.classify('EXECUTE p(1)', deleting).operation).toBe('delete');
    expect(classifier.classify('EXECUTE p(1)', reading).operation).toBe('read');
    expect(classifier.classify('EXECUTE p(1)').operation).toBe('call');
    expect(classifier.classify('EXECUTE p(1)', deleting).operation).toBe('delete');
    // The parse is still cached: only the first lookup missed.
    expect(classifier.stats).toEqual({ hits: 3, misses: 1, size: 1 });
  });

  test('an EXECUTE first seen without a context is resolved once a context arrives', () => {
    const classifier = new SqlClassifier();
    expect(classifier.classify('SELECT 1; EXECUTE p').operation).toBe('call');
    expect(classifier.classify('SELECT 1; EXECUTE p', sessionWith({ p: 'DELETE FROM t' })).operation).toBe('delete');
  });

  test('texts without EXECUTE ignore the context and share one answer', () => {
    const classifier = new SqlClassifier();
    const first = classifier.classify('DELETE FROM t WHERE id = 1', sessionWith({}));
    expect(classifier.classify('DELETE FROM t WHERE id = 1')).toBe(first);
  });

  test('very long texts are classified but not cached', () => {
    const classifier = new SqlClassifier({ maxCachedTextLength: 100 });
    const long = `SELECT ${'1 + '.repeat(50)}1`;
    classifier.classify(long);
    classifier.classify(long);
    expect(classifier.stats).toEqual({ hits: 0, misses: 2, size: 0 });
  });

  test('rejects a cache size that is not a positive integer', () => {
    expect(errorCodeOf(() => new SqlClassifier({ cacheSize: 0 }))).toBe('GH_ERR_INVALID_ARGUMENT');
    expect(errorCodeOf(() => new SqlClassifier({ cacheSize: 1.5 }))).toBe('GH_ERR_INVALID_ARGUMENT');
  });
});

describe('function catalog', () => {
  test.each([
    ['orders_id_seq', { name: 'orders_id_seq' }],
    ['Sales.Orders_Seq', { schema: 'sales', name: 'orders_seq' }],
    ['"Sales"."Orders Seq"', { schema: 'Sales', name: 'Orders Seq' }],
    ['"a""b"', { name: 'a"b' }],
    ['db.app.seq', { schema: 'app', name: 'seq' }],
    ['  padded  ', { name: 'padded' }],
    ['ÄBC', { name: 'Äbc' }],
  ])('reads the regclass text %j as PostgreSQL would', (text, expected) => {
    expect(parseRelationName(text)).toEqual(expected);
  });

  test.each(['', 'a..b', '"unterminated', 'two words', 'a.b.c.d', '""', 'a.'])('rejects the malformed name %j', (text) => {
    expect(parseRelationName(text)).toBeUndefined();
  });

  test('a built-in name in another schema is the user\'s own function: a call, or stricter, never a read', () => {
    expect(classifyFunctionCall({ name: 'lower' }, []).operation).toBe('read');
    expect(classifyFunctionCall({ schema: 'pg_catalog', name: 'lower' }, []).operation).toBe('read');
    // Only a quoted name keeps upper case, and no built-in has it: someone's own function.
    expect(classifyFunctionCall({ schema: 'PG_CATALOG', name: 'lower' }, []).operation).toBe('call');
    expect(classifyFunctionCall({ name: 'LOWER' }, []).operation).toBe('call');
    expect(classifyFunctionCall({ name: 'PG_TERMINATE_BACKEND' }, []).operation).toBe('admin');
    expect(classifyFunctionCall({ schema: 'app', name: 'lower' }, []).operation).toBe('call');
    expect(classifyFunctionCall({ schema: 'app', name: 'nextval' }, ['s']).operation).toBe('call');
    expect(classifyFunctionCall({ schema: 'ext', name: 'dblink_exec' }, []).operation).toBe('admin');
  });

  test('set_config is session state unless it changes the acting role', () => {
    expect(classifyFunctionCall({ name: 'set_config' }, ['work_mem', '1MB', undefined]).operation).toBe('session');
    expect(classifyFunctionCall({ name: 'set_config' }, ['Role', 'admin', undefined]).operation).toBe('admin');
    expect(classifyFunctionCall({ name: 'set_config' }, [' session_authorization ', 'x']).operation).toBe('admin');
    expect(classifyFunctionCall({ name: 'set_config' }, [undefined, 'x']).operation).toBe('admin');
  });

  test('sequence functions name the sequence they touch when it is a constant', () => {
    expect(classifyFunctionCall({ name: 'nextval' }, ['app.seq'])).toEqual({ operation: 'write', relation: { schema: 'app', name: 'seq' } });
    expect(classifyFunctionCall({ name: 'currval' }, ['seq'])).toEqual({ operation: 'read', relation: { name: 'seq' } });
    expect(classifyFunctionCall({ name: 'nextval' }, [undefined])).toEqual({ operation: 'write' });
  });

  test('families are recognised by name', () => {
    expect(knownFunctionOperation('has_schema_privilege')).toBe('read');
    expect(knownFunctionOperation('pg_function_is_visible')).toBe('read');
    expect(knownFunctionOperation('pg_stat_get_live_tuples')).toBe('read');
    expect(knownFunctionOperation('pg_stat_reset_shared')).toBe('admin');
    expect(knownFunctionOperation('pg_ls_waldir')).toBe('admin');
    expect(knownFunctionOperation('dblink_send_query')).toBe('admin');
    expect(knownFunctionOperation('no_such_function')).toBeUndefined();
  });
});
