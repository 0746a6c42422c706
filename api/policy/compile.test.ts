import fc from 'fast-check';
import { GatehouseError } from '../errors.js';
import type { AccessPolicy, NonHumanIdentity, PolicyRuleT, ProtectedResource } from '../kinds/kinds.js';
import type { SqlAccess, SqlClassification, SqlOperation } from '../sql/operations.js';
import { compilePolicies, type StatementClassifier } from './compile.js';
import type { Decision, PolicyAction } from './decision.js';

// ── fixtures ────────────────────────────────────────────────────────────────────────────────────

function identity(name: string, extra: { groups?: string[]; namespace?: string; maxCredentialTTL?: string } = {}): NonHumanIdentity {
  return {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'NonHumanIdentity',
    metadata: { name, ...(extra.namespace ? { namespace: extra.namespace } : {}) },
    spec: {
      serviceAccountName: name,
      ...(extra.groups ? { groups: extra.groups } : {}),
      ...(extra.maxCredentialTTL ? { maxCredentialTTL: extra.maxCredentialTTL } : {}),
    },
  };
}

function resource(name: string, namespace?: string): ProtectedResource {
  return {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'ProtectedResource',
    metadata: { name, ...(namespace ? { namespace } : {}) },
    spec: {
      protocol: 'postgres',
      address: `${name}:5432`,
      credentials: { strategy: 'none' },
      sidecar: { port: 15432 },
    },
  };
}

type PolicySpec = AccessPolicy['spec'];

function policy(name: string, rules: PolicyRuleT[], extra: Partial<PolicySpec> & { namespace?: string } = {}): AccessPolicy {
  const { namespace, ...spec } = extra;
  return {
    apiVersion: 'gatehouse.dev/v1alpha1',
    kind: 'AccessPolicy',
    metadata: { name, ...(namespace ? { namespace } : {}) },
    spec: { subjects: [{ identity: 'ci-runner' }], resources: ['orders-db'], rules, ...spec },
  };
}

const approval = { approvers: { groups: ['dba'] } };

function on(operation: SqlOperation, table?: string, extra: Partial<PolicyAction> = {}): PolicyAction {
  if (table === undefined) return { operation, ...extra };
  const [schema, name] = table.includes('.') ? table.split('.') : [undefined, table];
  return { operation, relation: { name: name!, ...(schema ? { schema } : {}) }, ...extra };
}

const runner = identity('ci-runner', { groups: ['ci'] });
const ordersDb = resource('orders-db');

function decide(policies: AccessPolicy[], actions: PolicyAction[]): Decision {
  return compilePolicies({ policies, identity: runner, resource: ordersDb }).decide(actions);
}

function summary(decision: Decision): { effect: string; reason: string; rule?: string } {
  return { effect: decision.effect, reason: decision.reason, ...(decision.rule ? { rule: decision.rule.id } : {}) };
}

// ── semantics ───────────────────────────────────────────────────────────────────────────────────

describe('compilePolicies decide', () => {
  const readOnly = policy('ci-read-only', [{ name: 'read-anything', effect: 'allow', operations: ['read'] }]);

  const cases: Array<{ name: string; policies: AccessPolicy[]; actions: PolicyAction[]; want: ReturnType<typeof summary> }> = [
    {
      name: 'allow read on a table',
      policies: [readOnly],
      actions: [on('read', 'orders')],
      want: { effect: 'allow', reason: 'rule', rule: 'ci-read-only/read-anything' },
    },
    {
      name: 'allow read on a table-less statement (SELECT 1)',
      policies: [readOnly],
      actions: [on('read')],
      want: { effect: 'allow', reason: 'rule', rule: 'ci-read-only/read-anything' },
    },
    {
      name: 'an operation no rule names is no-match',
      policies: [readOnly],
      actions: [on('delete', 'orders')],
      want: { effect: 'deny', reason: 'no-match' },
    },
    {
      name: 'a DELETE inside a CTE is not covered by allow read',
      policies: [readOnly],
      actions: [on('delete', 'orders'), on('read', 'orders')],
      want: { effect: 'deny', reason: 'no-match' },
    },
    {
      name: 'deny beats require-approval beats allow',
      policies: [
        policy('p', [
          { name: 'allow-all', effect: 'allow' },
          { name: 'hold-deletes', effect: 'require-approval', operations: ['delete'], approval },
          { name: 'no-orders-delete', effect: 'deny', operations: ['delete'], tables: ['orders'] },
        ]),
      ],
      actions: [on('delete', 'orders')],
      want: { effect: 'deny', reason: 'rule', rule: 'p/no-orders-delete' },
    },
    {
      name: 'require-approval beats allow',
      policies: [
        policy('p', [
          { name: 'allow-all', effect: 'allow' },
          { name: 'hold-deletes', effect: 'require-approval', operations: ['delete'], approval },
          { name: 'no-orders-delete', effect: 'deny', operations: ['delete'], tables: ['orders'] },
        ]),
      ],
      actions: [on('delete', 'customers')],
      want: { effect: 'require-approval', reason: 'rule', rule: 'p/hold-deletes' },
    },
    {
      name: 'the statement takes the strongest effect across its actions',
      policies: [
        policy('p', [
          { name: 'reads', effect: 'allow', operations: ['read'] },
          { name: 'writes', effect: 'require-approval', operations: ['write'], approval },
        ]),
      ],
      actions: [on('read', 'orders'), on('write', 'audit_log')],
      want: { effect: 'require-approval', reason: 'rule', rule: 'p/writes' },
    },
    {
      name: 'an explicit deny explains better than a no-match elsewhere',
      policies: [policy('p', [{ name: 'no-ddl', effect: 'deny', operations: ['ddl'] }, { name: 'reads', effect: 'allow', operations: ['read'] }])],
      actions: [on('delete', 'orders'), on('ddl', 'orders')],
      want: { effect: 'deny', reason: 'rule', rule: 'p/no-ddl' },
    },
    {
      name: 'a no-match beats an allow elsewhere',
      policies: [readOnly],
      actions: [on('read', 'orders'), on('write', 'orders')],
      want: { effect: 'deny', reason: 'no-match' },
    },
    {
      name: 'unqualified glob matches the table in any schema',
      policies: [policy('p', [{ name: 'orders', effect: 'allow', tables: ['orders'] }])],
      actions: [on('read', 'billing.orders')],
      want: { effect: 'allow', reason: 'rule', rule: 'p/orders' },
    },
    {
      name: 'qualified glob takes unqualified tables as public',
      policies: [policy('p', [{ name: 'public', effect: 'allow', tables: ['public.*'] }])],
      actions: [on('read', 'orders')],
      want: { effect: 'allow', reason: 'rule', rule: 'p/public' },
    },
    {
      name: 'qualified glob does not match another schema',
      policies: [policy('p', [{ name: 'billing', effect: 'allow', tables: ['billing.*'] }])],
      actions: [on('read', 'orders')],
      want: { effect: 'deny', reason: 'no-match' },
    },
    {
      name: 'wildcards in both parts',
      policies: [policy('p', [{ name: 'cards', effect: 'deny', tables: ['*.card_*'] }, { name: 'all', effect: 'allow' }])],
      actions: [on('read', 'vault.card_numbers')],
      want: { effect: 'deny', reason: 'rule', rule: 'p/cards' },
    },
    {
      name: 'table-scoped rules do not match table-less actions',
      policies: [policy('p', [{ name: 'orders', effect: 'allow', operations: ['read'], tables: ['*'] }])],
      actions: [on('read')],
      want: { effect: 'deny', reason: 'no-match' },
    },
    {
      name: 'table-scoped rules do not match function calls',
      policies: [policy('p', [{ name: 'any-table', effect: 'allow', tables: ['*'] }])],
      actions: [{ operation: 'admin', function: { name: 'pg_terminate_backend' } }],
      want: { effect: 'deny', reason: 'no-match' },
    },
    {
      name: 'unboundedWrite rule matches a DELETE without WHERE',
      policies: [
        policy('p', [
          { name: 'deletes', effect: 'allow', operations: ['delete'] },
          { name: 'no-unbounded', effect: 'deny', unboundedWrite: true, message: 'add a WHERE clause' },
        ]),
      ],
      actions: [on('delete', 'orders', { unbounded: true })],
      want: { effect: 'deny', reason: 'rule', rule: 'p/no-unbounded' },
    },
    {
      name: 'unboundedWrite rule ignores a bounded DELETE',
      policies: [
        policy('p', [
          { name: 'deletes', effect: 'allow', operations: ['delete'] },
          { name: 'no-unbounded', effect: 'deny', unboundedWrite: true },
        ]),
      ],
      actions: [on('delete', 'orders')],
      want: { effect: 'allow', reason: 'rule', rule: 'p/deletes' },
    },
    {
      name: 'path-scoped rules do not match SQL actions',
      policies: [policy('p', [{ name: 'api', effect: 'allow', paths: ['/**'] }])],
      actions: [on('read', 'orders')],
      want: { effect: 'deny', reason: 'no-match' },
    },
    {
      name: 'unnamed rules are called rules[INDEX]',
      policies: [policy('p', [{ effect: 'allow', operations: ['write'] }, { effect: 'allow', operations: ['read'] }])],
      actions: [on('read', 'orders')],
      want: { effect: 'allow', reason: 'rule', rule: 'p/rules[1]' },
    },
    {
      name: 'equal effects tie-break by policy name, then rule index',
      policies: [
        policy('b', [{ name: 'b-first', effect: 'allow' }]),
        policy('a', [{ name: 'a-second', effect: 'allow', operations: ['write'] }, { name: 'a-third', effect: 'allow' }]),
      ],
      actions: [on('read', 'orders')],
      want: { effect: 'allow', reason: 'rule', rule: 'a/a-third' },
    },
    {
      name: 'no actions is a deny',
      policies: [readOnly],
      actions: [],
      want: { effect: 'deny', reason: 'no-match' },
    },
  ];

  test.each(cases)('$name', ({ policies, actions, want }) => {
    expect(summary(decide(policies, actions))).toEqual(want);
  });

  test('matched lists every rule that matched any action, in stable order', () => {
    const policies = [
      policy('z-audit', [{ name: 'reads', effect: 'allow', operations: ['read'] }]),
      policy('a-main', [
        { name: 'writes', effect: 'require-approval', operations: ['write'], approval },
        { name: 'reads', effect: 'allow', operations: ['read'], tables: ['orders'] },
        { name: 'ddl', effect: 'deny', operations: ['ddl'] },
      ]),
    ];
    const decision = decide(policies, [on('write', 'orders'), on('read', 'orders'), on('read', 'customers')]);
    expect(decision.matched.map((rule) => rule.id)).toEqual(['a-main/writes', 'a-main/reads', 'z-audit/reads']);
    expect(decision.rule?.approval).toEqual(approval);
    expect(decision.action).toEqual(on('write', 'orders'));
    expect(decision.operation).toBe('write');
  });

  test('deny messages: the rule message, else a default naming rule, operation, table and identity', () => {
    const withMessage = decide([policy('p', [{ name: 'no-ddl', effect: 'deny', operations: ['ddl'], message: 'schema changes go through migrations' }])], [on('ddl', 'orders')]);
    expect(withMessage.message).toBe('schema changes go through migrations');
    const without = decide([policy('p', [{ name: 'no-ddl', effect: 'deny', operations: ['ddl'] }])], [on('ddl', 'public.orders')]);
    expect(without.message).toBe('rule p/no-ddl denies ddl on public.orders for identity ci-runner');
  });

  test('no-match message names the operation, the table and the identity', () => {
    const decision = decide([policy('p', [{ effect: 'allow', operations: ['read'] }])], [on('read', 'orders'), on('delete', 'public.orders')]);
    expect(decision.message).toBe('no rule allows delete on public.orders for identity ci-runner');
    expect(decision.action).toEqual(on('delete', 'public.orders'));
    expect(decision.matched.map((rule) => rule.id)).toEqual(['p/rules[0]']);
  });

  test('no-match message for functions and table-less actions', () => {
    const policies = [policy('p', [{ effect: 'allow', operations: ['write'] }])];
    expect(decide(policies, [{ operation: 'admin', function: { name: 'pg_terminate_backend' } }]).message).toBe(
      'no rule allows admin via pg_terminate_backend() for identity ci-runner',
    );
    expect(decide(policies, [on('session')]).message).toBe('no rule allows session for identity ci-runner');
  });
});

// ── selection ───────────────────────────────────────────────────────────────────────────────────

describe('compilePolicies selection', () => {
  const allowAll: PolicyRuleT[] = [{ name: 'all', effect: 'allow' }];

  test('selects by identity name or by a group the identity lists', () => {
    const set = compilePolicies({
      policies: [
        policy('by-name', allowAll),
        policy('by-group', allowAll, { subjects: [{ group: 'ci' }] }),
        policy('other-group', allowAll, { subjects: [{ group: 'dba' }] }),
        policy('other-identity', allowAll, { subjects: [{ identity: 'reporter' }] }),
        policy('other-resource', allowAll, { resources: ['billing-db'] }),
      ],
      identity: runner,
      resource: ordersDb,
    });
    expect(set.policies).toEqual(['by-group', 'by-name']);
  });

  test('selects only policies in the identity namespace (absent namespace is default)', () => {
    const policies = [
      policy('in-default', allowAll),
      policy('explicit-default', allowAll, { namespace: 'default' }),
      policy('in-payments', allowAll, { namespace: 'payments' }),
    ];
    expect(compilePolicies({ policies, identity: runner, resource: ordersDb }).policies).toEqual(['explicit-default', 'in-default']);
    const paymentsRunner = identity('ci-runner', { namespace: 'payments' });
    const paymentsDb = resource('orders-db', 'payments');
    expect(compilePolicies({ policies, identity: paymentsRunner, resource: paymentsDb }).policies).toEqual(['in-payments']);
  });

  test('an identity and a resource in different namespaces get no policy', () => {
    const set = compilePolicies({ policies: [policy('p', allowAll, { namespace: 'payments' })], identity: runner, resource: resource('orders-db', 'payments') });
    expect(set.policies).toEqual([]);
    expect(set.decide([on('read')]).reason).toBe('no-policy');
  });

  test('no policy at all is a deny with reason no-policy', () => {
    const decision = decide([], [on('read', 'orders')]);
    expect(decision).toMatchObject({ effect: 'deny', reason: 'no-policy', matched: [], operation: 'read' });
    expect(decision.message).toBe('no AccessPolicy in namespace default gives identity ci-runner access to resource orders-db');
  });

  test('rules lists every selected rule in stable order', () => {
    const set = compilePolicies({
      policies: [policy('b', [{ effect: 'deny', operations: ['ddl'] }]), policy('a', [{ name: 'x', effect: 'allow' }, { effect: 'deny' }])],
      identity: runner,
      resource: ordersDb,
    });
    expect(set.rules.map((rule) => rule.id)).toEqual(['a/x', 'a/rules[1]', 'b/rules[0]']);
  });

  test('a bad glob fails compilation with GH_ERR_BAD_GLOB', () => {
    const bad = policy('p', [{ effect: 'allow', tables: ['a.b.c'] }]);
    expect(() => compilePolicies({ policies: [bad], identity: runner, resource: ordersDb })).toThrow(
      expect.objectContaining({ code: 'GH_ERR_BAD_GLOB' }),
    );
  });
});

describe('compilePolicies settings', () => {
  const rules: PolicyRuleT[] = [{ effect: 'allow' }];

  test('credentialTTL is the smallest policy TTL, capped by the identity maximum', () => {
    const who = identity('ci-runner', { maxCredentialTTL: '15m' });
    const ttl = (policies: AccessPolicy[], person = who) => compilePolicies({ policies, identity: person, resource: ordersDb }).credentialTTL;
    expect(ttl([policy('a', rules, { credentialTTL: '10m' }), policy('b', rules, { credentialTTL: '5m' })])).toBe(5 * 60_000);
    expect(ttl([policy('a', rules, { credentialTTL: '1h' })])).toBe(15 * 60_000);
    expect(ttl([policy('a', rules)])).toBe(15 * 60_000);
    expect(ttl([policy('a', rules)], runner)).toBe(60 * 60_000);
  });

  test('masking collects every selected policy masking rule; recording is on unless every policy turns it off', () => {
    const masked = policy('a', rules, { masking: [{ columns: ['email'] }], recording: { enabled: false } });
    const other = policy('b', rules, { masking: [{ detectors: ['credit-card'], strategy: 'hash' }] });
    const both = compilePolicies({ policies: [other, masked], identity: runner, resource: ordersDb });
    expect(both.masking).toEqual([{ columns: ['email'] }, { detectors: ['credit-card'], strategy: 'hash' }]);
    expect(both.recording).toBe(true);
    expect(compilePolicies({ policies: [masked], identity: runner, resource: ordersDb }).recording).toBe(false);
    expect(compilePolicies({ policies: [], identity: runner, resource: ordersDb }).recording).toBe(true);
  });
});

// ── SQL and HTTP entry points ───────────────────────────────────────────────────────────────────

function fakeClassifier(known: Record<string, SqlAccess[][]>): StatementClassifier {
  return {
    classify(text: string): SqlClassification {
      const statements = known[text];
      if (statements === undefined) throw new GatehouseError('GH_ERR_SQL_UNPARSABLE', { detail: 'syntax error at or near "SELEC"' });
      const described = statements.map((accesses) => ({ text, command: 'SELECT', operation: accesses[0]!.operation, accesses }));
      return { operation: described[0]!.operation, operations: [described[0]!.operation], statements: described };
    },
  };
}

describe('decideSql', () => {
  const set = compilePolicies({
    policies: [policy('p', [{ name: 'reads', effect: 'allow', operations: ['read'] }])],
    identity: runner,
    resource: ordersDb,
  });
  const classifier = fakeClassifier({
    'SELECT 1': [[{ operation: 'read' }]],
    'SELECT 1; DELETE FROM orders': [[{ operation: 'read' }], [{ operation: 'delete', relation: { name: 'orders' }, unbounded: true }]],
  });

  test('classifies and decides, returning the classification', () => {
    const decision = set.decideSql('SELECT 1', classifier);
    expect(summary(decision)).toEqual({ effect: 'allow', reason: 'rule', rule: 'p/reads' });
    expect(decision.classification?.statements).toHaveLength(1);
  });

  test('every statement of a multi-statement string must be covered', () => {
    const decision = set.decideSql('SELECT 1; DELETE FROM orders', classifier);
    expect(summary(decision)).toEqual({ effect: 'deny', reason: 'no-match' });
    expect(decision.message).toBe('no rule allows delete on orders without WHERE for identity ci-runner');
  });

  test('unparsable SQL is denied with the parse error', () => {
    const decision = set.decideSql('SELEC 1', classifier);
    expect(decision).toMatchObject({ effect: 'deny', reason: 'unparsable', matched: [] });
    expect(decision.message).toContain('syntax error at or near "SELEC"');
  });

  test('statements of different shapes, one after another, each get their own decision (the last one is remembered)', () => {
    // Like the real classifier, one classification object per statement shape.
    const classifications = new Map<string, SqlClassification>();
    const caching: StatementClassifier = {
      classify(text) {
        const known = classifications.get(text) ?? classifier.classify(text);
        classifications.set(text, known);
        return known;
      },
    };
    const texts = ['SELECT 1', 'SELECT 1; DELETE FROM orders'] as const;
    const fresh = (text: string) => compilePolicies({ policies: [policy('p', [{ name: 'reads', effect: 'allow', operations: ['read'] }])], identity: runner, resource: ordersDb }).decideSql(text, classifier);
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...texts), { maxLength: 12 }), fc.boolean(), (sequence, useCaching) =>
        sequence.every((text) => {
          const decision = set.decideSql(text, useCaching ? caching : classifier);
          const sameClassification = !useCaching || decision.classification === caching.classify(text);
          return sameClassification && decision.classification?.statements.length === classifier.classify(text).statements.length
            && JSON.stringify(summary(decision)) === JSON.stringify(summary(fresh(text)));
        })),
      { numRuns: 300 },
    );
  });

  test('errors other than unparsable propagate', () => {
    const broken: StatementClassifier = {
      classify() {
        throw new Error('boom');
      },
    };
    expect(() => set.decideSql('SELECT 1', broken)).toThrow('boom');
  });
});

describe('decideHttp', () => {
  const set = compilePolicies({
    policies: [
      policy('api', [
        { name: 'read-invoices', effect: 'allow', operations: ['read'], paths: ['/v1/invoices/**'] },
        { name: 'write-invoices', effect: 'require-approval', operations: ['write'], paths: ['/v1/invoices/*'], approval },
        { name: 'no-admin', effect: 'deny', paths: ['/admin/**'], message: 'admin API is off limits' },
      ]),
    ],
    identity: runner,
    resource: ordersDb,
  });

  test.each([
    ['GET', '/v1/invoices', { effect: 'allow', reason: 'rule', rule: 'api/read-invoices' }],
    ['HEAD', '/v1/invoices/42?expand=lines', { effect: 'allow', reason: 'rule', rule: 'api/read-invoices' }],
    ['get', '/v1/invoices/42', { effect: 'allow', reason: 'rule', rule: 'api/read-invoices' }],
    ['PATCH', '/v1/invoices/42', { effect: 'require-approval', reason: 'rule', rule: 'api/write-invoices' }],
    ['POST', '/v1/invoices/42/lines', { effect: 'deny', reason: 'no-match' }],
    ['DELETE', '/v1/invoices/42', { effect: 'deny', reason: 'no-match' }],
    ['GET', '/v1/customers', { effect: 'deny', reason: 'no-match' }],
    ['GET', '/admin/users', { effect: 'deny', reason: 'rule', rule: 'api/no-admin' }],
    ['GET', '/v1/invoices/../../admin/users', { effect: 'deny', reason: 'rule', rule: 'api/no-admin' }],
    ['GET', '/v1/invoices/%2e%2e/%2E%2E/admin/users', { effect: 'deny', reason: 'rule', rule: 'api/no-admin' }],
    ['GET', '/%61dmin/users', { effect: 'deny', reason: 'rule', rule: 'api/no-admin' }],
    ['GET', '//admin/users', { effect: 'deny', reason: 'rule', rule: 'api/no-admin' }],
    ['GET', 'https://api.example.com/admin/users', { effect: 'deny', reason: 'rule', rule: 'api/no-admin' }],
    ['TRACE', '/v1/invoices', { effect: 'deny', reason: 'unparsable' }],
    ['GET', '*', { effect: 'deny', reason: 'unparsable' }],
  ] as const)('%s %s', (method, path, want) => {
    expect(summary(set.decideHttp(method, path))).toEqual(want);
  });

  test('the decided action carries the normalised path', () => {
    expect(set.decideHttp('GET', '/v1/./invoices/7?x=1').action).toEqual({ operation: 'read', path: '/v1/invoices/7' });
  });
});

// ── order independence ──────────────────────────────────────────────────────────────────────────

describe('order independence', () => {
  const operations: SqlOperation[] = ['read', 'write', 'delete', 'ddl'];
  const tables = ['orders', 'public.orders', 'billing.*', 'cust*'];
  const ruleArb = fc.record(
    {
      effect: fc.constantFrom('allow' as const, 'require-approval' as const, 'deny' as const),
      operations: fc.subarray(operations, { minLength: 1 }),
      tables: fc.subarray(tables, { minLength: 1 }),
      unboundedWrite: fc.boolean(),
    },
    { requiredKeys: ['effect'] },
  );
  const actionArb = fc.record({
    operation: fc.constantFrom(...operations),
    relation: fc.option(fc.constantFrom({ name: 'orders' }, { schema: 'billing', name: 'orders' }, { name: 'customers' }), { nil: undefined }),
    unbounded: fc.boolean(),
  });

  function buildPolicies(rulesPerPolicy: Array<Array<Omit<PolicyRuleT, 'name'>>>): AccessPolicy[] {
    return rulesPerPolicy.map((rules, p) =>
      policy(
        `p${p}`,
        rules.map((rule, r) => ({ ...rule, name: `r${p}-${r}`, ...(rule.effect === 'require-approval' ? { approval } : {}) })),
      ),
    );
  }

  function essence(decision: Decision): unknown {
    return {
      effect: decision.effect,
      reason: decision.reason,
      ruleEffect: decision.rule?.effect,
      matched: decision.matched.map((rule) => rule.id).sort(),
    };
  }

  test('shuffling policies, rules and actions does not change the decision', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(ruleArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 }),
        fc.array(actionArb, { minLength: 1, maxLength: 4 }),
        fc.func(fc.integer()),
        (rulesPerPolicy, rawActions, shuffleKey) => {
          const actions = rawActions.map((action) => ({ ...action, relation: action.relation })) as PolicyAction[];
          const policies = buildPolicies(rulesPerPolicy);
          const shuffle = <T>(items: readonly T[]) =>
            items.map((item, index) => ({ item, key: shuffleKey(index, JSON.stringify(item)) })).sort((a, b) => a.key - b.key).map((entry) => entry.item);
          const shuffled = shuffle(policies).map((one) => ({ ...one, spec: { ...one.spec, rules: shuffle(one.spec.rules) } }));
          expect(essence(decide(shuffled, shuffle(actions)))).toEqual(essence(decide(policies, actions)));
          // With only the policy order shuffled the deciding rule itself is stable too.
          expect(decide(shuffle(policies), actions).rule?.id).toEqual(decide(policies, actions).rule?.id);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('the effect is the maximum over actions of the per-action maximum, no match counting as deny', () => {
    const rank = { allow: 0, 'require-approval': 1, deny: 2 } as const;
    fc.assert(
      fc.property(fc.array(ruleArb, { minLength: 1, maxLength: 6 }), fc.array(actionArb, { minLength: 1, maxLength: 4 }), (rules, actions) => {
        const [one] = buildPolicies([rules]);
        const set = compilePolicies({ policies: [one!], identity: runner, resource: ordersDb });
        const perAction = actions.map((action) => {
          const matching = set.matchingRules(action as PolicyAction);
          return matching.length === 0 ? 2 : Math.max(...matching.map((rule) => rank[rule.effect]));
        });
        expect(rank[set.decide(actions as PolicyAction[]).effect]).toBe(Math.max(...perAction));
      }),
      { numRuns: 300 },
    );
  });
});
