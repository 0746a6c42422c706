// Reads what postgres-grants.ts plans from: the relations of one database with what the admin may
// grant on them, and the privileges a role holds now. Table globs are resolved against this at issue
// and at every renewal, so tables created later are picked up within two thirds of a TTL.
import type pg from 'pg';
import type {
  CatalogRelation, DatabaseCatalog, PrivilegeSet, RelationKind, RelationPrivileges, SchemaQualified, TablePrivilege,
} from './postgres-grants.js';
import { relationKey } from './postgres-grants.js';

/** System schemas hold nothing a policy can name; pg_temp_N and pg_toast are caught by the prefix. */
const USER_SCHEMA = `n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'`;

const RELKINDS: Readonly<Record<string, RelationKind>> = {
  r: 'table',
  p: 'partitioned-table',
  v: 'view',
  m: 'materialized-view',
  f: 'foreign-table',
};

const PRIVILEGES: readonly TablePrivilege[] = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'];

const RELATIONS_SQL = `
SELECT n.nspname AS schema, c.relname AS name, c.relkind AS kind,
  ${PRIVILEGES.map((p) => `has_table_privilege(c.oid, '${p} WITH GRANT OPTION') AS "${p}"`).join(', ')}
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND ${USER_SCHEMA}
ORDER BY 1, 2`;

// Sequences a serial (deptype a) or identity (deptype i) column owns: an INSERT needs USAGE on them.
const SEQUENCES_SQL = `
SELECT tn.nspname AS table_schema, t.relname AS table_name, n.nspname AS schema, s.relname AS name
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace n ON n.oid = s.relnamespace
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  -- CASE keeps the planner from calling has_sequence_privilege on rows that are not sequences.
  AND CASE WHEN s.relkind = 'S' THEN has_sequence_privilege(s.oid, 'USAGE WITH GRANT OPTION') ELSE false END`;

const SCHEMAS_SQL = `
SELECT n.nspname AS schema FROM pg_namespace n
WHERE has_schema_privilege(n.oid, 'USAGE WITH GRANT OPTION') AND ${USER_SCHEMA}`;

const DATABASE_SQL = `
SELECT current_database() AS database, has_database_privilege(current_database(), 'CONNECT WITH GRANT OPTION') AS can_connect`;

const HELD_RELATIONS_SQL = `
SELECT n.nspname AS schema, c.relname AS name, c.relkind = 'S' AS is_sequence, a.privilege_type AS privilege
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(c.relacl) a
JOIN pg_roles r ON r.oid = a.grantee
WHERE r.rolname = $1`;

const HELD_SCHEMAS_SQL = `
SELECT n.nspname AS schema FROM pg_namespace n
CROSS JOIN LATERAL aclexplode(n.nspacl) a
JOIN pg_roles r ON r.oid = a.grantee
WHERE r.rolname = $1 AND a.privilege_type = 'USAGE'`;

type RelationRow = { schema: string; name: string; kind: string } & Record<TablePrivilege, boolean>;
interface SequenceRow {
  table_schema: string;
  table_name: string;
  schema: string;
  name: string;
}

async function sequencesByTable(client: pg.ClientBase): Promise<Map<string, SchemaQualified[]>> {
  const { rows } = await client.query<SequenceRow>(SEQUENCES_SQL);
  const byTable = new Map<string, SchemaQualified[]>();
  for (const row of rows) {
    const key = relationKey({ schema: row.table_schema, name: row.table_name });
    byTable.set(key, [...(byTable.get(key) ?? []), { schema: row.schema, name: row.name }]);
  }
  return byTable;
}

function toRelation(row: RelationRow, sequences: ReadonlyMap<string, SchemaQualified[]>): CatalogRelation | undefined {
  const kind = RELKINDS[row.kind];
  if (kind === undefined) return undefined;
  const grantable = new Set(PRIVILEGES.filter((privilege) => row[privilege]));
  return { schema: row.schema, name: row.name, kind, grantable, sequences: sequences.get(relationKey(row)) ?? [] };
}

/** The relations of the connected database that a policy can name, with the admin's grant options. */
export async function readCatalog(client: pg.ClientBase): Promise<DatabaseCatalog> {
  const sequences = await sequencesByTable(client);
  const { rows } = await client.query<RelationRow>(RELATIONS_SQL);
  const schemas = await client.query<{ schema: string }>(SCHEMAS_SQL);
  const database = await client.query<{ database: string; can_connect: boolean }>(DATABASE_SQL);
  const relations = rows.map((row) => toRelation(row, sequences)).filter((relation) => relation !== undefined);
  return {
    database: database.rows[0]!.database,
    canGrantConnect: database.rows[0]!.can_connect,
    grantableSchemas: new Set(schemas.rows.map((row) => row.schema)),
    relations,
  };
}

function addPrivilege(map: Map<string, RelationPrivileges>, relation: SchemaQualified, privilege: string): void {
  const key = relationKey(relation);
  const held = map.get(key);
  map.set(key, { schema: relation.schema, name: relation.name, privileges: new Set([...(held?.privileges ?? []), privilege]) });
}

/** What `role` holds now in the connected database (empty for a role that was just created). */
export async function readHeldPrivileges(client: pg.ClientBase, role: string): Promise<PrivilegeSet> {
  const relations = await client.query<{ schema: string; name: string; is_sequence: boolean; privilege: string }>(HELD_RELATIONS_SQL, [role]);
  const schemas = await client.query<{ schema: string }>(HELD_SCHEMAS_SQL, [role]);
  const tables = new Map<string, RelationPrivileges>();
  const sequences = new Map<string, RelationPrivileges>();
  for (const row of relations.rows) addPrivilege(row.is_sequence ? sequences : tables, row, row.privilege);
  return { tables, sequences, schemas: new Set(schemas.rows.map((row) => row.schema)) };
}
