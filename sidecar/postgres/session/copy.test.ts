// COPY through the sidecar with psql against a real PostgreSQL 15: FROM STDIN judged by write
// rules, TO STDOUT by read rules, COPY out of tables with masked columns refused (its output has
// no column names to mask by), detector masking of COPY text and CSV data, binary COPY withheld.
import { encodeQuery } from '../protocol/frontend-encoders.js';
import { RawClient, firstError } from '../testing/raw-client.js';
import { metricSum, startSidecarFixture, type SidecarFixture } from '../testing/sidecar-fixture.js';

const RULES = `  rules:
    - {name: app-access, effect: allow, operations: [read, write, call, transaction, session]}
    - {name: no-order-export, effect: deny, operations: [read], tables: [order_exports], message: "exports go through the reporting service"}
  masking:
    - {columns: ["customers.card_number"], strategy: redact}
    - {detectors: [credit-card], strategy: partial}
`;

const READ_ONLY = `  rules:
    - {name: read-only, effect: allow, operations: [read, session, transaction]}
`;

const BARE_COLUMN = `  rules:
    - {name: app-access, effect: allow, operations: [read, write, call, transaction, session]}
  masking:
    - {columns: ["card_number"], strategy: redact}
`;

let f: SidecarFixture;

beforeAll(async () => {
  f = await startSidecarFixture({ policyRules: RULES });
  await f.adminPsql(`
    CREATE TABLE payment_notes (id int PRIMARY KEY, note text);
    INSERT INTO payment_notes VALUES (1, 'refund to 4111 1111 1111 1111 approved'), (2, 'no card here');
    CREATE TABLE order_exports (id int);
    CREATE FUNCTION customer_cards() RETURNS TABLE (card_number text) LANGUAGE sql AS 'SELECT card_number FROM customers';
    GRANT ALL ON payment_notes, order_exports TO app_owner;
    GRANT EXECUTE ON FUNCTION customer_cards() TO app_owner;
  `);
});

afterAll(async () => {
  await f?.stop();
});

afterEach(async () => {
  await f.reload(RULES);
});

describe('COPY FROM STDIN', () => {
  it('copies rows in when write is allowed', async () => {
    const result = await f.psql('COPY orders (customer_id, total) FROM STDIN', { input: '1\t9001.00\n2\t9002.00\n\\.\n' });
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(await f.adminPsql('SELECT count(*) FROM orders WHERE total IN (9001, 9002)')).toBe('2');
  });

  it('denies it when write is not allowed: no row arrives and the connection stays usable', async () => {
    await f.reload(READ_ONLY);
    const client = await RawClient.started(f.port);
    client.send(encodeQuery('COPY orders (customer_id, total) FROM STDIN'));
    const answer = await client.untilReady();
    expect(answer.some((m) => m.kind === 'CopyInResponse')).toBe(false);
    expect(firstError(answer)?.get('C')).toBe('42501');
    expect(firstError(answer)?.get('M')).toMatch(/no rule allows write on orders/);
    client.send(encodeQuery('SELECT 1'));
    expect(firstError(await client.untilReady())).toBeUndefined();
    client.destroy();
    const viaPsql = await f.psql('COPY orders (customer_id, total) FROM STDIN', { input: '1\t9003.00\n\\.\n' });
    expect(viaPsql.stderr).toMatch(/gatehouse: no rule allows write on orders/);
    expect(await f.adminPsql('SELECT count(*) FROM orders WHERE total = 9003')).toBe('0');
  });
});

describe('COPY TO STDOUT', () => {
  it('copies out what read rules allow', async () => {
    const result = await f.psql('COPY (SELECT id, total FROM orders WHERE id <= 3 ORDER BY id) TO STDOUT');
    expect(result.stdout.split('\n')).toEqual(['1\t1.50', '2\t3.00', '3\t4.50']);
  });

  it('denies what a deny rule names, with its message', async () => {
    const result = await f.psql('COPY order_exports TO STDOUT');
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('ERROR:  gatehouse: exports go through the reporting service');
    expect(result.stderr).toContain('rule app-policy/no-order-export (deny)');
  });

  it('denies a COPY out of a table with a column-masking rule with a message that says why', async () => {
    const before = await metricSum(f.metrics.blocked, { rule: 'masking/copy-out' });
    for (const sql of ['COPY customers TO STDOUT', 'COPY (SELECT c.card_number FROM customers c) TO STDOUT WITH (FORMAT csv)']) {
      const result = await f.psql(sql);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('COPY ... TO STDOUT is not allowed on tables with masked columns');
      expect(result.stderr).toContain('Denied by Gatehouse policy: masking/copy-out.');
      expect(result.stdout).toBe('');
    }
    expect(await metricSum(f.metrics.blocked, { rule: 'masking/copy-out' })).toBe(before + 2);
  });

  it('denies any COPY out, even one naming no table, when a rule masks a bare column name', async () => {
    await f.reload(BARE_COLUMN);
    const select = await f.psql('SELECT card_number FROM customer_cards() WHERE card_number IS NOT NULL');
    expect(select.stdout.split('\n')).toEqual(['[REDACTED]', '[REDACTED]']);
    const copy = await f.psql('COPY (SELECT * FROM customer_cards()) TO STDOUT');
    expect(copy.stderr).toContain('COPY ... TO STDOUT is not allowed on tables with masked columns');
    expect(copy.stdout).not.toMatch(/4111|5500/);
  });

  it('withholds COPY output of a DML statement on a table with masked columns (a write COPY that is not FROM STDIN)', async () => {
    const client = await RawClient.started(f.port);
    // Returning a masked column: refused before it runs (write-through: COPY output has no column names).
    client.send(encodeQuery('COPY (UPDATE customers SET name = name WHERE id > 0 RETURNING card_number) TO STDOUT'));
    const refused = await client.untilReady();
    expect(firstError(refused)?.get('C')).toBe('42501');
    expect(firstError(refused)?.get('M')).toMatch(/masked customers\.card_number \(redact\) would be passed to COPY output/);
    // Returning none: it runs, and its output is withheld all the same (only the server's answer shows it is COPY out).
    client.send(encodeQuery('COPY (UPDATE customers SET name = name WHERE id > 0 RETURNING id) TO STDOUT'));
    const withheld = await client.untilReady();
    expect(firstError(withheld)?.get('C')).toBe('42501');
    expect(firstError(withheld)?.get('M')).toMatch(/COPY ... TO STDOUT is not allowed on tables with masked columns/);
    expect(client.received.includes('4111 1111 1111 1111')).toBe(false);
    expect(client.received.includes('5500-0000-0000-0004')).toBe(false);
    client.destroy();
    // COPY FROM STDIN into the same table is a write COPY too, and still works.
    const load = await f.psql('COPY customers (name, email, card_number) FROM STDIN', { input: 'Copy Loaded\tcl@example.com\t4000 0000 0000 0002\n\\.\n' });
    expect(load).toMatchObject({ code: 0, stderr: '' });
    expect(await f.adminPsql("SELECT card_number FROM customers WHERE name = 'Copy Loaded'")).toBe('4000 0000 0000 0002');
  });

  it('applies detector masking to COPY text and CSV data', async () => {
    const text = await f.psql('COPY payment_notes TO STDOUT');
    expect(text.stdout.split('\n')).toEqual(['1\trefund to **** **** **** 1111 approved', '2\tno card here']);
    const csv = await f.psql('COPY (SELECT id, note FROM payment_notes ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)');
    expect(csv.stdout.split('\n')).toEqual(['id,note', '1,refund to **** **** **** 1111 approved', '2,no card here']);
  });

  it('withholds binary COPY output that detectors would have to scan, with an error', async () => {
    const client = await RawClient.started(f.port);
    client.send(encodeQuery('COPY payment_notes TO STDOUT WITH (FORMAT binary)'));
    const answer = await client.untilReady();
    expect(firstError(answer)?.get('M')).toMatch(/binary COPY output cannot be masked/);
    expect(client.received.includes('4111 1111 1111 1111')).toBe(false);
    client.send(encodeQuery('SELECT 1'));
    expect(firstError(await client.untilReady())).toBeUndefined();
    client.destroy();
  });
});
