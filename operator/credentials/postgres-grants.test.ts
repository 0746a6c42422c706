// The policy → privilege mapping, without a server: which privileges each operation implies, how
// deny, require-approval, globs and the admin's grant options shape them, and the GRANT/REVOKE diff.
import type { PolicyRuleT } from '../../api/kinds/kinds.js';
import { credentialRequest } from './credential-issuer.js';
import { identity, policy, resource } from './credential-fixtures.js';
import {
  EMPTY_PRIVILEGES, planPrivileges, privilegeStatements, relationKey,
  type CatalogRelation, type DatabaseCatalog, type PrivilegeSet, type TablePrivilege,
} from './postgres-grants.js';

const ALL: ReadonlySet<TablePrivilege> = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']);

function relation(schema: string, name: string, extra: Partial<CatalogRelation> = {}): CatalogRelation {
  return { schema, name, kind: 'table', grantable: ALL, sequences: [], ...extra };
}

const CATALOG: DatabaseCatalog = {
  database: 'app',
  canGrantConnect: true,
  grantableSchemas: new Set(['public', 'reporting']),
  relations: [
    relation('public', 'orders', { sequences: [{ schema: 'public', name: 'orders_id_seq' }] }),
    relation('public', 'customers'),
    relation('public', 'open_orders', { kind: 'view' }),
    relation('public', 'order_totals', { kind: 'materialized-view' }),
    relation('reporting', 'daily'),
  ],
};

function plan(rules: readonly PolicyRuleT[], catalog: DatabaseCatalog = CATALOG): Record<string, string[]> {
  const request = credentialRequest({
    identity: identity('ci-runner'),
    resource: resource('orders-db'),
    policies: [policy('p', ['ci-runner'], ['orders-db'], rules)],
  });
  return flatten(planPrivileges(request.policy, catalog));
}

function flatten(set: PrivilegeSet): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const item of [...set.tables.values(), ...set.sequences.values()]) out[`${item.schema}.${item.name}`] = [...item.privileges].sort();
  out['schemas'] = [...set.schemas].sort();
  return out;
}

describe('planPrivileges', () => {
  test('read grants SELECT on every relation the globs match, USAGE on their schemas', () => {
    expect(plan([{ effect: 'allow', operations: ['read'] }])).toEqual({
      'public.orders': ['SELECT'],
      'public.customers': ['SELECT'],
      'public.open_orders': ['SELECT'],
      'public.order_totals': ['SELECT'],
      'reporting.daily': ['SELECT'],
      schemas: ['public', 'reporting'],
    });
  });

  test('write on one table grants INSERT, UPDATE (+ SELECT for WHERE clauses) and USAGE on its serial sequence', () => {
    expect(plan([{ effect: 'allow', operations: ['write'], tables: ['orders'] }])).toEqual({
      'public.orders': ['INSERT', 'SELECT', 'UPDATE'],
      'public.orders_id_seq': ['USAGE'],
      schemas: ['public'],
    });
  });

  test('an explicit read deny withholds the SELECT that UPDATE would bring along', () => {
    const rules: PolicyRuleT[] = [
      { effect: 'allow', operations: ['write'], tables: ['customers'] },
      { effect: 'deny', operations: ['read'], tables: ['customers'] },
    ];
    expect(plan(rules)['public.customers']).toEqual(['INSERT', 'UPDATE']);
  });

  test('require-approval operations are granted: the approved statement still runs as this role', () => {
    const rules: PolicyRuleT[] = [
      { effect: 'allow', operations: ['read'], tables: ['reporting.*'] },
      { effect: 'require-approval', operations: ['delete'], tables: ['public.customers'], approval: { approvers: { groups: ['dba'] } } },
    ];
    expect(plan(rules)).toEqual({
      'public.customers': ['DELETE', 'SELECT'],
      'reporting.daily': ['SELECT'],
      schemas: ['public', 'reporting'],
    });
  });

  test('deny beats allow table by table, and deny-only policies grant nothing', () => {
    const rules: PolicyRuleT[] = [
      { effect: 'allow', operations: ['read', 'write'] },
      { effect: 'deny', operations: ['read', 'write'], tables: ['public.c*', 'reporting.*'] },
    ];
    const planned = plan(rules);
    expect(planned['public.customers']).toBeUndefined();
    expect(planned['reporting.daily']).toBeUndefined();
    expect(planned['public.orders']).toEqual(['INSERT', 'SELECT', 'UPDATE']);
    expect(plan([{ effect: 'deny', operations: ['read', 'write', 'delete', 'truncate'] }])).toEqual({ schemas: [] });
  });

  test('a rule that only matches unbounded writes still needs the privilege', () => {
    const rules: PolicyRuleT[] = [{ effect: 'require-approval', operations: ['delete'], unboundedWrite: true, tables: ['orders'], approval: { approvers: { users: ['a'] } } }];
    expect(plan(rules)['public.orders']).toEqual(['DELETE', 'SELECT']);
  });

  test('truncate and writes are granted only where the relation kind takes them', () => {
    const planned = plan([{ effect: 'allow', operations: ['write', 'truncate'], tables: ['open_orders', 'order_totals', 'daily'] }]);
    expect(planned['public.open_orders']).toEqual(['INSERT', 'SELECT', 'UPDATE']);
    expect(planned['public.order_totals']).toEqual(['SELECT']);
    expect(planned['reporting.daily']).toEqual(['INSERT', 'SELECT', 'TRUNCATE', 'UPDATE']);
  });

  test('ddl, dcl, admin and call grant nothing', () => {
    expect(plan([{ effect: 'allow', operations: ['ddl', 'dcl', 'admin', 'call', 'session', 'transaction'] }])).toEqual({ schemas: [] });
  });

  test('never more than the admin can pass on', () => {
    const catalog: DatabaseCatalog = {
      ...CATALOG,
      grantableSchemas: new Set(['reporting']),
      relations: [relation('public', 'orders', { grantable: new Set(['SELECT']) }), relation('reporting', 'daily', { grantable: new Set() })],
    };
    expect(plan([{ effect: 'allow', operations: ['read', 'write'] }], catalog)).toEqual({ 'public.orders': ['SELECT'], schemas: [] });
  });
});

describe('privilegeStatements', () => {
  const role = 'gh_0123456789ab_01234567';

  test('grants from nothing, with CONNECT and quoted identifiers', () => {
    const catalog: DatabaseCatalog = { ...CATALOG, database: 'my"db', relations: [relation('odd schema', 'we"ird')], grantableSchemas: new Set(['odd schema']) };
    const request = credentialRequest({
      identity: identity('ci-runner'),
      resource: resource('orders-db'),
      policies: [policy('p', ['ci-runner'], ['orders-db'], [{ effect: 'allow', operations: ['read'] }])],
    });
    expect(privilegeStatements(role, catalog, EMPTY_PRIVILEGES, planPrivileges(request.policy, catalog))).toEqual([
      `GRANT SELECT ON TABLE "odd schema"."we""ird" TO "${role}"`,
      `GRANT USAGE ON SCHEMA "odd schema" TO "${role}"`,
      `GRANT CONNECT ON DATABASE "my""db" TO "${role}"`,
    ]);
  });

  test('moves a role from what it holds to what it should hold, touching only the difference', () => {
    const orders = { schema: 'public', name: 'orders' };
    const customers = { schema: 'public', name: 'customers' };
    const current: PrivilegeSet = {
      tables: new Map([
        [relationKey(orders), { ...orders, privileges: new Set(['SELECT', 'INSERT']) }],
        [relationKey(customers), { ...customers, privileges: new Set(['SELECT']) }],
      ]),
      sequences: new Map(),
      schemas: new Set(['public', 'reporting']),
    };
    const desired: PrivilegeSet = {
      tables: new Map([[relationKey(orders), { ...orders, privileges: new Set(['SELECT', 'DELETE']) }]]),
      sequences: new Map(),
      schemas: new Set(['public']),
    };
    expect(privilegeStatements(role, { ...CATALOG, canGrantConnect: false }, current, desired)).toEqual([
      `REVOKE INSERT ON TABLE "public"."orders" FROM "${role}"`,
      `REVOKE SELECT ON TABLE "public"."customers" FROM "${role}"`,
      `GRANT DELETE ON TABLE "public"."orders" TO "${role}"`,
      `REVOKE USAGE ON SCHEMA "reporting" FROM "${role}"`,
    ]);
  });
});
