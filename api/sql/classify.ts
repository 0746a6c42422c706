// Classifies SQL text into Gatehouse operations (DESIGN.md) from PostgreSQL's own parse tree:
// libpg-query is the real server parser compiled to WebAssembly, so string literals, comments,
// dollar quotes and odd identifiers cannot disguise what a statement does, as they could with a
// pattern over the text. Each statement counts as the strictest thing anywhere in its tree: a
// DELETE in a CTE, a pg_terminate_backend() in a sub-select, the query behind EXPLAIN ANALYZE.

import pgQuery from 'libpg-query';

import { GatehouseError, isGatehouseError, type ErrorCode, type ErrorDetails } from '../errors.js';
import { calledFunction, classifyFunctionCall, isPrivilegedSetting } from './functions.js';
import {
  strictest,
  strictness,
  type ClassifiedStatement,
  type QualifiedName,
  type SqlAccess,
  type SqlClassification,
  type SqlOperation,
} from './operations.js';
import { outputLineage, UNKNOWN_LINEAGE, type OutputLineage } from './output-lineage.js';
import { asList, asRecord, asString, constantString, nodeBody, qualifiedName, stringItems, unwrapNode, type PgRecord } from './parse-tree.js';
import { StatementCache } from './statement-cache.js';
import { UNKNOWN_FLOWS, valueFlows, type ValueFlow } from './value-flows.js';
import { statementShape } from './statement-shape.js';

/** What the classifier may ask of the session a statement arrives in. */
export interface ClassifyContext {
  /** The classification of a statement prepared earlier in the session, so `EXECUTE name` counts as what it runs. */
  preparedStatement?(name: string): SqlClassification | undefined;
}

// ---------------------------------------------------------------------------------------------
// Loading the parser

let parserLoaded = false;

/** Loads the parser's WebAssembly module; call once at startup. Safe to call again. */
export async function loadSqlParser(): Promise<void> {
  if (parserLoaded) return;
  await pgQuery.loadModule();
  parserLoaded = true;
}

function assertParserLoaded(): void {
  if (!parserLoaded) throw new GatehouseError('GH_ERR_SQL_PARSER_NOT_LOADED');
}

// ---------------------------------------------------------------------------------------------
// Reading the parse tree. It is JSON from the parser; we read it defensively instead of trusting
// a type for every one of PostgreSQL's ~270 node kinds.

/** `a.b.c` → schema b, name c: the catalog part of a three-part name is the current database. */
function relationName(rangeVar: PgRecord): QualifiedName | undefined {
  const name = asString(rangeVar.relname);
  if (name === undefined) return undefined;
  const schema = asString(rangeVar.schemaname);
  return schema === undefined ? { name } : { schema, name };
}

/** A string constant's value, seen through casts ('s'::regclass); undefined for anything computed. */
// ---------------------------------------------------------------------------------------------
// Statements: command tags and each statement's own operation

type Computed<T> = T | ((node: PgRecord) => T);

interface StatementRule {
  /** PostgreSQL's command tag for the statement. */
  readonly command: Computed<string>;
  /** What the statement itself does, before anything it contains is counted. */
  readonly operation: Computed<SqlOperation>;
}

/** OBJECT_MATVIEW → MATERIALIZED VIEW: object type names as they appear in command tags. */
const OBJECT_TYPE_WORDS: Readonly<Record<string, string>> = {
  OBJECT_MATVIEW: 'MATERIALIZED VIEW',
  OBJECT_FDW: 'FOREIGN DATA WRAPPER',
  OBJECT_FOREIGN_SERVER: 'SERVER',
  OBJECT_STATISTIC_EXT: 'STATISTICS',
  OBJECT_TSCONFIGURATION: 'TEXT SEARCH CONFIGURATION',
  OBJECT_TSDICTIONARY: 'TEXT SEARCH DICTIONARY',
  OBJECT_TSPARSER: 'TEXT SEARCH PARSER',
  OBJECT_TSTEMPLATE: 'TEXT SEARCH TEMPLATE',
  OBJECT_OPCLASS: 'OPERATOR CLASS',
  OBJECT_OPFAMILY: 'OPERATOR FAMILY',
  OBJECT_AMOP: 'OPERATOR FAMILY',
  OBJECT_AMPROC: 'OPERATOR FAMILY',
  OBJECT_LARGEOBJECT: 'LARGE OBJECT',
  OBJECT_COLUMN: 'TABLE',
  OBJECT_TABCONSTRAINT: 'TABLE',
  OBJECT_DOMCONSTRAINT: 'DOMAIN',
  OBJECT_ATTRIBUTE: 'TYPE',
  OBJECT_DEFACL: 'DEFAULT PRIVILEGES',
  OBJECT_PUBLICATION_NAMESPACE: 'PUBLICATION',
  OBJECT_PUBLICATION_REL: 'PUBLICATION',
};

function objectTypeWords(objectType: unknown): string {
  const type = asString(objectType) ?? 'OBJECT_UNKNOWN';
  return OBJECT_TYPE_WORDS[type] ?? type.replace('OBJECT_', '').replaceAll('_', ' ');
}

/** Objects whose creation, change or removal reaches past the database: the server, other servers, its files. */
const ADMIN_OBJECT_TYPES: ReadonlySet<string> = new Set([
  'OBJECT_DATABASE', 'OBJECT_TABLESPACE', 'OBJECT_EXTENSION', 'OBJECT_EVENT_TRIGGER', 'OBJECT_FDW',
  'OBJECT_FOREIGN_SERVER', 'OBJECT_USER_MAPPING', 'OBJECT_LANGUAGE', 'OBJECT_ACCESS_METHOD', 'OBJECT_PUBLICATION',
  'OBJECT_SUBSCRIPTION', 'OBJECT_PARAMETER_ACL',
]);

/** Objects that decide who may see or do what: roles, and row-level security policies. */
const DCL_OBJECT_TYPES: ReadonlySet<string> = new Set(['OBJECT_ROLE', 'OBJECT_POLICY']);

/** A statement about an object counts at least as what the object is (dropping a database is admin). */
function objectOperation(objectType: unknown, base: SqlOperation): SqlOperation {
  const type = asString(objectType) ?? '';
  if (ADMIN_OBJECT_TYPES.has(type)) return 'admin';
  if (DCL_OBJECT_TYPES.has(type)) return strictest([base, 'dcl']) ?? base;
  return base;
}

/** ALTER TABLE subcommands that change who may see rows: ownership and row-level security switches. */
const ACCESS_CONTROL_TABLE_COMMANDS: ReadonlySet<string> = new Set([
  'AT_ChangeOwner', 'AT_EnableRowSecurity', 'AT_DisableRowSecurity', 'AT_ForceRowSecurity', 'AT_NoForceRowSecurity',
]);

function alterTableOperation(node: PgRecord): SqlOperation {
  const controlsAccess = asList(node.cmds).some((cmd) =>
    ACCESS_CONTROL_TABLE_COMMANDS.has(asString(nodeBody(cmd)?.subtype) ?? ''),
  );
  return controlsAccess ? 'dcl' : 'ddl';
}

function setOperation(node: PgRecord): SqlOperation {
  const name = asString(node.name) ?? '';
  // SET TRANSACTION ... / SET TRANSACTION SNAPSHOT shape only the current transaction.
  if (node.kind === 'VAR_SET_MULTI') return name.startsWith('TRANSACTION') ? 'transaction' : 'session';
  // RESET ALL leaves role and session_authorization alone (PostgreSQL marks them GUC_NO_RESET_ALL).
  if (node.kind === 'VAR_RESET_ALL') return 'session';
  return isPrivilegedSetting(name) ? 'admin' : 'session';
}

function copyUsesServer(node: PgRecord): boolean {
  return node.is_program === true || typeof node.filename === 'string';
}

function copyOperation(node: PgRecord): SqlOperation {
  if (copyUsesServer(node)) return 'admin';
  return node.is_from === true ? 'write' : 'read';
}

/** MERGE writes for its UPDATE and INSERT actions and deletes for its DELETE actions. */
function mergeOperations(node: PgRecord): SqlOperation[] {
  const operations = new Set<SqlOperation>();
  for (const clause of asList(node.mergeWhenClauses)) {
    const command = nodeBody(clause)?.commandType;
    if (command === 'CMD_DELETE') operations.add('delete');
    else if (command === 'CMD_UPDATE' || command === 'CMD_INSERT') operations.add('write');
  }
  if (operations.size === 0) operations.add('write');
  return [...operations];
}

const TRANSACTION_COMMANDS: Readonly<Record<string, string>> = {
  TRANS_STMT_BEGIN: 'BEGIN',
  TRANS_STMT_START: 'START TRANSACTION',
  TRANS_STMT_COMMIT: 'COMMIT',
  TRANS_STMT_ROLLBACK: 'ROLLBACK',
  TRANS_STMT_SAVEPOINT: 'SAVEPOINT',
  TRANS_STMT_RELEASE: 'RELEASE',
  TRANS_STMT_ROLLBACK_TO: 'ROLLBACK',
  TRANS_STMT_PREPARE: 'PREPARE TRANSACTION',
  TRANS_STMT_COMMIT_PREPARED: 'COMMIT PREPARED',
  TRANS_STMT_ROLLBACK_PREPARED: 'ROLLBACK PREPARED',
};

/** Statements whose command tag and operation never vary, grouped by operation. */
const FIXED_COMMANDS: Readonly<Partial<Record<SqlOperation, Readonly<Record<string, string>>>>> = {
  session: {
    VariableShowStmt: 'SHOW',
    ListenStmt: 'LISTEN',
    UnlistenStmt: 'UNLISTEN',
    // PREPARE itself only stores a plan; what it prepares is walked and counted below.
    PrepareStmt: 'PREPARE',
    // EXECUTE counts as the prepared statement it runs, or as a call when the session cannot say.
    ExecuteStmt: 'EXECUTE',
  },
  transaction: { ConstraintsSetStmt: 'SET CONSTRAINTS' },
  read: { DeclareCursorStmt: 'DECLARE CURSOR', ExplainStmt: 'EXPLAIN' },
  // NOTIFY reaches every listening session: a change other sessions observe, like a write.
  write: { NotifyStmt: 'NOTIFY', LockStmt: 'LOCK TABLE', RefreshMatViewStmt: 'REFRESH MATERIALIZED VIEW' },
  truncate: { TruncateStmt: 'TRUNCATE TABLE' },
  call: { DoStmt: 'DO', CallStmt: 'CALL' },
  ddl: {
    CreateStmt: 'CREATE TABLE', CreateSchemaStmt: 'CREATE SCHEMA', CreateDomainStmt: 'CREATE DOMAIN',
    AlterDomainStmt: 'ALTER DOMAIN', CreateForeignTableStmt: 'CREATE FOREIGN TABLE',
    ImportForeignSchemaStmt: 'IMPORT FOREIGN SCHEMA', CommentStmt: 'COMMENT', CompositeTypeStmt: 'CREATE TYPE',
    CreateEnumStmt: 'CREATE TYPE', CreateRangeStmt: 'CREATE TYPE', AlterEnumStmt: 'ALTER TYPE',
    AlterTypeStmt: 'ALTER TYPE', ViewStmt: 'CREATE VIEW', IndexStmt: 'CREATE INDEX', RuleStmt: 'CREATE RULE',
    CreateSeqStmt: 'CREATE SEQUENCE', AlterSeqStmt: 'ALTER SEQUENCE', CreateTrigStmt: 'CREATE TRIGGER',
    CreateConversionStmt: 'CREATE CONVERSION', CreateCastStmt: 'CREATE CAST', CreateTransformStmt: 'CREATE TRANSFORM',
    CreateOpClassStmt: 'CREATE OPERATOR CLASS', CreateOpFamilyStmt: 'CREATE OPERATOR FAMILY',
    AlterOpFamilyStmt: 'ALTER OPERATOR FAMILY', AlterOperatorStmt: 'ALTER OPERATOR',
    AlterCollationStmt: 'ALTER COLLATION', CreateStatsStmt: 'CREATE STATISTICS', AlterStatsStmt: 'ALTER STATISTICS',
    AlterTSDictionaryStmt: 'ALTER TEXT SEARCH DICTIONARY', AlterTSConfigurationStmt: 'ALTER TEXT SEARCH CONFIGURATION',
    // Only ever nested in ALTER TABLE ... REPLICA IDENTITY.
    ReplicaIdentityStmt: 'ALTER TABLE',
  },
  dcl: {
    AlterDefaultPrivilegesStmt: 'ALTER DEFAULT PRIVILEGES', CreateRoleStmt: 'CREATE ROLE',
    AlterRoleStmt: 'ALTER ROLE', AlterRoleSetStmt: 'ALTER ROLE', DropRoleStmt: 'DROP ROLE',
    SecLabelStmt: 'SECURITY LABEL', DropOwnedStmt: 'DROP OWNED', ReassignOwnedStmt: 'REASSIGN OWNED',
    CreatePolicyStmt: 'CREATE POLICY', AlterPolicyStmt: 'ALTER POLICY',
  },
  admin: {
    AlterSystemStmt: 'ALTER SYSTEM', LoadStmt: 'LOAD', CheckPointStmt: 'CHECKPOINT', ClusterStmt: 'CLUSTER',
    ReindexStmt: 'REINDEX', CreatedbStmt: 'CREATE DATABASE', AlterDatabaseStmt: 'ALTER DATABASE',
    AlterDatabaseSetStmt: 'ALTER DATABASE', AlterDatabaseRefreshCollStmt: 'ALTER DATABASE', DropdbStmt: 'DROP DATABASE',
    CreateExtensionStmt: 'CREATE EXTENSION', AlterExtensionStmt: 'ALTER EXTENSION',
    AlterExtensionContentsStmt: 'ALTER EXTENSION', CreatePublicationStmt: 'CREATE PUBLICATION',
    AlterPublicationStmt: 'ALTER PUBLICATION', CreateSubscriptionStmt: 'CREATE SUBSCRIPTION',
    AlterSubscriptionStmt: 'ALTER SUBSCRIPTION', DropSubscriptionStmt: 'DROP SUBSCRIPTION',
    CreateTableSpaceStmt: 'CREATE TABLESPACE', DropTableSpaceStmt: 'DROP TABLESPACE',
    AlterTableSpaceOptionsStmt: 'ALTER TABLESPACE',
    // Foreign servers and user mappings hold credentials for, and open connections to, other servers.
    CreateFdwStmt: 'CREATE FOREIGN DATA WRAPPER', AlterFdwStmt: 'ALTER FOREIGN DATA WRAPPER',
    CreateForeignServerStmt: 'CREATE SERVER', AlterForeignServerStmt: 'ALTER SERVER',
    CreateUserMappingStmt: 'CREATE USER MAPPING', AlterUserMappingStmt: 'ALTER USER MAPPING',
    DropUserMappingStmt: 'DROP USER MAPPING',
    // Superuser-only objects that run code of their own: languages, event triggers, access methods.
    CreatePLangStmt: 'CREATE LANGUAGE', CreateEventTrigStmt: 'CREATE EVENT TRIGGER',
    AlterEventTrigStmt: 'ALTER EVENT TRIGGER', CreateAmStmt: 'CREATE ACCESS METHOD',
  },
};

/** `ALTER <object kind>` / `DROP <object kind>`, the kind read from the given field. */
function taggedByObject(verb: string, field: string): (node: PgRecord) => string {
  return (node) => `${verb} ${objectTypeWords(node[field])}`;
}

/** A statement about an object, counted by the object's kind (see objectOperation). */
function operationByObject(field: string, base: SqlOperation): (node: PgRecord) => SqlOperation {
  return (node) => objectOperation(node[field], base);
}

function createTableAsCommand(node: PgRecord): string {
  if (node.objtype === 'OBJECT_MATVIEW') return 'CREATE MATERIALIZED VIEW';
  return node.is_select_into === true ? 'SELECT INTO' : 'CREATE TABLE AS';
}

/** Statements whose command tag or operation depends on what they say. */
const COMPUTED_RULES: Readonly<Record<string, StatementRule>> = {
  SelectStmt: { command: (node) => (node.intoClause === undefined ? 'SELECT' : 'SELECT INTO'), operation: 'read' },
  InsertStmt: { command: 'INSERT', operation: 'write' },
  UpdateStmt: { command: 'UPDATE', operation: 'write' },
  DeleteStmt: { command: 'DELETE', operation: 'delete' },
  MergeStmt: { command: 'MERGE', operation: (node) => strictest(mergeOperations(node)) ?? 'write' },
  CopyStmt: { command: 'COPY', operation: copyOperation },
  FetchStmt: { command: (node) => (node.ismove === true ? 'MOVE' : 'FETCH'), operation: 'read' },
  ClosePortalStmt: {
    command: (node) => (node.portalname === undefined ? 'CLOSE CURSOR ALL' : 'CLOSE CURSOR'),
    operation: 'session',
  },
  DiscardStmt: {
    command: (node) => `DISCARD ${asString(node.target)?.replace('DISCARD_', '') ?? 'ALL'}`,
    operation: 'session',
  },
  DeallocateStmt: { command: (node) => (node.isall === true ? 'DEALLOCATE ALL' : 'DEALLOCATE'), operation: 'session' },
  VariableSetStmt: {
    command: (node) => (asString(node.kind)?.startsWith('VAR_RESET') === true ? 'RESET' : 'SET'),
    operation: setOperation,
  },
  TransactionStmt: {
    command: (node) => TRANSACTION_COMMANDS[asString(node.kind) ?? ''] ?? 'TRANSACTION',
    operation: 'transaction',
  },
  VacuumStmt: { command: (node) => (node.is_vacuumcmd === true ? 'VACUUM' : 'ANALYZE'), operation: 'admin' },
  CreateTableAsStmt: { command: createTableAsCommand, operation: 'ddl' },
  CreateFunctionStmt: {
    command: (node) => (node.is_procedure === true ? 'CREATE PROCEDURE' : 'CREATE FUNCTION'),
    operation: 'ddl',
  },
  AlterFunctionStmt: { command: taggedByObject('ALTER', 'objtype'), operation: 'ddl' },
  DefineStmt: { command: taggedByObject('CREATE', 'kind'), operation: 'ddl' },
  AlterTableStmt: { command: taggedByObject('ALTER', 'objtype'), operation: alterTableOperation },
  AlterTableMoveAllStmt: { command: taggedByObject('ALTER', 'objtype'), operation: 'ddl' },
  DropStmt: { command: taggedByObject('DROP', 'removeType'), operation: operationByObject('removeType', 'ddl') },
  RenameStmt: { command: taggedByObject('ALTER', 'renameType'), operation: operationByObject('renameType', 'ddl') },
  AlterObjectSchemaStmt: {
    command: taggedByObject('ALTER', 'objectType'),
    operation: operationByObject('objectType', 'ddl'),
  },
  AlterObjectDependsStmt: {
    command: taggedByObject('ALTER', 'objectType'),
    operation: operationByObject('objectType', 'ddl'),
  },
  // A new owner holds every privilege on the object: a grant in all but name.
  AlterOwnerStmt: { command: taggedByObject('ALTER', 'objectType'), operation: operationByObject('objectType', 'dcl') },
  GrantStmt: { command: (node) => (node.is_grant === true ? 'GRANT' : 'REVOKE'), operation: 'dcl' },
  GrantRoleStmt: { command: (node) => (node.is_grant === true ? 'GRANT ROLE' : 'REVOKE ROLE'), operation: 'dcl' },
};

const STATEMENT_RULES: ReadonlyMap<string, StatementRule> = buildStatementRules();

function buildStatementRules(): Map<string, StatementRule> {
  const rules = new Map<string, StatementRule>();
  for (const [operation, commands] of Object.entries(FIXED_COMMANDS) as [SqlOperation, Record<string, string>][]) {
    for (const [type, command] of Object.entries(commands)) rules.set(type, { command, operation });
  }
  for (const [type, rule] of Object.entries(COMPUTED_RULES)) rules.set(type, rule);
  return rules;
}

function computed<T>(value: Computed<T>, node: PgRecord): T {
  return typeof value === 'function' ? (value as (node: PgRecord) => T)(node) : value;
}

/** A statement kind this parser version knows but this table does not is admin: fail closed. */
function statementOperation(type: string, node: PgRecord): SqlOperation {
  const rule = STATEMENT_RULES.get(type);
  return rule === undefined ? 'admin' : computed(rule.operation, node);
}

function commandTag(type: string, node: PgRecord): string {
  const rule = STATEMENT_RULES.get(type);
  if (rule === undefined) return type.slice(0, type.length - 'Stmt'.length).toUpperCase();
  return computed(rule.command, node);
}

function isStatementType(type: string): boolean {
  return type.endsWith('Stmt');
}

// ---------------------------------------------------------------------------------------------
// Walking the tree

/** Row locks (FOR UPDATE / FOR SHARE ...): all FROM items, or those named in OF. */
type RowLock = 'all' | ReadonlySet<string>;

interface Scope {
  /** What a relation met in this subtree has done to it: read in a FROM clause, ddl in CREATE INDEX ... */
  readonly mode: SqlOperation;
  /** CTE names in scope here: references to them are not relations. */
  readonly ctes: ReadonlySet<string>;
  /** Row locks reaching the FROM items of this subtree. */
  readonly rowLock?: RowLock;
  /** Set on the way into a locked sub-select in FROM: PostgreSQL locks the rows it reads as well. */
  readonly inheritsRowLock?: boolean;
}

const NO_CTES: ReadonlySet<string> = new Set();
const ROOT_SCOPE: Scope = { mode: 'read', ctes: NO_CTES };

type NodeWalker = (walker: TreeWalker, node: PgRecord, scope: Scope) => void;

/** Collects the accesses of one top-level statement by walking every node under it. */
class TreeWalker {
  readonly accesses: SqlAccess[] = [];
  /** Set once an EXECUTE is met: the answer then depends on the session's prepared statements. */
  dependsOnContext = false;
  /** What an EXECUTE runs, as the session answered (null: it did not know the name). */
  executed: SqlClassification | null | undefined;

  constructor(readonly context: ClassifyContext | undefined) {}

  add(access: SqlAccess): void {
    this.accesses.push(access);
  }

  visit(value: unknown, scope: Scope): void {
    if (Array.isArray(value)) {
      for (const item of value) this.visit(item, scope);
      return;
    }
    const record = asRecord(value);
    if (record === undefined) return;
    const node = unwrapNode(record);
    if (node !== undefined) this.visitNode(node[0], node[1], scope);
    // Fields typed as one specific node come bare; of those, only a RangeVar names a relation.
    else if (typeof record.relname === 'string') walkRangeVar(this, record, scope);
    else this.visitFields(record, scope);
  }

  visitFields(node: PgRecord, scope: Scope, skip?: ReadonlySet<string>): void {
    for (const key in node) {
      if (skip?.has(key) === true) continue;
      const value = node[key];
      if (typeof value === 'object' && value !== null) this.visit(value, scope);
    }
  }

  /** A relation a statement acts on directly (its target): never a CTE, whatever the name. */
  addRelation(rangeVar: unknown, operation: SqlOperation, unbounded = false): void {
    const body = nodeBody(rangeVar);
    const relation = body === undefined ? undefined : relationName(body);
    if (relation === undefined) return;
    this.add(unbounded ? { operation, relation, unbounded } : { operation, relation });
  }

  /** Walks a WITH clause's CTE bodies and returns the scope the statement's own clauses see. */
  visitWithClause(withClause: unknown, scope: Scope): Scope {
    const clause = asRecord(withClause);
    if (clause === undefined) return { mode: 'read', ctes: scope.ctes };
    const ctes = asList(clause.ctes).map(nodeBody).filter((cte): cte is PgRecord => cte !== undefined);
    const all = new Set(scope.ctes);
    for (const cte of ctes) all.add(asString(cte.ctename) ?? '');
    // A recursive WITH sees all its names everywhere; otherwise a CTE sees only those before it,
    // and its own name inside its body is a real table of that name.
    const visible = clause.recursive === true ? all : new Set(scope.ctes);
    for (const cte of ctes) {
      this.visit(cte.ctequery, { mode: 'read', ctes: new Set(visible) });
      visible.add(asString(cte.ctename) ?? '');
    }
    return { mode: 'read', ctes: all };
  }

  /**
   * Plain EXPLAIN plans without running: the explained statement's relations are only read (the
   * planner looks at them), and the functions it would call are not called at all.
   */
  downgradeToRead(from: number): void {
    for (let index = from; index < this.accesses.length; index += 1) {
      const relation = this.accesses[index].relation;
      this.accesses[index] = relation === undefined ? { operation: 'read' } : { operation: 'read', relation };
    }
  }

  visitNode(type: string, node: PgRecord, scope: Scope): void {
    const walk = NODE_WALKERS[type];
    if (walk !== undefined) walk(this, node, scope);
    else if (isStatementType(type)) this.visitStatement(type, node, scope);
    else this.visitFields(node, scope);
  }

  visitStatement(type: string, node: PgRecord, scope: Scope): void {
    const operation = statementOperation(type, node);
    const walk = STATEMENT_WALKERS[type] ?? walkDefinition;
    walk(this, node, { ...scope, mode: operation });
    // The statement's own operation, carried by a table-less access; settleAccesses drops it when
    // an access to something already carries an operation at least as strict.
    this.add({ operation });
  }
}

function walkRangeVar(walker: TreeWalker, rangeVar: PgRecord, scope: Scope): void {
  const relation = relationName(rangeVar);
  if (relation === undefined) return;
  if (relation.schema === undefined && scope.ctes.has(relation.name)) return;
  walker.add({ operation: isRowLocked(scope, rangeVar, relation.name) ? 'write' : scope.mode, relation });
}

/** SELECT ... FOR UPDATE/SHARE needs UPDATE privilege in PostgreSQL and blocks writers: a write. */
function isRowLocked(scope: Scope, rangeVar: PgRecord, name: string): boolean {
  if (scope.rowLock === undefined || scope.mode !== 'read') return false;
  if (scope.rowLock === 'all') return true;
  return scope.rowLock.has(asString(asRecord(rangeVar.alias)?.aliasname) ?? name);
}

function rowLockOf(select: PgRecord): RowLock | undefined {
  const clauses = asList(select.lockingClause).map(nodeBody);
  if (clauses.length === 0) return undefined;
  const names = new Set<string>();
  for (const clause of clauses) {
    const locked = asList(clause?.lockedRels);
    if (locked.length === 0) return 'all';
    for (const rangeVar of locked) names.add(asString(nodeBody(rangeVar)?.relname) ?? '');
  }
  return names;
}

function walkRangeSubselect(walker: TreeWalker, node: PgRecord, scope: Scope): void {
  const alias = asString(asRecord(node.alias)?.aliasname);
  const lock = scope.rowLock;
  const locked = lock !== undefined && (lock === 'all' || (alias !== undefined && lock.has(alias)));
  const inner: Scope = locked
    ? { mode: 'read', ctes: scope.ctes, rowLock: 'all', inheritsRowLock: true }
    : { mode: 'read', ctes: scope.ctes };
  walker.visitFields(node, inner);
}

const FUNCTION_NAME_FIELD: ReadonlySet<string> = new Set(['funcname']);

function walkFuncCall(walker: TreeWalker, call: PgRecord, scope: Scope): void {
  const fn = calledFunction(call);
  if (fn !== undefined) {
    const { operation, relation } = classifyFunctionCall(fn, asList(call.args).map(constantString));
    // A read-only built-in (lower, count, now) touches nothing a policy names, and the policy engine
    // must cover every access: recording it would make `allow read on orders` deny count(*).
    if (relation !== undefined) walker.add({ operation, relation, function: fn });
    else if (operation !== 'read') walker.add({ operation, function: fn });
  }
  walker.visitFields(call, { mode: 'read', ctes: scope.ctes }, FUNCTION_NAME_FIELD);
}

/**
 * OPERATOR(app.===) names a user-defined operator, whose implementing function we cannot see:
 * a call, like an unknown function. Unqualified operators resolve to built-ins unless someone
 * created their own, which takes DDL the policy already governs.
 */
function walkOperatorExpression(walker: TreeWalker, expression: PgRecord, scope: Scope): void {
  const name = stringItems(expression.name);
  if (name.length > 1 && name[name.length - 2] !== 'pg_catalog') {
    const operator = qualifiedName(name);
    if (operator !== undefined) walker.add({ operation: 'call', function: operator });
  }
  walker.visitFields(expression, scope);
}

/** CREATE TABLE t (LIKE source) copies source's definition: source is only read. */
function walkTableLike(walker: TreeWalker, like: PgRecord, scope: Scope): void {
  walker.visitFields(like, { mode: 'read', ctes: scope.ctes });
}

const NODE_WALKERS: Readonly<Record<string, NodeWalker>> = {
  RangeVar: walkRangeVar,
  TableLikeClause: walkTableLike,
  RangeSubselect: walkRangeSubselect,
  FuncCall: walkFuncCall,
  A_Expr: walkOperatorExpression,
};

// Statement walkers. Each receives a scope whose mode is the statement's own operation.

const SELECT_OWN_FIELDS: ReadonlySet<string> = new Set([
  'withClause', 'intoClause', 'fromClause', 'larg', 'rarg', 'lockingClause',
]);

function walkSelect(walker: TreeWalker, select: PgRecord, scope: Scope): void {
  const inner = walker.visitWithClause(select.withClause, scope);
  const rowLock = rowLockOf(select) ?? (scope.inheritsRowLock === true ? scope.rowLock : undefined);
  const into = asRecord(select.intoClause);
  // SELECT ... INTO creates the table it fills.
  if (into !== undefined) walker.addRelation(into.rel, 'ddl');
  walker.visit(select.fromClause, rowLock === undefined ? inner : { ...inner, rowLock });
  // UNION / INTERSECT / EXCEPT arms are bare SelectStmts.
  for (const arm of [select.larg, select.rarg]) {
    const armSelect = asRecord(arm);
    if (armSelect !== undefined) walkSelect(walker, armSelect, inner);
  }
  // lockingClause names FROM items by alias; they are not relations of their own.
  walker.visitFields(select, inner, SELECT_OWN_FIELDS);
}

const DML_OWN_FIELDS: ReadonlySet<string> = new Set(['withClause', 'relation']);

function walkInsert(walker: TreeWalker, insert: PgRecord, scope: Scope): void {
  const inner = walker.visitWithClause(insert.withClause, scope);
  // INSERT ... ON CONFLICT DO UPDATE updates existing rows: still a write.
  walker.addRelation(insert.relation, 'write');
  walker.visitFields(insert, inner, DML_OWN_FIELDS);
}

function walkUpdate(walker: TreeWalker, update: PgRecord, scope: Scope): void {
  const inner = walker.visitWithClause(update.withClause, scope);
  walker.addRelation(update.relation, 'write', update.whereClause === undefined);
  walker.visitFields(update, inner, DML_OWN_FIELDS);
}

function walkDelete(walker: TreeWalker, deletion: PgRecord, scope: Scope): void {
  const inner = walker.visitWithClause(deletion.withClause, scope);
  // WHERE CURRENT OF is a where clause too: it deletes the one row under the cursor.
  walker.addRelation(deletion.relation, 'delete', deletion.whereClause === undefined);
  walker.visitFields(deletion, inner, DML_OWN_FIELDS);
}

function walkMerge(walker: TreeWalker, merge: PgRecord, scope: Scope): void {
  const inner = walker.visitWithClause(merge.withClause, scope);
  for (const operation of mergeOperations(merge)) walker.addRelation(merge.relation, operation);
  walker.visitFields(merge, inner, DML_OWN_FIELDS);
}

const COPY_OWN_FIELDS: ReadonlySet<string> = new Set(['relation']);

function walkCopy(walker: TreeWalker, copy: PgRecord, scope: Scope): void {
  // The table's data flows in (FROM) or out (TO); a server file or program adds the statement's own admin.
  walker.addRelation(copy.relation, copy.is_from === true ? 'write' : 'read');
  walker.visitFields(copy, { mode: 'read', ctes: scope.ctes }, COPY_OWN_FIELDS);
}

function walkExplain(walker: TreeWalker, explain: PgRecord, scope: Scope): void {
  const start = walker.accesses.length;
  walker.visit(explain.query, { mode: 'read', ctes: scope.ctes });
  if (!explainRunsQuery(explain)) walker.downgradeToRead(start);
}

/** EXPLAIN ANALYZE runs the statement. Any analyze value we cannot read as false counts as true. */
function explainRunsQuery(explain: PgRecord): boolean {
  const analyze = asList(explain.options)
    .map(nodeBody)
    .find((option) => option?.defname === 'analyze');
  if (analyze === undefined) return false;
  const value = unwrapNode(analyze.arg);
  if (value === undefined) return true;
  const [type, body] = value;
  if (type === 'String') return !['false', 'off', '0', 'no'].includes((asString(body.sval) ?? '').toLowerCase());
  // Protobuf JSON leaves out zero and false: an Integer or Boolean without a value is 0 / false.
  if (type === 'Integer') return body.ival !== undefined && body.ival !== 0;
  if (type === 'Boolean') return body.boolval === true;
  return true;
}

function walkExecute(walker: TreeWalker, execute: PgRecord, scope: Scope): void {
  walker.dependsOnContext = true;
  walker.visit(execute.params, { mode: 'read', ctes: scope.ctes });
  const name = asString(execute.name);
  const prepared = name === undefined ? undefined : walker.context?.preparedStatement?.(name);
  walker.executed = prepared ?? null;
  if (prepared === undefined) {
    // Without the session's word we cannot know what runs: like an unknown function, a call.
    walker.add({ operation: 'call' });
    return;
  }
  for (const statement of prepared.statements) for (const access of statement.accesses) walker.add(access);
}

function walkCreateFunction(walker: TreeWalker, create: PgRecord): void {
  // Creating a routine does not run its body (nor its defaults or SET options): only the definition counts.
  const fn = qualifiedName(stringItems(create.funcname));
  walker.add(fn === undefined ? { operation: 'ddl' } : { operation: 'ddl', function: fn });
}

function walkAlterFunction(walker: TreeWalker, alter: PgRecord): void {
  const fn = qualifiedName(stringItems(nodeBody(alter.func)?.objname));
  walker.add(fn === undefined ? { operation: 'ddl' } : { operation: 'ddl', function: fn });
}

function walkCall(walker: TreeWalker, call: PgRecord, scope: Scope): void {
  const invocation = nodeBody(call.funccall);
  const fn = invocation === undefined ? undefined : qualifiedName(stringItems(invocation.funcname));
  walker.add(fn === undefined ? { operation: 'call' } : { operation: 'call', function: fn });
  if (invocation === undefined) return;
  walker.visitFields(invocation, { mode: 'read', ctes: scope.ctes }, FUNCTION_NAME_FIELD);
}

function walkCreateTableAs(walker: TreeWalker, create: PgRecord, scope: Scope): void {
  walker.addRelation(asRecord(create.into)?.rel, 'ddl');
  walker.visit(create.query, { mode: 'read', ctes: scope.ctes });
}

/** Object kinds named by a dotted list that ends in a relation's name. */
const RELATION_OBJECT_TYPES: ReadonlySet<string> = new Set([
  'OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_SEQUENCE', 'OBJECT_FOREIGN_TABLE', 'OBJECT_INDEX',
]);
/** Object kinds named by a relation's dotted name followed by the member's own name. */
const RELATION_MEMBER_OBJECT_TYPES: ReadonlySet<string> = new Set([
  'OBJECT_COLUMN', 'OBJECT_TRIGGER', 'OBJECT_RULE', 'OBJECT_POLICY', 'OBJECT_TABCONSTRAINT',
]);
const ROUTINE_OBJECT_TYPES: ReadonlySet<string> = new Set([
  'OBJECT_FUNCTION', 'OBJECT_PROCEDURE', 'OBJECT_ROUTINE', 'OBJECT_AGGREGATE',
]);

/** DROP, COMMENT ON, GRANT ... name their objects as dotted lists rather than RangeVars. */
function namedObjectAccess(objectType: string, object: unknown, operation: SqlOperation): SqlAccess | undefined {
  const node = unwrapNode(object);
  if (node === undefined) return undefined;
  const [type, body] = node;
  if (type === 'List') {
    const parts = stringItems(body.items);
    const relation = RELATION_OBJECT_TYPES.has(objectType)
      ? qualifiedName(parts)
      : RELATION_MEMBER_OBJECT_TYPES.has(objectType)
        ? qualifiedName(parts.slice(0, -1))
        : undefined;
    return relation === undefined ? undefined : { operation, relation };
  }
  if (type === 'ObjectWithArgs' && ROUTINE_OBJECT_TYPES.has(objectType)) {
    const fn = qualifiedName(stringItems(body.objname));
    return fn === undefined ? undefined : { operation, function: fn };
  }
  return undefined;
}

/** The default for DDL, DCL and utility statements: every relation in them gets the statement's operation. */
function walkDefinition(walker: TreeWalker, node: PgRecord, scope: Scope): void {
  walker.visitFields(node, scope);
  const objectType = asString(node.removeType ?? node.renameType ?? node.objectType ?? node.objtype);
  if (objectType === undefined) return;
  const objects = node.objects !== undefined ? asList(node.objects) : node.object !== undefined ? [node.object] : [];
  for (const object of objects) {
    const access = namedObjectAccess(objectType, object, scope.mode);
    if (access !== undefined) walker.add(access);
  }
}

const STATEMENT_WALKERS: Readonly<Record<string, NodeWalker>> = {
  SelectStmt: walkSelect,
  InsertStmt: walkInsert,
  UpdateStmt: walkUpdate,
  DeleteStmt: walkDelete,
  MergeStmt: walkMerge,
  CopyStmt: walkCopy,
  ExplainStmt: walkExplain,
  ExecuteStmt: walkExecute,
  CreateFunctionStmt: walkCreateFunction,
  AlterFunctionStmt: walkAlterFunction,
  CallStmt: walkCall,
  CreateTableAsStmt: walkCreateTableAs,
};

// ---------------------------------------------------------------------------------------------
// Settling what was collected

function accessKey(access: SqlAccess): string {
  const { operation, relation, function: fn, unbounded } = access;
  return JSON.stringify([operation, relation?.schema, relation?.name, fn?.schema, fn?.name, unbounded === true]);
}

/** Drops duplicates, then table-less accesses whose operation another access already carries. */
function settleAccesses(collected: readonly SqlAccess[]): SqlAccess[] {
  const unique = [...new Map(collected.map((access) => [accessKey(access), access])).values()];
  return unique.filter((access) => !isRedundantTableless(access, unique));
}

function isRedundantTableless(access: SqlAccess, all: readonly SqlAccess[]): boolean {
  if (access.relation !== undefined || access.function !== undefined) return false;
  const rank = strictness(access.operation);
  return all.some((other) => other !== access && strictness(other.operation) >= rank);
}

// ---------------------------------------------------------------------------------------------
// Parsing

/** One statement of the input: its node as the parser gave it and its own text. */
interface ParsedStatement {
  readonly type: string;
  readonly node: PgRecord;
  readonly text: string;
}

/** The parse of one input text: what the cache keeps when the answer depends on the session. */
interface ParsedSql {
  readonly statements: readonly ParsedStatement[];
}

function unparsable(detail: string): GatehouseError {
  return new GatehouseError('GH_ERR_SQL_UNPARSABLE', { detail });
}

/** PostgreSQL's whitespace: a text of only these (or of only comments) holds no statement. */
function isBlank(text: string): boolean {
  for (const char of text) if (!' \t\n\r\f\v'.includes(char)) return false;
  return true;
}

function parseSql(text: string): ParsedSql {
  assertParserLoaded();
  // The parser reads a C string: everything after a NUL would go unseen, so refuse it outright.
  if (text.includes('\0')) throw unparsable('the text contains a NUL character');
  if (isBlank(text)) throw new GatehouseError('GH_ERR_SQL_EMPTY');
  const tree = runParser(text);
  const rawStatements = asList(tree.stmts);
  if (rawStatements.length === 0) throw new GatehouseError('GH_ERR_SQL_EMPTY');
  const cut = statementCutter(text);
  return { statements: rawStatements.map((raw) => parsedStatement(raw, cut)) };
}

function runParser(text: string): PgRecord {
  try {
    return asRecord(pgQuery.parseSync(text)) ?? {};
  } catch (error) {
    throw parseFailure(error, text);
  }
}

function parseFailure(error: unknown, text: string): GatehouseError {
  // The parser's JSON can nest deeper than the JavaScript stack allows.
  if (error instanceof RangeError) return unparsable('it nests too deeply to classify');
  const details = asRecord(asRecord(error)?.sqlDetails);
  const message = asString(details?.message) ?? (error instanceof Error ? error.message : String(error));
  const position = details?.cursorPosition;
  if (typeof position !== 'number' || position < 0 || position > text.length) return unparsable(message);
  // cursorPosition counts characters from 0; PostgreSQL reports them from 1.
  return unparsable(`${message} at character ${position + 1}`);
}

type StatementCutter = (location: number, length: number | undefined) => string;

/** stmt_location and stmt_len count UTF-8 bytes; cut by bytes unless the text is plain ASCII. */
function statementCutter(text: string): StatementCutter {
  if (Buffer.byteLength(text, 'utf8') === text.length) {
    return (location, length) => text.slice(location, length === undefined ? undefined : location + length).trim();
  }
  const bytes = Buffer.from(text, 'utf8');
  return (location, length) =>
    bytes.subarray(location, length === undefined ? undefined : location + length).toString('utf8').trim();
}

function parsedStatement(raw: unknown, cut: StatementCutter): ParsedStatement {
  const record = asRecord(raw) ?? {};
  const node = unwrapNode(record.stmt);
  if (node === undefined) throw unparsable('the parser returned a statement without a node');
  const location = typeof record.stmt_location === 'number' ? record.stmt_location : 0;
  // A missing or zero length means "to the end of the text".
  const length = typeof record.stmt_len === 'number' && record.stmt_len > 0 ? record.stmt_len : undefined;
  return { type: node[0], node: node[1], text: cut(location, length) };
}

// ---------------------------------------------------------------------------------------------
// Classifying

interface Classified {
  readonly classification: SqlClassification;
  /** True when an EXECUTE made the answer depend on the context it was given. */
  readonly dependsOnContext: boolean;
}

function classifyStatement(
  statement: ParsedStatement,
  context: ClassifyContext | undefined,
): { statement: ClassifiedStatement; dependsOnContext: boolean } {
  const walker = new TreeWalker(context);
  walker.visitNode(statement.type, statement.node, ROOT_SCOPE);
  const accesses = settleAccesses(walker.accesses).map((access) => Object.freeze(access));
  const operation = strictest(accesses.map((access) => access.operation)) ?? 'admin';
  const prepares = statement.type === 'PrepareStmt' ? asString(statement.node.name) : undefined;
  const executes = statement.type === 'ExecuteStmt';
  const outputs = executes ? executedOutputs(walker.executed) : outputLineage(statement.type, statement.node);
  const flows = executes ? executedFlows(walker.executed) : valueFlows(statement.type, statement.node);
  const classified: ClassifiedStatement = {
    text: statement.text,
    command: commandTag(statement.type, statement.node),
    operation,
    accesses: Object.freeze(accesses),
    ...(prepares === undefined ? {} : { prepares }),
    ...(outputs === undefined ? {} : { outputs }),
    ...(flows === undefined || flows.length === 0 ? {} : { flows }),
  };
  return { statement: Object.freeze(classified), dependsOnContext: walker.dependsOnContext };
}

/** `EXECUTE name` puts values where the statement the session prepared does; anywhere, when it did not say. */
function executedFlows(prepared: SqlClassification | null | undefined): readonly ValueFlow[] | undefined {
  return prepared ? prepared.statements[0]?.flows : UNKNOWN_FLOWS;
}

/** `EXECUTE name` returns what the session prepared under that name; unknown when it did not say. */
function executedOutputs(prepared: SqlClassification | null | undefined): OutputLineage | undefined {
  return prepared ? prepared.statements[0]?.outputs : UNKNOWN_LINEAGE;
}

function classifyParsed(parsed: ParsedSql, context: ClassifyContext | undefined): Classified {
  const statements: ClassifiedStatement[] = [];
  let dependsOnContext = false;
  try {
    for (const statement of parsed.statements) {
      const result = classifyStatement(statement, context);
      statements.push(result.statement);
      dependsOnContext ||= result.dependsOnContext;
    }
  } catch (error) {
    if (error instanceof RangeError) throw unparsable('it nests too deeply to classify');
    throw error;
  }
  const operations = [...new Set(statements.map((statement) => statement.operation))].sort(
    (left, right) => strictness(right) - strictness(left),
  );
  const classification: SqlClassification = {
    operation: operations[0],
    operations: Object.freeze(operations),
    statements: Object.freeze(statements),
  };
  return { classification: Object.freeze(classification), dependsOnContext };
}

/**
 * Classifies every statement in `text`. Throws GH_ERR_SQL_UNPARSABLE for text PostgreSQL would
 * reject, GH_ERR_SQL_EMPTY for text with no statement (blank, comments only), and
 * GH_ERR_SQL_PARSER_NOT_LOADED before loadSqlParser() has finished.
 */
export function classifySql(text: string, context?: ClassifyContext): SqlClassification {
  return classifyParsed(parseSql(text), context).classification;
}

// ---------------------------------------------------------------------------------------------
// The cached classifier

type CacheEntry =
  | { readonly kind: 'classified'; readonly classification: SqlClassification }
  | { readonly kind: 'contextual'; readonly parsed: ParsedSql }
  | { readonly kind: 'failed'; readonly code: ErrorCode; readonly details: ErrorDetails };

export interface SqlClassifierOptions {
  /** Most statement texts remembered; the least recently used is forgotten first. Default 10 000. */
  readonly cacheSize?: number;
  /**
   * Longer texts are classified every time but not remembered, so a few huge one-off statements
   * (bulk INSERTs) cannot fill memory. Default 16 384 characters.
   */
  readonly maxCachedTextLength?: number;
}

export interface SqlClassifierStats {
  readonly hits: number;
  readonly misses: number;
  readonly size: number;
}

const CACHEABLE_ERRORS: ReadonlySet<ErrorCode> = new Set(['GH_ERR_SQL_UNPARSABLE', 'GH_ERR_SQL_EMPTY']);

/**
 * classifySql with a bounded cache by statement text, parse errors included. Texts with an EXECUTE
 * keep their parse tree instead of an answer, and are classified afresh against each context.
 */
export class SqlClassifier {
  readonly #cache: StatementCache<CacheEntry>;
  readonly #maxCachedTextLength: number;
  #hits = 0;
  #misses = 0;
  /**
   * The key and entry of the last lookup that found or stored one. A session tends to send one
   * shape after another, and comparing a new key with the last one costs less than hashing it for
   * the cache (a new string every statement). That entry is the cache's most recently used, so
   * answering from here leaves the cache's order as a lookup there would.
   */
  #lastKey: string | undefined;
  #lastEntry: CacheEntry | undefined;

  constructor(options: SqlClassifierOptions = {}) {
    this.#cache = new StatementCache<CacheEntry>(options.cacheSize ?? 10_000);
    this.#maxCachedTextLength = options.maxCachedTextLength ?? 16_384;
  }

  get stats(): SqlClassifierStats {
    return { hits: this.#hits, misses: this.#misses, size: this.#cache.size };
  }

  /**
   * Cached by the statement's shape (numbers replaced, see statement-shape.ts), so statements that
   * differ only in literal values parse once. A cached answer's statement texts are those of the
   * first statement of that shape; accesses, operations and commands are the same for all of them.
   */
  classify(text: string, context?: ClassifyContext): SqlClassification {
    assertParserLoaded();
    const cacheable = text.length <= this.#maxCachedTextLength;
    const key = cacheable ? (statementShape(text) ?? text) : text;
    let entry = !cacheable ? undefined : key === this.#lastKey ? this.#lastEntry : this.#cache.get(key);
    if (entry !== undefined) {
      this.#hits += 1;
      // The last key stays the string the cache hashed and flattened, which compares fastest.
      if (entry !== this.#lastEntry) this.#remember(key, entry);
      return answer(entry, context);
    }
    this.#misses += 1;
    const evaluated = evaluate(text, context);
    entry = evaluated.entry;
    // A parse error quotes the text near the error: cached only under the exact text it came from.
    if (cacheable && (entry.kind !== 'failed' || key === text)) {
      this.#cache.set(key, entry);
      this.#remember(key, entry);
    }
    return evaluated.classification ?? answer(entry, context);
  }

  #remember(key: string, entry: CacheEntry): void {
    this.#lastKey = key;
    this.#lastEntry = entry;
  }
}

function evaluate(
  text: string,
  context: ClassifyContext | undefined,
): { entry: CacheEntry; classification?: SqlClassification } {
  try {
    const parsed = parseSql(text);
    const { classification, dependsOnContext } = classifyParsed(parsed, context);
    if (dependsOnContext) return { entry: { kind: 'contextual', parsed }, classification };
    return { entry: { kind: 'classified', classification }, classification };
  } catch (error) {
    if (isGatehouseError(error) && CACHEABLE_ERRORS.has(error.code)) {
      return { entry: { kind: 'failed', code: error.code, details: error.details } };
    }
    throw error;
  }
}

function answer(entry: CacheEntry, context: ClassifyContext | undefined): SqlClassification {
  switch (entry.kind) {
    case 'classified':
      return entry.classification;
    case 'contextual':
      return classifyParsed(entry.parsed, context).classification;
    case 'failed':
      // A fresh error each time: a shared instance would carry the first caller's stack.
      throw new GatehouseError(entry.code, entry.details);
  }
}
