import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigFromTexts, type GatehouseConfig, type ManifestText } from '../manifests/config.js';
import { loadSqlParser, SqlClassifier } from '../sql/classify.js';
import { describeInput, outcomeMatches, readPolicyTests, runPolicyTests } from './policy-test.js';

const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'testdata', 'payments');

function fixtureTexts(): ManifestText[] {
  return readdirSync(FIXTURE_DIR)
    .filter((file) => file.endsWith('.yaml'))
    .sort()
    .map((file) => ({ file, text: readFileSync(join(FIXTURE_DIR, file), 'utf8') }));
}

/** The fixture's identities, resources and policies, with `tests` as the only policy tests. */
function configWithTests(tests: string): GatehouseConfig {
  const base = fixtureTexts().filter((text) => text.file !== 'tests.yaml');
  const config = loadConfigFromTexts([...base, { file: 'extra-tests.yaml', text: tests }]);
  expect(config.problems).toEqual([]);
  return config;
}

function testDocument(cases: string): string {
  return ['apiVersion: cli.gatehouse.dev/v1alpha1', 'kind: PolicyTest', 'metadata: {name: t, namespace: payments}', 'spec:', '  cases:', cases].join('\n');
}

let classifier: SqlClassifier;
beforeAll(async () => {
  await loadSqlParser();
  classifier = new SqlClassifier({});
});

describe('readPolicyTests validation', () => {
  const valid = `    - name: reads
      identity: ci-runner
      resource: orders-db
      statement: SELECT 1
      expect: {decision: allow}`;

  test('a valid case reads into a runnable case with its file and line', () => {
    const { cases, problems } = readPolicyTests(configWithTests(testDocument(valid)));
    expect(problems).toEqual([]);
    expect(cases).toEqual([
      {
        test: 't',
        namespace: 'payments',
        name: 'reads',
        identity: 'ci-runner',
        resource: 'orders-db',
        input: { statement: 'SELECT 1' },
        expect: { decision: 'allow' },
        file: 'extra-tests.yaml',
        line: 6,
      },
    ]);
  });

  const invalid: Array<{ name: string; cases: string; code: string; path: string; line: number; contains: string }> = [
    {
      name: 'missing identity',
      cases: `    - name: x
      resource: orders-db
      statement: SELECT 1
      expect: {decision: allow}`,
      code: 'GH_ERR_POLICY_TEST_FILE',
      path: 'spec.cases[0].identity',
      line: 6,
      contains: '`identity` is required',
    },
    {
      name: 'unknown identity',
      cases: `    - name: x
      identity: nobody
      resource: orders-db
      statement: SELECT 1
      expect: {decision: allow}`,
      code: 'GH_ERR_POLICY_TEST_REF',
      path: 'spec.cases[0].identity',
      line: 7,
      contains: 'NonHumanIdentity payments/nobody',
    },
    {
      name: 'unknown resource',
      cases: `    - name: x
      identity: ci-runner
      resource: nowhere-db
      statement: SELECT 1
      expect: {decision: allow}`,
      code: 'GH_ERR_POLICY_TEST_REF',
      path: 'spec.cases[0].resource',
      line: 8,
      contains: 'ProtectedResource payments/nowhere-db',
    },
    {
      name: 'both statement and request',
      cases: `    - name: x
      identity: ci-runner
      resource: orders-db
      statement: SELECT 1
      request: {method: GET, path: /}
      expect: {decision: allow}`,
      code: 'GH_ERR_POLICY_TEST_FILE',
      path: 'spec.cases[0]',
      line: 6,
      contains: 'not both',
    },
    {
      name: 'neither statement nor request',
      cases: `    - name: x
      identity: ci-runner
      resource: orders-db
      expect: {decision: allow}`,
      code: 'GH_ERR_POLICY_TEST_FILE',
      path: 'spec.cases[0]',
      line: 6,
      contains: 'set `statement`',
    },
    {
      name: 'bad decision value',
      cases: `    - name: x
      identity: ci-runner
      resource: orders-db
      statement: SELECT 1
      expect: {decision: permit}`,
      code: 'GH_ERR_POLICY_TEST_FILE',
      path: 'spec.cases[0].expect.decision',
      line: 10,
      contains: 'must be one of allow, require-approval, deny',
    },
    {
      name: 'missing expect',
      cases: `    - name: x
      identity: ci-runner
      resource: orders-db
      statement: SELECT 1`,
      code: 'GH_ERR_POLICY_TEST_FILE',
      path: 'spec.cases[0].expect',
      line: 6,
      contains: '`expect` is required',
    },
    {
      name: 'misspelled field',
      cases: `    - name: x
      identity: ci-runner
      resource: orders-db
      statement: SELECT 1
      expect: {decision: allow}
      expected: {decision: deny}`,
      code: 'GH_ERR_POLICY_TEST_FILE',
      path: 'spec.cases[0].expected',
      line: 11,
      contains: 'unknown field `expected`',
    },
    {
      name: 'bad operation',
      cases: `    - name: x
      identity: ci-runner
      resource: orders-db
      statement: SELECT 1
      expect: {decision: allow, operation: select}`,
      code: 'GH_ERR_POLICY_TEST_FILE',
      path: 'spec.cases[0].expect.operation',
      line: 10,
      contains: 'must be one of session',
    },
    {
      name: 'rule that does not exist',
      cases: `    - name: x
      identity: ci-runner
      resource: orders-db
      statement: SELECT 1
      expect: {decision: allow, rule: ci-read-only/read-everything}`,
      code: 'GH_ERR_POLICY_TEST_REF',
      path: 'spec.cases[0].expect.rule',
      line: 10,
      contains: 'rule ci-read-only/read-everything',
    },
    {
      name: 'statement for an http resource',
      cases: `    - name: x
      identity: billing-bot
      resource: invoices-api
      statement: SELECT 1
      expect: {decision: deny}`,
      code: 'GH_ERR_POLICY_TEST_FILE',
      path: 'spec.cases[0].statement',
      line: 9,
      contains: 'speaks http, not SQL',
    },
    {
      name: 'request path without a slash',
      cases: `    - name: x
      identity: billing-bot
      resource: invoices-api
      request: {method: GET, path: v1/invoices}
      expect: {decision: deny}`,
      code: 'GH_ERR_POLICY_TEST_FILE',
      path: 'spec.cases[0].request.path',
      line: 9,
      contains: 'must start with /',
    },
  ];

  test.each(invalid)('$name', ({ cases, code, path, line, contains }) => {
    const result = readPolicyTests(configWithTests(testDocument(cases)));
    expect(result.cases).toEqual([]);
    expect(result.problems).toHaveLength(1);
    const [problem] = result.problems;
    expect(problem).toMatchObject({ code, path, line, file: 'extra-tests.yaml', kind: 'PolicyTest', name: 't', namespace: 'payments' });
    expect(problem!.message).toContain(contains);
  });

  test('an invalid case does not stop the valid ones', () => {
    const cases = `${valid}\n    - name: broken\n      identity: ci-runner\n      resource: orders-db\n      statement: SELECT 1\n      expect: {}`;
    const result = readPolicyTests(configWithTests(testDocument(cases)));
    expect(result.cases.map((one) => one.name)).toEqual(['reads']);
    expect(result.problems.map((problem) => problem.path)).toEqual(['spec.cases[1].expect.decision']);
  });

  test('duplicate case names are reported', () => {
    const result = readPolicyTests(configWithTests(testDocument(`${valid}\n${valid}`)));
    expect(result.problems.map((problem) => problem.path)).toEqual(['spec.cases[1].name']);
  });

  test('a document without cases is reported', () => {
    const text = 'apiVersion: cli.gatehouse.dev/v1alpha1\nkind: PolicyTest\nmetadata: {name: empty}\nspec: {cases: []}\n';
    const result = readPolicyTests(configWithTests(text));
    expect(result.problems).toMatchObject([{ code: 'GH_ERR_POLICY_TEST_FILE', path: 'spec.cases', namespace: 'default' }]);
  });

  test('the test namespace decides where identities are looked up (default when absent)', () => {
    const text = testDocument(valid).replace('namespace: payments', 'namespace: default');
    const result = readPolicyTests(configWithTests(text));
    expect(result.problems.map((problem) => problem.code)).toEqual(['GH_ERR_POLICY_TEST_REF', 'GH_ERR_POLICY_TEST_REF']);
  });
});

describe('runPolicyTests', () => {
  test('every case of the fixture passes', () => {
    const report = runPolicyTests(loadConfigFromTexts(fixtureTexts()), classifier);
    expect(report.problems).toEqual([]);
    expect(report.results.filter((result) => !result.pass)).toEqual([]);
    expect(report).toMatchObject({ passed: 10, failed: 0 });
  });

  test('a mismatch reports what was expected and what came out', () => {
    const config = configWithTests(
      testDocument(`    - name: wrong
      identity: ci-runner
      resource: orders-db
      statement: TRUNCATE orders
      expect: {decision: allow, rule: ci-read-only/read-anything}`),
    );
    const report = runPolicyTests(config, classifier);
    expect(report).toMatchObject({ passed: 0, failed: 1 });
    expect(report.results[0]).toMatchObject({
      test: 't',
      case: 'wrong',
      identity: 'ci-runner',
      resource: 'orders-db',
      input: { statement: 'TRUNCATE orders' },
      expected: { decision: 'allow', rule: 'ci-read-only/read-anything' },
      got: { decision: 'deny', reason: 'rule', rule: 'ci-read-only/no-ddl', operation: 'truncate', message: 'schema changes go through migrations' },
      pass: false,
      file: 'extra-tests.yaml',
      line: 6,
    });
  });

  test('a policy whose glob does not compile makes its cases invalid, not failed', () => {
    const base = fixtureTexts().filter((text) => text.file !== 'tests.yaml');
    const badPolicy = `apiVersion: gatehouse.dev/v1alpha1
kind: AccessPolicy
metadata: {name: bad-glob, namespace: payments}
spec:
  subjects: [{identity: ci-runner}]
  resources: [orders-db]
  rules: [{effect: allow, tables: [a.b.c]}]`;
    const config = loadConfigFromTexts([
      ...base,
      { file: 'bad.yaml', text: badPolicy },
      { file: 't.yaml', text: testDocument(`    - name: x\n      identity: ci-runner\n      resource: orders-db\n      statement: SELECT 1\n      expect: {decision: allow}`) },
    ]);
    const report = runPolicyTests(config, classifier);
    expect(report.results).toEqual([]);
    expect(report.problems).toMatchObject([{ code: 'GH_ERR_BAD_GLOB', file: 't.yaml', line: 6 }]);
  });
});

describe('helpers', () => {
  test('describeInput prints a statement or METHOD PATH', () => {
    expect(describeInput({ statement: 'SELECT 1' })).toBe('SELECT 1');
    expect(describeInput({ request: { method: 'GET', path: '/v1' } })).toBe('GET /v1');
  });

  test.each([
    [{ decision: 'allow' }, { decision: 'allow', reason: 'rule', rule: 'p/r', message: '' }, true],
    [{ decision: 'allow', rule: 'p/r' }, { decision: 'allow', reason: 'rule', rule: 'p/r', message: '' }, true],
    [{ decision: 'allow', rule: 'p/x' }, { decision: 'allow', reason: 'rule', rule: 'p/r', message: '' }, false],
    [{ decision: 'deny', rule: 'p/x' }, { decision: 'deny', reason: 'no-match', message: '' }, false],
    [{ decision: 'deny', operation: 'read' }, { decision: 'deny', reason: 'no-match', operation: 'read', message: '' }, true],
    [{ decision: 'deny', operation: 'write' }, { decision: 'deny', reason: 'unparsable', message: '' }, false],
  ] as const)('outcomeMatches(%j, %j) is %s', (expected, got, want) => {
    expect(outcomeMatches(expected, got)).toBe(want);
  });
});
