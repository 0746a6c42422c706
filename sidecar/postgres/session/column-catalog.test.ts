import { loadSqlParser } from '../../../api/sql/classify.js';
import { columnKey, functionCatalog, resolveLineage, viewColumns, type ColumnIndex } from './column-catalog.js';

beforeAll(async () => {
  await loadSqlParser();
});

/** viewQuery's row for one view: oid, schema, name, definition, column names as a JSON array. */
function view(oid: number, name: string, columns: readonly string[], definition: string, schema = 'public'): string[][] {
  return [[String(oid), schema, name, definition, JSON.stringify(columns)]];
}

const CARDS = view(100, 'customer_cards', ['id', 'cc', 'contact'], ' SELECT customers.id,\n    customers.card_number AS cc,\n    upper(customers.email) AS contact\n   FROM customers;');

describe('viewColumns', () => {
  it('gives each view column the table columns its definition computes it from', () => {
    const index = viewColumns(CARDS);
    expect(index.get(columnKey(100, 2))).toEqual({
      column: 'cc', table: { schema: 'public', name: 'customer_cards' }, derivedFrom: { sources: [{ table: 'customers', column: 'card_number' }], wholeRows: [] },
    });
    expect(index.get(columnKey(100, 3))?.derivedFrom?.sources).toEqual([{ table: 'customers', column: 'email' }]);
    // And the whole row (attribute 0: `SELECT v FROM customer_cards v`): every column of it.
    expect(index.get(columnKey(100, 0))?.derivedFrom).toEqual({
      sources: [{ table: 'customers', column: 'id' }, { table: 'customers', column: 'card_number' }, { table: 'customers', column: 'email' }],
      wholeRows: ['customer_cards'],
    });
    expect(index.size).toBe(4);
  });

  it('follows views over views to their tables, whole rows included', () => {
    const index = viewColumns([
      ...CARDS,
      ...view(101, 'cards_again', ['again', 'label'], 'SELECT customer_cards.cc AS again, (customer_cards.id || customer_cards.contact) AS label FROM customer_cards;'),
      ...view(102, 'as_json', ['j'], 'SELECT row_to_json(cards_again.*) AS j FROM cards_again;'),
    ]);
    // The view's own column stays a source too: a table named customer_cards in another schema could be meant.
    expect(index.get(columnKey(101, 1))?.derivedFrom).toEqual({ sources: [{ table: 'customer_cards', column: 'cc' }, { table: 'customers', column: 'card_number' }], wholeRows: [] });
    expect(index.get(columnKey(101, 2))?.derivedFrom?.sources).toEqual(expect.arrayContaining([{ table: 'customers', column: 'id' }, { table: 'customers', column: 'email' }]));
    expect(index.get(columnKey(102, 1))?.derivedFrom?.sources).toEqual(expect.arrayContaining([{ table: 'customers', column: 'card_number' }, { table: 'customers', column: 'email' }]));
  });

  it('counts a column as possibly any column where the definition does not say (fails closed)', () => {
    const index = viewColumns([
      ...view(200, 'broken', ['a'], 'SELECT FROM WHERE;'),
      ...view(201, 'mismatched', ['a', 'b'], 'SELECT customers.id FROM customers;'),
      ...view(202, 'over_broken', ['x'], 'SELECT broken.a AS x FROM broken;'),
      ...view(203, 'missing_column', ['y'], 'SELECT customer_cards.nope AS y FROM customer_cards;'),
      ...CARDS,
    ]);
    for (const key of [columnKey(200, 1), columnKey(201, 1), columnKey(201, 2), columnKey(202, 1), columnKey(203, 1)]) {
      expect(index.get(key)?.derivedFrom).toMatchObject({ unknown: true });
    }
  });

  it('follows a chain of views in whatever order the catalog lists them, failing closed beyond 64 levels', () => {
    const chain = (levels: number): string[][][] => {
      const views: string[][][] = [CARDS];
      let inner = 'customer_cards';
      for (let level = 1; level <= levels; level += 1) {
        views.push(view(300 + level, `level_${level}`, ['cc'], `SELECT ${inner}.cc FROM ${inner};`));
        inner = `level_${level}`;
      }
      return views;
    };
    const card = { table: 'customers', column: 'card_number' };
    for (const rows of [chain(20).flat(), chain(20).reverse().flat()]) {
      const index = viewColumns(rows);
      expect(index.get(columnKey(301, 1))?.derivedFrom?.sources).toContainEqual(card);
      expect(index.get(columnKey(320, 1))?.derivedFrom?.sources).toContainEqual(card);
      expect(index.get(columnKey(320, 1))?.derivedFrom?.unknown).toBeUndefined();
    }
    // Listed top first, the outermost view is 80 levels from its table: it is masked as any column.
    expect(viewColumns(chain(80).reverse().flat()).get(columnKey(380, 1))?.derivedFrom).toMatchObject({ unknown: true });
  });

  it('fails closed on a view that reads itself, and resolves a wide stack of views in linear time', () => {
    const self = viewColumns(view(500, 'loop', ['a'], 'SELECT loop.a FROM loop;'));
    expect(self.get(columnKey(500, 1))?.derivedFrom).toMatchObject({ unknown: true });
    // 30 levels of 8 columns, each reading every column of the one below: 8^30 paths if not remembered.
    const rows: string[][] = [...view(600, 'base', ['c'], 'SELECT customers.card_number AS c FROM customers;')];
    let inner = 'base';
    let innerColumns = ['c'];
    for (let level = 1; level <= 30; level += 1) {
      const columns = Array.from({ length: 8 }, (_, index) => `c${index}`);
      const sum = innerColumns.map((column) => `${inner}.${column}`).join(' || ');
      rows.push(...view(600 + level, `wide_${level}`, columns, `SELECT ${columns.map((column) => `(${sum}) AS ${column}`).join(', ')} FROM ${inner};`));
      inner = `wide_${level}`;
      innerColumns = columns;
    }
    const index = viewColumns(rows);
    expect(index.get(columnKey(630, 8))?.derivedFrom?.sources).toContainEqual({ table: 'customers', column: 'card_number' });
  });

  it('takes every schema\'s view of a name as the one a definition may mean', () => {
    const index = viewColumns([
      ...view(400, 'v', ['c'], 'SELECT customers.card_number AS c FROM customers;', 'public'),
      ...view(401, 'v', ['c'], 'SELECT accounts.iban AS c FROM accounts;', 'billing'),
      ...view(402, 'w', ['c'], 'SELECT v.c FROM v;'),
    ]);
    expect(index.get(columnKey(402, 1))?.derivedFrom?.sources).toEqual([{ table: 'v', column: 'c' }, { table: 'customers', column: 'card_number' }, { table: 'accounts', column: 'iban' }]);
  });
});

describe('throughViews', () => {
  it('replaces a computed column\'s view sources by their tables\' and leaves other lineages as they are', () => {
    const index = viewColumns(CARDS);
    expect(index.throughViews!({ sources: [{ table: 'customer_cards', column: 'cc' }, { column: 'n' }], wholeRows: [] }))
      .toEqual({ sources: [{ table: 'customer_cards', column: 'cc' }, { table: 'customers', column: 'card_number' }, { column: 'n' }], wholeRows: [] });
    expect(index.throughViews!({ sources: [], wholeRows: ['customer_cards'] })).toEqual({
      sources: [{ table: 'customers', column: 'id' }, { table: 'customers', column: 'card_number' }, { table: 'customers', column: 'email' }], wholeRows: ['customer_cards'],
    });
    const plain = { sources: [{ table: 'customers', column: 'email' }], wholeRows: ['orders'] };
    expect(index.throughViews!(plain)).toBe(plain);
  });

  it('is absent when the database has no views', () => {
    expect(viewColumns([]).throughViews).toBeUndefined();
  });
});

describe('functionCatalog', () => {
  /** functionQuery's rows: every name, and language and body for those that may reach a masked column. */
  const rows = [
    ['names', JSON.stringify(['card_of', 'both', 'customer_cards_id', 'dynamic', 'py', 'ping', 'pong', 'odd', 'lower', 'harmless']), null, null],
    ['function', 'card_of', 'sql', 'SELECT card_number FROM public.Customers WHERE id = $1'],
    ['function', 'both', 'plpgsql', 'BEGIN RETURN (SELECT 1 FROM orders) || card_of(1) || customer_cards_id(); END'],
    ['function', 'customer_cards_id', 'sql', 'SELECT id FROM customer_cards LIMIT 1'],
    ['function', 'dynamic', 'plpgsql', "BEGIN EXECUTE 'SELECT 1'; END"],
    ['function', 'py', 'plpython3u', 'return 1'],
    ['function', 'ping', 'plpgsql', 'BEGIN RETURN pong(); END'],
    ['function', 'pong', 'plpgsql', 'BEGIN RETURN ping() || (SELECT notes FROM customers LIMIT 1); END'],
    ['function', 'odd', 'sql', 'SELECT 1'],
  ] as string[][];
  const catalog = functionCatalog(rows, ['customers', 'customer_cards', 'Orders']);

  it('gives each function the relations its body names, and what the functions it names return', () => {
    expect(catalog.reads.get('card_of')).toEqual({ sources: [], wholeRows: ['customers'] });
    expect([...catalog.reads.get('both')!.wholeRows].sort()).toEqual(['customer_cards', 'customers', 'orders']);
    // Functions that name each other: both get both.
    expect(catalog.reads.get('ping')?.wholeRows).toEqual(['customers']);
    expect(catalog.reads.get('pong')?.wholeRows).toEqual(['customers']);
  });

  it('counts dynamic SQL, other languages and bodies naming nothing it can find as any column', () => {
    expect(catalog.reads.get('dynamic')?.unknown).toBe(true);
    expect(catalog.reads.get('py')?.unknown).toBe(true);
    expect(catalog.reads.get('odd')?.unknown).toBe(true);
    expect(catalog.known.has('harmless')).toBe(true);
    expect(catalog.reads.has('harmless')).toBe(false);
    // Names it cannot read: every function counts as created since (masked), none as harmless.
    expect(functionCatalog([['names', 'not json', null, null]] as unknown as string[][], []).known.size).toBe(0);
  });

  it('resolves a lineage through functions, then views; a function it never saw is any column', () => {
    const index: ColumnIndex = Object.assign(viewColumns(CARDS), { functions: catalog });
    const resolved = resolveLineage(index, { sources: [{ column: 'x' }], wholeRows: [], functions: ['customer_cards_id', 'harmless'] });
    // customer_cards is a view: its columns are followed to the table columns they come from.
    expect(resolved.sources).toEqual(expect.arrayContaining([{ column: 'x' }, { table: 'customers', column: 'card_number' }]));
    expect(resolved.functions).toBeUndefined();
    expect(resolveLineage(index, { sources: [], wholeRows: [], functions: ['harmless'] })).toEqual({ sources: [], wholeRows: [] });
    expect(resolveLineage(index, { sources: [], wholeRows: [], functions: ['created_since'] }).unknown).toBe(true);
  });
});
