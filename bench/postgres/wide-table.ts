// The wide-result-set scenario's table: ~20 text columns of which some hold personal data (emails,
// phone, card numbers, IBAN) that the sidecar masks, so the benchmark prices masking on large rows.
import { fileURLToPath } from 'node:url';

export const WIDE_TABLE = {
  name: 'wide',
  rows: 10_000,
  /** The pgbench script: `SELECT * FROM wide LIMIT 1000`, about 0.4 MB of text per transaction. */
  scriptFile: fileURLToPath(new URL('./wide-select.sql', import.meta.url)),
  /** Columns a masking policy covers; the sidecar target's policy should mask exactly these. */
  maskedColumns: ['email', 'secondary_email', 'phone', 'card_number', 'iban'],
} as const;

/** Column name and the SQL expression (of the generate_series value g) that fills it. */
const COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['full_name', `'Person ' || g`],
  ['email', `'user' || g || '@example.com'`],
  ['secondary_email', `'alt.' || g || '@mail.example.org'`],
  ['phone', `'+1-555-' || lpad((g % 10000)::text, 4, '0')`],
  ['card_number', `'4111-1111-' || lpad(((g * 7919) % 10000)::text, 4, '0') || '-' || lpad((g % 10000)::text, 4, '0')`],
  ['card_expiry', `lpad((1 + g % 12)::text, 2, '0') || '/' || (27 + g % 5)`],
  ['card_holder', `'PERSON ' || g`],
  ['iban', `'DE89' || lpad(g::text, 18, '0')`],
  ['street', `(g % 999 + 1) || ' Main Street'`],
  ['city', `(ARRAY['Berlin', 'Lisbon', 'Oslo', 'Austin', 'Osaka'])[1 + g % 5]`],
  ['postcode', `lpad((g % 99999)::text, 5, '0')`],
  ['country', `(ARRAY['DE', 'PT', 'NO', 'US', 'JP'])[1 + g % 5]`],
  ['company', `'Company ' || (g % 500)`],
  ['job_title', `(ARRAY['Engineer', 'Analyst', 'Manager', 'Designer'])[1 + g % 4]`],
  ['ip_address', `'10.' || (g % 256) || '.' || (g / 256 % 256) || '.' || (g % 7)`],
  ['user_agent', `'Mozilla/5.0 (X11; Linux x86_64) bench/' || g`],
  ['notes', `md5(g::text) || md5((g + 1)::text)`],
  ['status', `(ARRAY['active', 'suspended', 'closed'])[1 + g % 3]`],
  ['tags', `'tag' || (g % 10) || ',tag' || (g % 7)`],
  ['created_at', `(timestamp '2024-01-01' + g * interval '1 minute')::text`],
];

/** One string of statements; psql -c runs them in one implicit transaction, so no VACUUM here. */
export function createWideTableSql(rows: number = WIDE_TABLE.rows): string {
  const select = COLUMNS.map(([name, expression]) => `${expression} AS ${name}`).join(',\n  ');
  return [
    `DROP TABLE IF EXISTS ${WIDE_TABLE.name}`,
    `CREATE TABLE ${WIDE_TABLE.name} AS SELECT g AS id,\n  ${select}\nFROM generate_series(1, ${rows}) AS g`,
    `ALTER TABLE ${WIDE_TABLE.name} ADD PRIMARY KEY (id)`,
    `ANALYZE ${WIDE_TABLE.name}`,
  ].join(';\n');
}
