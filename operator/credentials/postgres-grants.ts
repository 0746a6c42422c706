// Which privileges a postgres-dynamic role gets, derived from the compiled policy and the database
// catalog, and the GRANT/REVOKE statements that move a role from what it has to what it should have.
// Pure: the catalog is read elsewhere (postgres-catalog.ts), so the mapping is tested without a server.
//
// The policy decides table by table, exactly as the sidecar will: for every relation in the catalog
// and every data operation, `policy.decide` is asked; allow and require-approval both grant (an
// approved statement still has to run with this role), deny and no-match grant nothing.
//   read → SELECT; write → INSERT, UPDATE (+ USAGE on the table's serial/identity sequences);
//   delete → DELETE; truncate → TRUNCATE.
// UPDATE and DELETE bring SELECT along unless a rule explicitly denies read on the table: PostgreSQL
// checks SELECT on the columns a WHERE or RETURNING clause reads, and the policy language counts
// `UPDATE t ... WHERE id = 1` as a write only, so without it statements the policy allows would fail.
// ddl, dcl, admin and call grant nothing: dynamic roles never own objects (dropping them would drop
// the objects), so identities that run migrations need the static strategy.
import pg from 'pg';
import type { CompiledPolicySet } from '../../api/policy/compile.js';
import type { QualifiedName, SqlOperation } from '../../api/sql/operations.js';

export type TablePrivilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE' | 'TRUNCATE';
export type RelationKind = 'table' | 'partitioned-table' | 'view' | 'materialized-view' | 'foreign-table';

export interface SchemaQualified {
  readonly schema: string;
  readonly name: string;
}

export interface CatalogRelation extends SchemaQualified {
  readonly kind: RelationKind;
  /** Privileges the admin may pass on (it owns the relation or holds them WITH GRANT OPTION). */
  readonly grantable: ReadonlySet<TablePrivilege>;
  /** Sequences owned by its serial/identity columns on which the admin may grant USAGE. */
  readonly sequences: readonly SchemaQualified[];
}

export interface DatabaseCatalog {
  readonly database: string;
  readonly canGrantConnect: boolean;
  /** Schemas on which the admin may grant USAGE. */
  readonly grantableSchemas: ReadonlySet<string>;
  readonly relations: readonly CatalogRelation[];
}

export interface RelationPrivileges extends SchemaQualified {
  readonly privileges: ReadonlySet<string>;
}

/** Privileges one role holds, or should hold, in one database. */
export interface PrivilegeSet {
  /** Tables, views and the like, keyed by relationKey. */
  readonly tables: ReadonlyMap<string, RelationPrivileges>;
  readonly sequences: ReadonlyMap<string, RelationPrivileges>;
  readonly schemas: ReadonlySet<string>;
}

export const EMPTY_PRIVILEGES: PrivilegeSet = { tables: new Map(), sequences: new Map(), schemas: new Set() };

type DataOperation = Extract<SqlOperation, 'read' | 'write' | 'delete' | 'truncate'>;

const OPERATION_PRIVILEGES: Readonly<Record<DataOperation, readonly TablePrivilege[]>> = {
  read: ['SELECT'],
  write: ['INSERT', 'UPDATE'],
  delete: ['DELETE'],
  truncate: ['TRUNCATE'],
};

/** What PostgreSQL lets each kind of relation carry (GRANT INSERT on a materialized view is pointless). */
const KIND_PRIVILEGES: Readonly<Record<RelationKind, ReadonlySet<TablePrivilege>>> = {
  table: new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']),
  'partitioned-table': new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']),
  'foreign-table': new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']),
  view: new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
  'materialized-view': new Set(['SELECT']),
};

/** Map key for a schema-qualified name; JSON so that dots inside names cannot collide. */
export function relationKey(relation: SchemaQualified): string {
  return JSON.stringify([relation.schema, relation.name]);
}

/** Whether the policy lets some statement do `operation` on `relation` (now, or after approval). */
function permits(policy: CompiledPolicySet, operation: DataOperation, relation: QualifiedName): boolean {
  // A rule with unboundedWrite matches only UPDATE/DELETE without WHERE, so both shapes are asked.
  const shapes = operation === 'write' || operation === 'delete' ? [false, true] : [false];
  return shapes.some((unbounded) => {
    const action = unbounded ? { operation, relation, unbounded } : { operation, relation };
    return policy.decide([action]).effect !== 'deny';
  });
}

function readExplicitlyDenied(policy: CompiledPolicySet, relation: QualifiedName): boolean {
  const decision = policy.decide([{ operation: 'read', relation }]);
  return decision.effect === 'deny' && decision.reason === 'rule';
}

/** Table privileges the policy implies on one relation, before the admin's grant options are applied. */
export function impliedPrivileges(policy: CompiledPolicySet, relation: SchemaQualified): Set<TablePrivilege> {
  const name: QualifiedName = { schema: relation.schema, name: relation.name };
  const privileges = new Set<TablePrivilege>();
  for (const operation of Object.keys(OPERATION_PRIVILEGES) as DataOperation[]) {
    if (permits(policy, operation, name)) for (const privilege of OPERATION_PRIVILEGES[operation]) privileges.add(privilege);
  }
  const modifies = privileges.has('UPDATE') || privileges.has('DELETE');
  if (modifies && !privileges.has('SELECT') && !readExplicitlyDenied(policy, name)) privileges.add('SELECT');
  return privileges;
}

/** What the role should hold in this database under `policy`. */
export function planPrivileges(policy: CompiledPolicySet, catalog: DatabaseCatalog): PrivilegeSet {
  const tables = new Map<string, RelationPrivileges>();
  const sequences = new Map<string, RelationPrivileges>();
  const schemas = new Set<string>();
  for (const relation of catalog.relations) {
    const allowed = KIND_PRIVILEGES[relation.kind];
    const privileges = [...impliedPrivileges(policy, relation)].filter((p) => allowed.has(p) && relation.grantable.has(p));
    if (privileges.length === 0) continue;
    tables.set(relationKey(relation), { schema: relation.schema, name: relation.name, privileges: new Set(privileges) });
    schemas.add(relation.schema);
    if (!privileges.includes('INSERT')) continue;
    for (const sequence of relation.sequences) {
      sequences.set(relationKey(sequence), { ...sequence, privileges: new Set(['USAGE']) });
      schemas.add(sequence.schema);
    }
  }
  return { tables, sequences, schemas: new Set([...schemas].filter((schema) => catalog.grantableSchemas.has(schema))) };
}

const ident = (name: string): string => pg.escapeIdentifier(name);
const qualified = (relation: SchemaQualified): string => `${ident(relation.schema)}.${ident(relation.name)}`;

function difference(a: ReadonlySet<string>, b: ReadonlySet<string> | undefined): string[] {
  return [...a].filter((item) => !b?.has(item)).sort();
}

function relationStatements(
  objectType: 'TABLE' | 'SEQUENCE',
  role: string,
  current: ReadonlyMap<string, RelationPrivileges>,
  desired: ReadonlyMap<string, RelationPrivileges>,
): string[] {
  const statements: string[] = [];
  for (const [key, held] of current) {
    const revoke = difference(held.privileges, desired.get(key)?.privileges);
    if (revoke.length > 0) statements.push(`REVOKE ${revoke.join(', ')} ON ${objectType} ${qualified(held)} FROM ${ident(role)}`);
  }
  for (const [key, wanted] of desired) {
    const grant = difference(wanted.privileges, current.get(key)?.privileges);
    if (grant.length > 0) statements.push(`GRANT ${grant.join(', ')} ON ${objectType} ${qualified(wanted)} TO ${ident(role)}`);
  }
  return statements;
}

/**
 * Statements that take `role` from `current` to `desired`, plus CONNECT on the database; run in one
 * transaction, so no session ever sees half of the change. Identifiers are quoted with
 * pg.escapeIdentifier; nothing secret is in them.
 */
export function privilegeStatements(role: string, catalog: DatabaseCatalog, current: PrivilegeSet, desired: PrivilegeSet): string[] {
  const schemaRevokes = difference(current.schemas, desired.schemas).map((schema) => `REVOKE USAGE ON SCHEMA ${ident(schema)} FROM ${ident(role)}`);
  const schemaGrants = difference(desired.schemas, current.schemas).map((schema) => `GRANT USAGE ON SCHEMA ${ident(schema)} TO ${ident(role)}`);
  return [
    ...relationStatements('TABLE', role, current.tables, desired.tables),
    ...relationStatements('SEQUENCE', role, current.sequences, desired.sequences),
    ...schemaRevokes,
    ...schemaGrants,
    ...(catalog.canGrantConnect ? [`GRANT CONNECT ON DATABASE ${ident(catalog.database)} TO ${ident(role)}`] : []),
  ];
}
