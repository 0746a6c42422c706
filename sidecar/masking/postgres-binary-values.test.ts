// Checks the binary decoders and the masked text formats against a real PostgreSQL server: what
// PostgreSQL sends decodes to what it prints, and what masking writes PostgreSQL parses back.
import { startPostgres, type PostgresServer } from '../../testing/postgres-server.js';
import { createMasker } from './masker.js';
import { decodeBinaryNumber, decodeNumeric, someBinaryArrayElement } from './postgres-binary-values.js';
import { PG_TYPE } from './postgres-value-classes.js';

let server: PostgresServer;

beforeAll(async () => {
  server = await startPostgres();
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

/** Rows of `hex|text` from PostgreSQL. */
async function sendAndPrint(sendFunction: string, type: string, literals: readonly string[]): Promise<Array<[Buffer, string]>> {
  const values = literals.map((literal) => `('${literal}')`).join(', ');
  const output = await server.psql(
    `SELECT encode(${sendFunction}(v::${type}), 'hex') || '|' || v::${type}::text FROM (VALUES ${values}) AS t(v)`,
  );
  return output.split('\n').map((line) => {
    const [hex, text] = line.split('|');
    return [Buffer.from(hex!, 'hex'), text!];
  });
}

test('numeric: decodeNumeric prints what PostgreSQL prints', async () => {
  const literals = [
    '0', '1', '-1', '10000', '9999.9999', '4111111111111111', '-4111111111111111.50', '0.00001234', '-0.0001', '0.5',
    '12345678901234567890.000', '123456789.123456789', '1e20', '1e-20', 'NaN', 'Infinity', '-Infinity',
    '3.14159265358979323846264338327950288419716939937510', '100000000000000000000000000000.0000000000001',
  ];
  for (const [bytes, printed] of await sendAndPrint('numeric_send', 'numeric', literals)) {
    expect(decodeNumeric(bytes)).toBe(printed);
  }
});

test('int8 and float8 decode to the same numbers PostgreSQL prints', async () => {
  for (const [bytes, printed] of await sendAndPrint('int8send', 'int8', ['0', '-1', '4111111111111111', '9223372036854775807', '-9223372036854775808'])) {
    expect(decodeBinaryNumber(PG_TYPE.int8, bytes)).toBe(printed);
  }
  for (const [bytes, printed] of await sendAndPrint('float8send', 'float8', ['0', '-1.5', '4111111111111111', '4222222222222', '1e300'])) {
    expect(Number(decodeBinaryNumber(PG_TYPE.float8, bytes))).toBe(Number(printed));
  }
});

test('arrays: every element is visited, NULLs skipped, across dimensions', async () => {
  const hex = await server.psql(`SELECT encode(array_send('{{1,NULL},{3,4111111111111111}}'::int8[]), 'hex')`);
  const seen: string[] = [];
  expect(someBinaryArrayElement(Buffer.from(hex, 'hex'), (oid, element) => {
    seen.push(decodeBinaryNumber(oid, element)!);
    return false;
  })).toBe(false);
  expect(seen).toEqual(['1', '3', '4111111111111111']);
});

test('masked text-format json, jsonb and text[] values parse back as their types', async () => {
  const masker = createMasker([{ detectors: ['credit-card', 'email', 'us-ssn'] }, { columns: ['whole'] }]);
  const notes = masker.planColumn({ name: 'notes' });
  const whole = masker.planColumn({ name: 'whole' });
  const cases: Array<[plan: typeof notes, type: string, typeOid: number, value: string]> = [
    [notes, 'json', PG_TYPE.json, '{"pan": 4111111111111111, "mail": "a@example.com", "list": ["123-45-6789"]}'],
    [notes, 'jsonb', PG_TYPE.jsonb, '{"pan": 4111111111111111, "nested": {"n": [5555555555554444, "x"]}}'],
    [notes, 'text[]', PG_TYPE.textArray, '{plain,"card 4111 1111 1111 1111",4111111111111111,a@example.com}'],
    [whole, 'jsonb', PG_TYPE.jsonb, '{"anything": true}'],
    [whole, 'text', PG_TYPE.text, 'secret'],
  ];
  for (const [plan, type, typeOid, value] of cases) {
    const printed = await server.psql(`SELECT $v$${value}$v$::${type}::text`);
    const masked = masker.maskCell(plan, Buffer.from(printed), 'text', typeOid);
    expect(masked.masked).toBeGreaterThan(0);
    const maskedText = masked.cell!.toString();
    // PostgreSQL accepts the masked text as the column's type, and nothing sensitive is left in it.
    const reparsed = await server.psql(`SELECT $v$${maskedText}$v$::${type}::text`);
    expect(reparsed).not.toMatch(/4111|5555|a@example\.com|6789/);
  }
});
