import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bufferedIO } from '../io.js';
import { runCli } from '../main.js';
import type { Explanation } from './explain.js';

const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'api', 'policy', 'testdata', 'payments');

async function explain(...args: string[]) {
  const io = bufferedIO();
  const code = await runCli(['explain', '--config', FIXTURE_DIR, ...args], io);
  return { code, out: io.out(), err: io.err() };
}

let scratch: string | undefined;
afterEach(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
  scratch = undefined;
});

async function fixtureWith(files: Record<string, string>): Promise<string> {
  scratch = await mkdtemp(join(tmpdir(), 'gatehouse-explain-'));
  await cp(FIXTURE_DIR, scratch, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(scratch, name), text);
  return scratch;
}

describe('gatehouse explain (SQL)', () => {
  test('an allowed read: classification, policies, matched rules and decision', async () => {
    const { code, out, err } = await explain('--identity', 'ci-runner', '--resource', 'orders-db', 'SELECT id, total FROM orders');
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toContain('identity  payments/ci-runner (groups: ci)');
    expect(out).toContain('resource  payments/orders-db (postgres)');
    expect(out).toContain('policies  ci-deletes, ci-read-only');
    expect(out).toContain('statement 1  SELECT → read\n  SELECT id, total FROM orders\n  read on orders  allow ci-read-only/read-anything');
    expect(out).toMatch(/matched rules\n {2}allow\s+ci-read-only\/read-anything\n/);
    expect(out).toContain('decision  ALLOW by ci-read-only/read-anything\n  rule ci-read-only/read-anything allows read on orders for identity ci-runner');
  });

  test('a delete inside a CTE shows both actions and needs approval', async () => {
    const sql = 'WITH gone AS (DELETE FROM orders WHERE id = 1 RETURNING id) SELECT * FROM gone';
    const { code, out } = await explain('--identity', 'ci-runner', '--resource', 'orders-db', '--namespace', 'payments', sql);
    expect(code).toBe(0);
    expect(out).toMatch(/statement 1 {2}SELECT → delete/);
    expect(out).toMatch(/delete on orders\s+require-approval ci-deletes\/hold-deletes/);
    expect(out).toContain('decision  REQUIRE-APPROVAL by ci-deletes/hold-deletes');
    expect(out).toContain('  approvers: group dba; 1 approval(s), timeout 5m');
  });

  test('several statements and an unmatched action', async () => {
    const { out } = await explain('--identity', 'ci-runner', '--resource', 'orders-db', 'SELECT 1; UPDATE orders SET total = 0 WHERE id = 1');
    expect(out).toContain('statement 2  UPDATE → write');
    expect(out).toMatch(/write on orders\s+\(no rule matches\)/);
    expect(out).toContain('decision  DENY (no-match)\n  no rule allows write on orders for identity ci-runner');
  });

  test('unparsable SQL is explained as a deny', async () => {
    const { code, out } = await explain('--identity', 'ci-runner', '--resource', 'orders-db', 'SELEC 1');
    expect(code).toBe(0);
    expect(out).toContain('input could not be classified');
    expect(out).toContain('matched rules  none');
    expect(out).toMatch(/decision {2}DENY \(unparsable\)\n {2}Statement could not be parsed/);
  });

  test('an identity no policy covers', async () => {
    const { code, out } = await explain('--identity', 'stranger', '--resource', 'orders-db', 'SELECT 1');
    expect(code).toBe(0);
    expect(out).toContain('policies  none');
    expect(out).toContain('decision  DENY (no-policy)');
  });

  test('--json gives the whole explanation', async () => {
    const { code, out } = await explain('--identity', 'ci-runner', '--resource', 'orders-db', '--json', 'DELETE FROM orders');
    expect(code).toBe(0);
    const explanation = JSON.parse(out) as Explanation;
    expect(explanation).toMatchObject({
      namespace: 'payments',
      identity: { name: 'ci-runner', groups: ['ci'] },
      resource: { name: 'orders-db', protocol: 'postgres' },
      input: { statement: 'DELETE FROM orders' },
      policies: ['ci-deletes', 'ci-read-only'],
      decision: { effect: 'deny', reason: 'rule', rule: { id: 'ci-deletes/no-unbounded' }, message: 'add a WHERE clause' },
    });
    expect(explanation.statements[0]).toMatchObject({ command: 'DELETE', operation: 'delete' });
    expect(explanation.statements[0]!.actions[0]).toMatchObject({
      action: { operation: 'delete', relation: { name: 'orders' }, unbounded: true },
      rules: [{ id: 'ci-deletes/no-unbounded' }, { id: 'ci-deletes/hold-deletes' }],
    });
    expect(explanation.decision.matched.map((rule) => rule.id)).toEqual(['ci-deletes/hold-deletes', 'ci-deletes/no-unbounded']);
  });
});

describe('gatehouse explain (result columns and masking)', () => {
  const SAMPLES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'config', 'samples');
  const run = async (...args: string[]) => {
    const io = bufferedIO();
    const code = await runCli(['explain', '--config', SAMPLES, '--identity', 'ci-runner', '--resource', 'orders-db', ...args], io);
    return { code, out: io.out(), err: io.err() };
  };

  test('shows what each result column is computed from and which column rule masks it', async () => {
    const sql = "SELECT id, upper(email) AS e, count(*) OVER () FROM customers UNION ALL SELECT 1, substr(card_number, 1, 6), 2 FROM customers";
    const { code, out, err } = await run(sql);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toContain('  result column 1  from customers.id\n');
    expect(out).toContain('  result column 2  from customers.email, customers.card_number → masked (redact)\n');
    expect(out).toContain('  result column 3  no column\n');
    expect(out).toContain('detectors  credit-card (redact), email (redact) scan every result value');
    const json = JSON.parse((await run('--json', sql)).out) as Explanation;
    expect(json.statements[0]!.results).toEqual({
      known: true,
      columns: [
        { star: false, from: ['customers.id'] },
        { star: false, from: ['customers.email', 'customers.card_number'], masking: 'redact' },
        { star: false, from: [] },
      ],
    });
  });

  test('says so when a result cannot be traced, and shows none for statements without rows', async () => {
    expect((await run('FETCH ALL FROM c')).out).toContain('result columns  unknown here (FETCH, EXECUTE): each computed column counts as any column → masked (redact)');
    expect((await run("SELECT * FROM customers")).out).toContain('result columns *  table columns, masked by their own names');
    expect((await run("UPDATE customers SET notes = 'x' WHERE id = 1")).out).not.toContain('result column');
  });
});

describe('gatehouse explain (HTTP)', () => {
  test('--request on an http resource', async () => {
    const { code, out } = await explain('--identity', 'billing-bot', '--resource', 'invoices-api', '--request', 'GET /v1/invoices/7');
    expect(code).toBe(0);
    expect(out).toContain('statement 1  GET → read\n  GET /v1/invoices/7\n  read on /v1/invoices/7  allow invoices-readers/read-invoices');
    expect(out).toContain('decision  ALLOW by invoices-readers/read-invoices');
  });

  test('a path that climbs out is matched where it lands', async () => {
    const { out } = await explain('--identity', 'billing-bot', '--resource', 'invoices-api', '--request', 'get /v1/../admin/x');
    expect(out).toContain('read on /admin/x');
    expect(out).toContain('decision  DENY by invoices-readers/no-admin');
  });

  test('an unknown method is denied', async () => {
    const { code, out } = await explain('--identity', 'billing-bot', '--resource', 'invoices-api', '--request', 'TRACE /v1/invoices');
    expect(code).toBe(0);
    expect(out).toContain('decision  DENY (unparsable)');
  });
});

describe('gatehouse explain errors', () => {
  test.each([
    [['--identity', 'nobody', '--resource', 'orders-db', 'SELECT 1'], 1, 'GH_ERR_REF_UNKNOWN_IDENTITY'],
    [['--identity', 'ci-runner', '--namespace', 'default', '--resource', 'orders-db', 'SELECT 1'], 1, 'GH_ERR_REF_UNKNOWN_IDENTITY'],
    [['--identity', 'ci-runner', '--resource', 'nowhere', 'SELECT 1'], 1, 'GH_ERR_REF_UNKNOWN_RESOURCE'],
    [['--identity', 'billing-bot', '--resource', 'invoices-api', 'SELECT 1'], 2, 'speaks http, not SQL'],
    [['--identity', 'ci-runner', '--resource', 'orders-db', '--request', 'GET /'], 2, 'speaks postgres, not HTTP'],
    [['--identity', 'ci-runner', '--resource', 'orders-db', '--request', 'GET /', 'SELECT 1'], 2, 'not both'],
    [['--identity', 'ci-runner', '--resource', 'orders-db'], 2, 'pass a SQL statement or --request'],
    [['--identity', 'billing-bot', '--resource', 'invoices-api', '--request', '/v1/invoices'], 2, '"METHOD /path"'],
    [['--resource', 'orders-db', 'SELECT 1'], 2, 'explain needs --config, --identity and --resource'],
  ])('%j exits %i with %s', async (args, wantCode, wantText) => {
    const { code, out, err } = await explain(...args);
    expect(code).toBe(wantCode);
    expect(out).toBe('');
    expect(err).toContain(wantText);
  });

  test('an identity name in two namespaces needs --namespace', async () => {
    const twin = 'apiVersion: gatehouse.dev/v1alpha1\nkind: NonHumanIdentity\nmetadata: {name: ci-runner, namespace: staging}\nspec: {serviceAccountName: ci-runner}\n';
    const dir = await fixtureWith({ 'twin.yaml': twin });
    const io = bufferedIO();
    const code = await runCli(['explain', '--config', dir, '--identity', 'ci-runner', '--resource', 'orders-db', 'SELECT 1'], io);
    expect(code).toBe(1);
    expect(io.err()).toContain('GH_ERR_NAMESPACE_AMBIGUOUS: NonHumanIdentity ci-runner exists in namespaces payments, staging; pass --namespace');
    const picked = bufferedIO();
    expect(await runCli(['explain', '--config', dir, '--identity', 'ci-runner', '--namespace', 'payments', '--resource', 'orders-db', 'SELECT 1'], picked)).toBe(0);
  });

  test('config problems stop it', async () => {
    const dir = await fixtureWith({ 'broken.yaml': 'apiVersion: gatehouse.dev/v1alpha1\nkind: AccessPolicy\nmetadata: {name: broken}\nspec: {}\n' });
    const io = bufferedIO();
    const code = await runCli(['explain', '--config', dir, '--identity', 'ci-runner', '--resource', 'orders-db', 'SELECT 1'], io);
    expect(code).toBe(1);
    expect(io.out()).toBe('');
    expect(io.err()).toContain('GH_ERR_MANIFEST_SCHEMA');
  });
});
