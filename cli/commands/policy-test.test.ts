import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bufferedIO } from '../io.js';
import { runCli } from '../main.js';
import { formatExpected, formatOutcome, formatTable } from './policy-test.js';

const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'api', 'policy', 'testdata', 'payments');

async function run(...args: string[]) {
  const io = bufferedIO();
  const code = await runCli(['policy', 'test', ...args], io);
  return { code, out: io.out(), err: io.err() };
}

/** A copy of the fixture folder with extra files, removed after the test. */
let scratch: string | undefined;
async function fixtureWith(files: Record<string, string>, { withoutTests = false } = {}): Promise<string> {
  scratch = await mkdtemp(join(tmpdir(), 'gatehouse-policy-test-'));
  await cp(FIXTURE_DIR, scratch, { recursive: true });
  if (withoutTests) await rm(join(scratch, 'tests.yaml'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(scratch, name), text);
  return scratch;
}

afterEach(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
  scratch = undefined;
});

const failingTest = `apiVersion: cli.gatehouse.dev/v1alpha1
kind: PolicyTest
metadata: {name: wrong-expectations, namespace: payments}
spec:
  cases:
    - name: ci truncates
      identity: ci-runner
      resource: orders-db
      statement: TRUNCATE orders
      expect: {decision: allow, rule: ci-read-only/read-anything}
    - name: ci reads
      identity: ci-runner
      resource: orders-db
      statement: SELECT 1
      expect: {decision: allow}
`;

describe('gatehouse policy test', () => {
  test('passing tests print a table and a summary, exit 0', async () => {
    const { code, out, err } = await run(FIXTURE_DIR);
    expect(err).toBe('');
    expect(code).toBe(0);
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^RESULT\s+TEST\s+CASE\s+EXPECTED\s+GOT$/);
    expect(out).toMatch(/PASS\s+ci-runner-is-read-only\s+reads orders\s+allow ci-read-only\/read-anything \(read\)\s+allow ci-read-only\/read-anything \(read\)/);
    expect(out).toMatch(/PASS\s+ci-runner-is-read-only\s+writes match no rule\s+deny \(write\)\s+deny no-match \(write\)/);
    expect(out).toMatch(/PASS\s+ci-runner-is-read-only\s+garbage is denied\s+deny\s+deny unparsable/);
    expect(out).toMatch(/an identity without a policy is denied\s+deny\s+deny no-policy \(read\)/);
    expect(out).not.toContain('FAIL');
    expect(out.trimEnd().split('\n').at(-1)).toBe('10 passed, 0 failed');
  });

  test('--json prints the report', async () => {
    const { code, out } = await run(FIXTURE_DIR, '--json');
    expect(code).toBe(0);
    const report = JSON.parse(out) as { passed: number; failed: number; problems: unknown[]; results: Array<Record<string, unknown>> };
    expect(report).toMatchObject({ passed: 10, failed: 0, problems: [] });
    expect(report.results[0]).toMatchObject({
      test: 'ci-runner-is-read-only',
      namespace: 'payments',
      case: 'reads orders',
      identity: 'ci-runner',
      resource: 'orders-db',
      input: { statement: 'SELECT id, total FROM orders' },
      expected: { decision: 'allow', rule: 'ci-read-only/read-anything', operation: 'read' },
      got: { decision: 'allow', reason: 'rule', rule: 'ci-read-only/read-anything', operation: 'read' },
      pass: true,
      file: 'tests.yaml',
    });
  });

  test('a mismatch shows expected and got, where the case is, and exits 1', async () => {
    const dir = await fixtureWith({ 'wrong.yaml': failingTest });
    const { code, out } = await run(dir);
    expect(code).toBe(1);
    expect(out).toMatch(/FAIL\s+wrong-expectations\s+ci truncates\s+allow ci-read-only\/read-anything\s+deny ci-read-only\/no-ddl \(truncate\)/);
    expect(out).toContain('      at wrong.yaml:6  ci-runner → orders-db: TRUNCATE orders');
    expect(out).toContain('      got deny ci-read-only/no-ddl (truncate): schema changes go through migrations');
    expect(out).toMatch(/PASS\s+wrong-expectations\s+ci reads/);
    expect(out.trimEnd().split('\n').at(-1)).toBe('11 passed, 1 failed');
  });

  test('an invalid test is reported with file and line, and exits 1', async () => {
    const invalid = failingTest.replace('identity: ci-runner\n      resource: orders-db\n      statement: TRUNCATE', 'identity: nobody\n      resource: orders-db\n      statement: TRUNCATE');
    const dir = await fixtureWith({ 'wrong.yaml': invalid }, { withoutTests: true });
    const { code, out, err } = await run(dir);
    expect(code).toBe(1);
    expect(err).toContain('wrong.yaml:7  PolicyTest/payments/wrong-expectations  spec.cases[0].identity  Policy test names NonHumanIdentity payments/nobody');
    expect(out.trimEnd().split('\n').at(-1)).toBe('1 passed, 0 failed; 1 problem(s) in policy tests');
  });

  test('config problems stop before any test runs', async () => {
    const broken = 'apiVersion: gatehouse.dev/v1alpha1\nkind: AccessPolicy\nmetadata: {name: broken, namespace: payments}\nspec:\n  subjects: [{identity: ci-runner}]\n  resources: [orders-db]\n  rules: [{effect: maybe}]\n';
    const dir = await fixtureWith({ 'broken.yaml': broken });
    const { code, out, err } = await run(dir);
    expect(code).toBe(1);
    expect(out).toBe('');
    expect(err).toMatch(/^broken\.yaml:7  AccessPolicy\/payments\/broken  spec\.rules\[0\]\.effect  .*\[GH_ERR_MANIFEST_SCHEMA\]$/m);
    expect(err).toContain('problem(s) in the config folder');
  });

  test('config problems with --json print them as JSON', async () => {
    const dir = await fixtureWith({ 'broken.yaml': 'apiVersion: gatehouse.dev/v1alpha1\nkind: AccessPolicy\nmetadata: {name: broken}\nspec: {}\n' });
    const { code, out } = await run(dir, '--json');
    expect(code).toBe(1);
    expect((JSON.parse(out) as { problems: unknown[] }).problems.length).toBeGreaterThan(0);
  });

  test('a folder without policy tests is an error', async () => {
    const dir = await fixtureWith({}, { withoutTests: true });
    const { code, err } = await run(dir);
    expect(code).toBe(1);
    expect(err).toContain('GH_ERR_POLICY_TEST_NONE');
  });

  test('a missing folder is an error, a missing argument a usage error', async () => {
    expect((await run('/nonexistent/gatehouse')).err).toContain('GH_ERR_CONFIG_DIR_NOT_FOUND');
    const usage = await run();
    expect(usage.code).toBe(2);
    expect(usage.err).toContain('GH_ERR_USAGE');
  });
});

describe('policy test formatting', () => {
  test('expected and got', () => {
    expect(formatExpected({ decision: 'deny' })).toBe('deny');
    expect(formatExpected({ decision: 'allow', rule: 'p/r', operation: 'read' })).toBe('allow p/r (read)');
    expect(formatOutcome({ decision: 'deny', reason: 'no-match', operation: 'delete', message: '' })).toBe('deny no-match (delete)');
    expect(formatOutcome({ decision: 'require-approval', reason: 'rule', rule: 'p/hold', message: '' })).toBe('require-approval p/hold');
  });

  test('table columns line up and the last one is not padded', () => {
    expect(formatTable([['A', 'BB', 'C'], ['AAA', 'B', 'CCC']])).toEqual(['A    BB  C', 'AAA  B   CCC']);
  });
});
