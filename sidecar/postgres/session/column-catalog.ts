// Resolves result columns to their source table and column (RowDescription carries only a table
// OID and attribute number), so column masking rules survive aliasing: `SELECT card_number AS x
// FROM customers` is still masked. Looked up once per resource and refreshed after a while, with
// one catalog query on a session's own upstream connection before the app gets it.
import type { QualifiedName } from '../../../api/sql/operations.js';
import type { UpstreamConnection } from '../upstream/upstream-connection.js';
import { decodeBackendMessage } from '../protocol/backend-messages.js';
import { FrameSplitter } from '../protocol/frame-splitter.js';
import { encodeQuery } from '../protocol/frontend-encoders.js';
import { GatehouseError } from '../../../api/errors.js';

export interface SourceColumn {
  readonly column: string;
  readonly table: QualifiedName;
}

export type ColumnIndex = ReadonlyMap<string, SourceColumn>;

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

/** The catalog query for columns whose name matches one of the column parts of the masking globs. */
export function catalogQuery(columnGlobs: readonly string[]): string {
  const patterns = [...new Set(columnGlobs.map((glob) => globToLikePattern(glob.split('.').at(-1)!)))];
  return [
    'SELECT a.attrelid::int8, a.attnum, a.attname, c.relname, n.nspname',
    'FROM pg_catalog.pg_attribute a',
    'JOIN pg_catalog.pg_class c ON c.oid = a.attrelid',
    'JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace',
    "WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','v','m','p','f')",
    `AND a.attname ILIKE ANY (ARRAY[${patterns.map(sqlLiteral).join(', ')}]::text[])`,
  ].join(' ');
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

/** Per-resource cache of the column index, shared by its sessions. */
export class ColumnCatalog {
  private cached: { index: ColumnIndex; at: number } | undefined;
  private loading: Promise<ColumnIndex> | undefined;

  constructor(
    private readonly columnGlobs: readonly string[],
    private readonly maxAgeMs = 30_000,
  ) {}

  get needed(): boolean {
    return this.columnGlobs.length > 0;
  }

  async indexFor(upstream: UpstreamConnection, now = Date.now()): Promise<ColumnIndex> {
    if (!this.needed) return new Map();
    if (this.cached && now - this.cached.at < this.maxAgeMs) return this.cached.index;
    this.loading ??= this.load(upstream, now).finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(upstream: UpstreamConnection, now: number): Promise<ColumnIndex> {
    const rows = await queryRows(upstream, catalogQuery(this.columnGlobs));
    const index = new Map<string, SourceColumn>();
    for (const [oid, attnum, column, table, schema] of rows) {
      index.set(columnKey(Number(oid), Number(attnum)), { column: column!, table: { schema: schema!, name: table! } });
    }
    this.cached = { index, at: now };
    return index;
  }
}
