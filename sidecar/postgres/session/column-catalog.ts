// Resolves result columns to their source table and column (RowDescription carries only a table
// OID and attribute number), so column masking rules survive aliasing: `SELECT card_number AS x
// FROM customers` is still masked. A view's column is resolved too, to what its definition computes
// it from (views inside it followed to their tables), so `SELECT cc FROM v` over
// `CREATE VIEW v AS SELECT card_number AS cc FROM customers` is masked as customers.card_number.
// Looked up once per resource and refreshed after a while, with two catalog queries on a session's
// own upstream connection before the app gets it.
import { classifySql } from '../../../api/sql/classify.js';
import type { QualifiedName } from '../../../api/sql/operations.js';
import { ANY_COLUMN, STATISTICS_VALUE_COLUMNS, TABLE_READING_FUNCTIONS, type OutputColumn, type SourceColumn as LineageSource } from '../../../api/sql/output-lineage.js';
import type { ColumnLineage } from '../../masking/column-matcher.js';
import type { UpstreamConnection } from '../upstream/upstream-connection.js';
import { decodeBackendMessage } from '../protocol/backend-messages.js';
import { FrameSplitter } from '../protocol/frame-splitter.js';
import { encodeQuery, encodeTerminate } from '../protocol/frontend-encoders.js';
import { GatehouseError } from '../../../api/errors.js';

export interface SourceColumn {
  readonly column: string;
  readonly table: QualifiedName;
  /** For a column of a view (or materialized view): the table columns its values come from. */
  readonly derivedFrom?: ColumnLineage;
}

export interface ColumnIndex extends ReadonlyMap<string, SourceColumn> {
  /**
   * A computed column's lineage with what the view columns it names come from added
   * (`upper(v.cc)` over a view); absent when the database has no views.
   */
  readonly throughViews?: (lineage: ColumnLineage) => ColumnLineage;
  /** What functions may return (resolveLineage); absent when no catalog lookup was made. */
  readonly functions?: FunctionCatalog;
}

/** The column index as the catalog builds it. */
class CatalogIndex extends Map<string, SourceColumn> implements ColumnIndex {
  throughViews?: (lineage: ColumnLineage) => ColumnLineage;
  functions?: FunctionCatalog;
}

export function columnKey(tableOid: number, attribute: number): string {
  return `${tableOid}:${attribute}`;
}

/** `card_*` → `card\_%` for ILIKE: glob wildcards become LIKE's, LIKE's own become literal. */
export function globToLikePattern(glob: string): string {
  return glob.replace(/[\\%_]/g, (char) => `\\${char}`).replace(/\*/g, '%').replace(/\?/g, '_');
}

function sqlLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/**
 * The catalog query for columns whose name matches one of the column parts of the masking globs,
 * and for the statistics catalogs' columns of sampled values (pg_stats.most_common_vals, …).
 */
export function catalogQuery(columnGlobs: readonly string[]): string {
  const sampled = [...STATISTICS_VALUE_COLUMNS].flatMap(([relation, columns]) => columns.map((column) => sqlLiteral(`${relation}.${column}`)));
  return [
    'SELECT a.attrelid::int8, a.attnum, a.attname, c.relname, n.nspname',
    'FROM pg_catalog.pg_attribute a',
    'JOIN pg_catalog.pg_class c ON c.oid = a.attrelid',
    'JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace',
    "WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','v','m','p','f')",
    `AND (a.attname ILIKE ANY (${columnPatterns(columnGlobs)})`,
    `OR (n.nspname = 'pg_catalog' AND c.relname || '.' || a.attname = ANY (ARRAY[${sampled.join(', ')}]::text[])))`,
  ].join(' ');
}

/** The ILIKE patterns of the column parts of the masking globs, as an SQL array. */
function columnPatterns(columnGlobs: readonly string[]): string {
  const patterns = [...new Set(columnGlobs.map((glob) => globToLikePattern(glob.split('.').at(-1)!)))];
  return `ARRAY[${patterns.map(sqlLiteral).join(', ')}]::text[]`;
}

/**
 * The views and materialized views whose columns can come from a column a masking glob names: those
 * that read, directly or through other views (pg_depend of their rewrite rules), a relation with
 * such a column. For each, its definition (deparsed once) and its column names in order, as a JSON
 * array. Views that cannot reach such a column are not read: a database's other views cost nothing.
 */
export function viewQuery(columnGlobs: readonly string[]): string {
  return [
    reachingRelations(columnGlobs),
    'SELECT c.oid::int8, n.nspname, c.relname, pg_catalog.pg_get_viewdef(c.oid),',
    '(SELECT pg_catalog.json_agg(a.attname ORDER BY a.attnum)::text FROM pg_catalog.pg_attribute a',
    'WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)',
    'FROM pg_catalog.pg_class c',
    'JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace',
    "WHERE c.relkind IN ('v','m') AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
    'AND c.oid IN (SELECT oid FROM reaching)',
  ].join(' ');
}

/**
 * `WITH RECURSIVE reaching(oid) AS (...)`: the relations with a column a masking glob names, the
 * views that call a user function (what it reads is resolved later, with the function catalog), and
 * the views that read any of them, directly or through other views (pg_depend of their rewrite rules).
 */
function reachingRelations(columnGlobs: readonly string[]): string {
  return [
    'WITH RECURSIVE reaching(oid) AS (',
    'SELECT a.attrelid FROM pg_catalog.pg_attribute a',
    `WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attname ILIKE ANY (${columnPatterns(columnGlobs)})`,
    'UNION',
    'SELECT r.ev_class FROM pg_catalog.pg_depend d',
    'JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid',
    'JOIN pg_catalog.pg_proc p ON p.oid = d.refobjid',
    'JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace',
    "WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass",
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
    'UNION',
    'SELECT r.ev_class FROM pg_catalog.pg_depend d',
    'JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid',
    'JOIN reaching ON reaching.oid = d.refobjid',
    "WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass",
    'AND r.ev_class <> d.refobjid)',
  ].join(' ');
}

/** Words in a routine's body that run SQL it does not spell out: anything may be read. */
const DYNAMIC_SQL_WORDS = [
  'execute', ...TABLE_READING_FUNCTIONS.keys(), 'dblink', 'dblink_exec', 'dblink_open', 'dblink_fetch', 'dblink_send_query',
  // The statistics catalogs' sampled values: any column's.
  ...STATISTICS_VALUE_COLUMNS.keys(),
];

/** SQL for `expression` (a name) with every character but [a-z0-9_] escaped for a regular expression. */
function sqlRegexEscaped(expression: string): string {
  return `pg_catalog.regexp_replace(${expression}, '([^a-z0-9_])', '\\\\\\1', 'g')`;
}

/** A regular expression source matching any of `words` as a whole word (PostgreSQL `\m...\M` or JS `\b...\b`). */
function wordsPattern(words: readonly string[], open: string, close: string): string {
  return `${open}(${words.map((word) => word.replace(/[^a-z0-9_]/g, (char) => `\\${char}`)).join('|')})${close}`;
}

/**
 * Every function name in the database (lower case), and for the functions whose results may hold a
 * masked column's values, their language and body: user functions (not pg_catalog's, not an
 * extension's) whose body names a relation with a column a masking glob names or a view reaching one,
 * runs SQL it does not spell out (EXECUTE, query_to_xml, dblink, ...), is written in another language
 * than SQL or PL/pgSQL, or names such a function (followed recursively). Names are matched as whole
 * words, case-insensitively, anywhere in the body (strings and comments too: more, never less).
 */
export function functionQuery(columnGlobs: readonly string[]): string {
  return [
    reachingRelations(columnGlobs),
    `, pattern(p) AS (SELECT '\\m(' || pg_catalog.string_agg(DISTINCT ${sqlRegexEscaped('pg_catalog.lower(c.relname)')}, '|') || ')\\M'`,
    'FROM pg_catalog.pg_class c WHERE c.oid IN (SELECT oid FROM reaching))',
    ', userfn AS (SELECT p.oid, pg_catalog.lower(p.proname) AS name, l.lanname,',
    "CASE WHEN p.prosrc = '' THEN pg_catalog.pg_get_functiondef(p.oid) ELSE p.prosrc END AS body",
    'FROM pg_catalog.pg_proc p',
    'JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace',
    'JOIN pg_catalog.pg_language l ON l.oid = p.prolang',
    "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND p.prokind IN ('f', 'p', 'w')",
    "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid = p.oid AND d.deptype = 'e'))",
    ', tainted(oid) AS (',
    `SELECT u.oid FROM userfn u, pattern WHERE u.lanname NOT IN ('sql', 'plpgsql') OR u.body ~* pattern.p OR u.body ~* ${sqlLiteral(wordsPattern(DYNAMIC_SQL_WORDS, '\\m', '\\M'))}`,
    'UNION',
    `SELECT u.oid FROM userfn u JOIN userfn t ON u.body ~* ('\\m' || ${sqlRegexEscaped('t.name')} || '\\M')`,
    'JOIN tainted ON tainted.oid = t.oid)',
    // Every name in one row (a JSON array): thousands of rows would cost more to read than the lookup itself.
    "SELECT 'names', (SELECT pg_catalog.json_agg(DISTINCT pg_catalog.lower(p.proname))::text FROM pg_catalog.pg_proc p), NULL, NULL",
    "UNION ALL SELECT 'function', u.name, u.lanname, u.body FROM userfn u WHERE u.oid IN (SELECT oid FROM tainted)",
  ].join(' ');
}

/** What the functions of a database may return, as functionQuery found them. */
export interface FunctionCatalog {
  /** Every function name: one missing was created since, and counts as possibly any column. */
  readonly known: ReadonlySet<string>;
  /** Per name, what the functions of that name (any schema, any overload) may return values of. */
  readonly reads: ReadonlyMap<string, ColumnLineage>;
}

/**
 * What each function functionQuery returned may return values of: the relations its body names among
 * `relations` (whole rows), what the functions it names may return, or anything when it runs SQL it
 * does not spell out, is in another language, or names none that this reading can find.
 */
export function functionCatalog(rows: readonly (readonly string[])[], relations: readonly string[]): FunctionCatalog {
  const known = new Set<string>();
  const bodies = new Map<string, { language: string; body: string }[]>();
  for (const [kind, name, language, body] of rows) {
    if (kind === 'names') for (const each of jsonNames(name)) known.add(each);
    if (kind !== 'function' || name === undefined) continue;
    known.add(name);
    bodies.set(name, [...(bodies.get(name) ?? []), { language: language ?? '', body: body ?? '' }]);
  }
  const mentions = (words: readonly string[]) => (words.length === 0 ? undefined : new RegExp(wordsPattern(words, '\\b', '\\b'), 'gi'));
  const relationWords = mentions(relations.map((name) => name.toLowerCase()));
  const functionWords = mentions([...bodies.keys()]);
  const dynamic = new RegExp(wordsPattern(DYNAMIC_SQL_WORDS, '\\b', '\\b'), 'i');
  const own = new Map<string, { lineage: ColumnLineage; calls: Set<string> }>();
  for (const [name, definitions] of bodies) {
    const rowsRead = new Set<string>();
    const calls = new Set<string>();
    let unknown = false;
    for (const { language, body } of definitions) {
      if ((language !== 'sql' && language !== 'plpgsql') || dynamic.test(body)) unknown = true;
      for (const match of body.matchAll(relationWords ?? /$^/g)) rowsRead.add(match[1]!.toLowerCase());
      for (const match of body.matchAll(functionWords ?? /$^/g)) if (match[1]!.toLowerCase() !== name) calls.add(match[1]!.toLowerCase());
    }
    // Found reaching a masked column, yet naming nothing found here (a name only PostgreSQL's word rules see): anything.
    if (rowsRead.size === 0 && calls.size === 0) unknown = true;
    own.set(name, { lineage: unknown ? ANY_COLUMN : { sources: [], wholeRows: [...rowsRead] }, calls });
  }
  // What each returns, with what the functions it names return: to a fixed point (they may name each other).
  const reads = new Map<string, ColumnLineage>([...own].map(([name, entry]) => [name, entry.lineage]));
  for (let changed = true; changed; ) {
    changed = false;
    for (const [name, entry] of own) {
      const current = reads.get(name)!;
      if (current.unknown === true) continue;
      const rows = new Set(current.wholeRows);
      let unknown = false;
      for (const callee of entry.calls) {
        const theirs = reads.get(callee);
        if (theirs?.unknown === true) unknown = true;
        for (const relation of theirs?.wholeRows ?? []) rows.add(relation);
      }
      if (unknown) {
        reads.set(name, ANY_COLUMN);
        changed = true;
      } else if (rows.size > current.wholeRows.length) {
        reads.set(name, { sources: [], wholeRows: [...rows] });
        changed = true;
      }
    }
  }
  return { known, reads };
}

/**
 * A lineage with the functions it names replaced by what they may return (the function catalog),
 * then the view columns it names followed to their tables: what column rules are matched against.
 */
export function resolveLineage(index: ColumnIndex, lineage: ColumnLineage): ColumnLineage {
  let resolved = lineage;
  const functions = index.functions;
  if (lineage.functions !== undefined && lineage.functions.length > 0 && functions !== undefined) {
    const sources = [...lineage.sources];
    const wholeRows = new Set(lineage.wholeRows);
    let unknown = lineage.unknown === true;
    for (const name of lineage.functions) {
      const reads = functions.reads.get(name);
      if (reads === undefined) {
        // Known and reaching nothing masked: its result holds none of it. Unknown: created since the lookup.
        if (!functions.known.has(name)) unknown = true;
        continue;
      }
      unknown ||= reads.unknown === true;
      sources.push(...reads.sources);
      for (const relation of reads.wholeRows) wholeRows.add(relation);
    }
    resolved = unknown ? ANY_COLUMN : { sources, wholeRows: [...wholeRows] };
  }
  return index.throughViews === undefined ? resolved : index.throughViews(resolved);
}

/** A catalog column's lineage (a view column's) with the functions it names resolved; undefined for a table column. */
export function sourceLineage(index: ColumnIndex, source: SourceColumn): ColumnLineage | undefined {
  const lineage = source.derivedFrom;
  // Views were followed when the catalog was read: only functions are left to resolve.
  return lineage?.functions === undefined ? lineage : resolveLineage(index, lineage);
}

/** How deep views over views are followed at once; deeper, a column counts as possibly any column (masked). */
const MAX_VIEW_NESTING = 64;


interface ViewDefinition {
  readonly oid: number;
  readonly table: QualifiedName;
  /** Column names by position (attnum order: a view's columns are never dropped, so 1, 2, 3, …). */
  readonly columns: readonly string[];
  readonly definition: string;
}

/**
 * A JSON array of names, as viewQuery (a view's columns) and functionQuery (every function) return
 * them; none for anything else (a view's columns then resolve to nothing; every function counts as
 * created since, and is masked).
 */
function jsonNames(text: string | undefined): string[] {
  try {
    const names: unknown = JSON.parse(text ?? '');
    return Array.isArray(names) && names.every((name) => typeof name === 'string') ? names : [];
  } catch {
    return [];
  }
}

/**
 * What each view column's values come from, read off the view's definition with the statement
 * lineage analysis (api/sql/output-lineage.ts), and keyed like the column index. A source naming
 * another view gets what that view's column comes from added (the source itself stays: a table of
 * that name may be meant), so a rule naming a table column reaches it through views over views.
 * Fails closed: a definition that cannot be parsed or lined up with the view's columns, a view
 * column that names itself, or views nested more than MAX_VIEW_NESTING deep give the column the
 * lineage that counts as any column.
 */
export function viewColumns(rows: readonly (readonly string[])[]): CatalogIndex {
  const views = new Map<number, ViewDefinition>();
  for (const [oid, schema, name, definition, columns] of rows) {
    views.set(Number(oid), { oid: Number(oid), table: { schema: schema!, name: name! }, columns: jsonNames(columns), definition: definition ?? '' });
  }
  // A view's own lineage, before views inside it are followed: per column, or undefined when unknown.
  const own = new Map<number, (readonly OutputColumn[]) | undefined>();
  for (const view of views.values()) own.set(view.oid, definitionLineage(view));
  // Statement lineages name relations as written, without schema: followed by name.
  const byName = new Map<string, ViewDefinition[]>();
  for (const view of views.values()) {
    const name = view.table.name.toLowerCase();
    byName.set(name, [...(byName.get(name) ?? []), view]);
  }

  // Each view column is resolved once: views over views that each read all of the one below would
  // otherwise cost exponential time. A column met again while it is being resolved (a cycle) fails closed.
  const resolved = new Map<string, ColumnLineage>();
  const resolving = (view: ViewDefinition, position: number, depth: number): ColumnLineage => {
    const key = columnKey(view.oid, position + 1);
    const known = resolved.get(key);
    if (known !== undefined) return known;
    const entry = own.get(view.oid)?.[position];
    if (entry === undefined || entry.unknown === true || depth > MAX_VIEW_NESTING) return ANY_COLUMN;
    resolved.set(key, ANY_COLUMN);
    const lineage = follow(entry.sources, entry.wholeRows, depth, entry.functions);
    resolved.set(key, lineage);
    return lineage;
  };
  const follow = (sources: readonly LineageSource[], wholeRows: readonly string[], depth: number, calls?: readonly string[]): ColumnLineage => {
    // Each source once: views that combine the same columns again and again would multiply them.
    const sourcesFound = new Map<string, LineageSource>();
    const keep = (source: LineageSource) => sourcesFound.set(`${source.table ?? ''}\u0000${source.column}`, source);
    const rows = new Set<string>();
    // Functions the definitions call: resolved with the function catalog when a column is matched (resolveLineage).
    const functions = new Set<string>(calls);
    let unknown = false;
    const add = (lineage: ColumnLineage) => {
      for (const source of lineage.sources) keep(source);
      for (const relation of lineage.wholeRows) rows.add(relation);
      for (const name of lineage.functions ?? []) functions.add(name);
      unknown ||= lineage.unknown === true;
    };
    for (const source of sources) {
      // Kept even when a view has the name: a table of that name in another schema may be the one meant.
      keep(source);
      const inner = source.table === undefined ? undefined : byName.get(source.table);
      if (inner === undefined) continue;
      // Same-named views in several schemas: each could be the one meant, so all count.
      for (const view of inner) {
        const position = view.columns.findIndex((column) => column.toLowerCase() === source.column);
        add(position < 0 ? ANY_COLUMN : resolving(view, position, depth + 1));
      }
    }
    for (const relation of wholeRows) {
      rows.add(relation);
      const inner = byName.get(relation);
      if (inner === undefined) continue;
      for (const view of inner) view.columns.forEach((_, position) => add(resolving(view, position, depth + 1)));
    }
    if (unknown) return ANY_COLUMN;
    const lineage = { sources: [...sourcesFound.values()], wholeRows: [...rows] };
    return functions.size > 0 ? { ...lineage, functions: [...functions] } : lineage;
  };

  const index = new CatalogIndex();
  for (const view of views.values()) {
    view.columns.forEach((column, position) => {
      index.set(columnKey(view.oid, position + 1), { column, table: view.table, derivedFrom: resolving(view, position, 0) });
    });
    // The whole row (`SELECT v FROM v`): every column of it.
    index.set(columnKey(view.oid, 0), { column: '', table: view.table, derivedFrom: follow([], [view.table.name.toLowerCase()], 0) });
  }
  if (views.size > 0) {
    index.throughViews = (lineage) => {
      if (lineage.unknown === true) return lineage;
      const named = lineage.sources.some((source) => source.table !== undefined && byName.has(source.table)) || lineage.wholeRows.some((relation) => byName.has(relation));
      return named ? follow(lineage.sources, lineage.wholeRows, 0, lineage.functions) : lineage;
    };
  }
  return index;
}

/** The lineage of each of the view's columns, or undefined when the definition does not say. */
function definitionLineage(view: ViewDefinition): readonly OutputColumn[] | undefined {
  try {
    const outputs = classifySql(view.definition).statements[0]?.outputs;
    // PostgreSQL stores a view with its `*` expanded, so its entries line up with its columns.
    if (outputs?.kind !== 'known' || outputs.columns.length !== view.columns.length || outputs.columns.some((entry) => entry.star)) return undefined;
    return outputs.columns;
  } catch {
    return undefined;
  }
}

/** Runs one simple query on a freshly authenticated upstream before the client is attached. */
export async function queryRows(upstream: UpstreamConnection, sql: string, timeoutMs = 5000): Promise<string[][]> {
  const splitter = new FrameSplitter({ source: 'server' });
  const rows: string[][] = [];
  let failure: GatehouseError | undefined;
  return new Promise<string[][]>((resolve, reject) => {
    const socket = upstream.socket;
    const timer = setTimeout(() => finish(new GatehouseError('GH_ERR_PG_UPSTREAM_TIMEOUT', { address: 'the resource', phase: 'the column catalog query', timeoutMs })), timeoutMs);
    const finish = (error?: unknown) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      if (error) reject(error);
      else if (failure) reject(failure);
      else resolve(rows);
    };
    const onData = (chunk: Buffer) => {
      try {
        splitter.push(chunk);
        for (let frame = splitter.next(); frame; frame = splitter.next()) {
          const message = decodeBackendMessage(frame);
          if (message.kind === 'DataRow') rows.push(message.columns.map((cell) => cell?.toString('utf8') ?? ''));
          if (message.kind === 'ErrorResponse') {
            failure = new GatehouseError('GH_ERR_PG_PROTOCOL_VIOLATION', { detail: `catalog query failed: ${message.fields.get('M') ?? ''}` });
          }
          if (message.kind === 'ReadyForQuery') {
            if (splitter.bufferedBytes > 0) failure = new GatehouseError('GH_ERR_PG_PROTOCOL_VIOLATION', { detail: 'bytes after ReadyForQuery' });
            return finish();
          }
        }
      } catch (error) {
        finish(error);
      }
    };
    socket.on('data', onData);
    if (upstream.leftover.length > 0) onData(upstream.leftover);
    socket.write(encodeQuery(sql));
    socket.resume();
  });
}

/**
 * Per-resource cache of the column index, shared by its sessions. A session reads it as it connects;
 * sessions already connected pick up a newer one between result sets (`latest`), which a session
 * finding it older than maxAgeMs has read on a connection of its own (`stale`, `refresh`).
 */
export class ColumnCatalog {
  private cached: { index: ColumnIndex; at: number } | undefined;
  private loading: Promise<ColumnIndex> | undefined;
  /** A refresh in the background (refresh), apart from `loading`, whose failure a connecting session must see. */
  private refreshing: Promise<void> | undefined;
  /** After a failed refresh, when to try again (epoch ms). */
  private retryAt = 0;

  constructor(
    private readonly columnGlobs: readonly string[],
    private readonly maxAgeMs = 30_000,
  ) {}

  get needed(): boolean {
    return this.columnGlobs.length > 0;
  }

  /** The newest index read; undefined before the first. */
  get latest(): ColumnIndex | undefined {
    return this.cached?.index;
  }

  /** Whether a refresh is due: none read yet, or the last older than maxAgeMs, and none under way. */
  stale(now: number): boolean {
    if (!this.needed || this.loading !== undefined || this.refreshing !== undefined || now < this.retryAt) return false;
    return this.cached === undefined || now - this.cached.at >= this.maxAgeMs;
  }

  /**
   * Reads the index again on a connection `open` makes for it (closed after), in the background;
   * sessions adopt the result through `latest`. A failure keeps the last index and waits maxAgeMs.
   */
  refresh(open: () => Promise<UpstreamConnection>, now = Date.now()): void {
    if (this.refreshing !== undefined) return;
    this.refreshing = (async () => {
      const upstream = await open();
      try {
        await this.load(upstream, now);
      } finally {
        upstream.socket.end(encodeTerminate());
      }
    })().catch(() => {
      this.retryAt = now + this.maxAgeMs;
    }).finally(() => {
      this.refreshing = undefined;
    });
  }

  async indexFor(upstream: UpstreamConnection, now = Date.now()): Promise<ColumnIndex> {
    if (!this.needed) return new CatalogIndex();
    if (this.cached && now - this.cached.at < this.maxAgeMs) return this.cached.index;
    this.loading ??= this.load(upstream, now).finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(upstream: UpstreamConnection, now: number): Promise<ColumnIndex> {
    const rows = await queryRows(upstream, catalogQuery(this.columnGlobs));
    // View columns first: a view column whose own name matches a glob is then also named by the entry below.
    const index = viewColumns(await queryRows(upstream, viewQuery(this.columnGlobs)));
    const relations = new Set<string>();
    for (const [oid, attnum, column, table, schema] of rows) {
      relations.add(table!);
      const key = columnKey(Number(oid), Number(attnum));
      const view = index.get(key);
      const sampled = STATISTICS_VALUE_COLUMNS.get(table!)?.includes(column!) === true;
      const derivedFrom = sampled ? ANY_COLUMN : view?.derivedFrom;
      index.set(key, { column: column!, table: { schema: schema!, name: table! }, ...(derivedFrom ? { derivedFrom } : {}) });
      // The whole row (`SELECT c FROM customers c`, attribute 0): any column of the table.
      const wholeRow = columnKey(Number(oid), 0);
      if (!index.has(wholeRow)) {
        const statistics = STATISTICS_VALUE_COLUMNS.has(table!);
        index.set(wholeRow, { column: '', table: { schema: schema!, name: table! }, derivedFrom: statistics ? ANY_COLUMN : { sources: [], wholeRows: [table!.toLowerCase()] } });
      }
    }
    for (const source of index.values()) relations.add(source.table.name);
    index.functions = functionCatalog(await queryRows(upstream, functionQuery(this.columnGlobs)), [...relations]);
    // Two reads may overlap (a session connecting, a refresh): the one begun last stands.
    if (this.cached === undefined || this.cached.at <= now) this.cached = { index, at: now };
    return index;
  }
}
