// Measures SQL classification speed: statements per second and per-statement latency, cold (a
// unique text every time, so the parser runs for each) and cached (the SqlClassifier hit path the
// sidecar takes for the texts an application repeats). Run: node --import tsx bench/classify/run.ts

import { classifySql, loadSqlParser, SqlClassifier } from '../../api/sql/classify.js';

/** A realistic mix of what applications send: ORM reads and writes, reporting queries, migrations, session chatter. `{n}` varies per run. */
const TEMPLATES: readonly string[] = [
  'SELECT 1',
  'SELECT id, email, created_at FROM users WHERE id = {n}',
  'SELECT "users"."id", "users"."email" FROM "users" WHERE "users"."tenant_id" = {n} ORDER BY "users"."created_at" DESC LIMIT 50',
  'SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at > now() - interval \'{n} days\'',
  'SELECT count(*) FROM orders WHERE status = \'open\' AND customer_id = {n}',
  "SELECT date_trunc('day', created_at) AS day, sum(total), avg(total) FROM orders WHERE created_at >= '2024-01-01' GROUP BY 1 ORDER BY 1 LIMIT {n}",
  'SELECT * FROM products WHERE id IN (SELECT product_id FROM order_lines WHERE order_id = {n})',
  "SELECT p.*, jsonb_build_object('tags', p.tags) FROM products p WHERE p.search @@ plainto_tsquery('english', 'widget {n}')",
  'WITH recent AS (SELECT * FROM events WHERE ts > now() - interval \'1 hour\') SELECT kind, count(*) FROM recent WHERE account_id = {n} GROUP BY kind',
  'INSERT INTO events (account_id, kind, payload) VALUES ({n}, \'login\', \'{"ip": "10.0.0.1"}\') RETURNING id',
  'INSERT INTO orders (customer_id, total) VALUES ({n}, 10.5) ON CONFLICT (id) DO UPDATE SET total = excluded.total',
  'UPDATE users SET last_seen = now() WHERE id = {n}',
  'UPDATE accounts SET balance = balance - 10 WHERE id = {n} AND balance >= 10 RETURNING balance',
  'DELETE FROM sessions WHERE expires_at < now() AND user_id = {n}',
  'SELECT * FROM jobs WHERE state = \'queued\' ORDER BY priority LIMIT {n} FOR UPDATE SKIP LOCKED',
  'BEGIN',
  'COMMIT',
  'SET statement_timeout = {n}',
  "SELECT nextval('orders_id_seq'), {n}",
  'SELECT pg_advisory_xact_lock({n})',
  'WITH moved AS (DELETE FROM inbox WHERE id = {n} RETURNING *) INSERT INTO archive SELECT * FROM moved',
  'EXPLAIN ANALYZE SELECT * FROM orders WHERE id = {n}',
  'CREATE INDEX IF NOT EXISTS orders_idx_{n} ON orders (customer_id, created_at)',
  'ALTER TABLE orders ADD COLUMN IF NOT EXISTS note_{n} text',
  'SELECT t.relname, pg_size_pretty(pg_total_relation_size(t.oid)) FROM pg_class t WHERE t.relkind = \'r\' LIMIT {n}',
];

interface Measurement {
  readonly name: string;
  readonly perSecond: number;
  readonly micros: number[];
}

function textsFor(round: number): string[] {
  return TEMPLATES.map((template) => template.replaceAll('{n}', String(round)));
}

/**
 * Throughput and latency come from separate passes: timing each call costs about as much as a
 * cache hit, so the throughput pass runs untimed and the latency pass times every call.
 */
function measure(name: string, budgetMs: number, classify: (text: string) => void, texts: (round: number) => string[]): Measurement {
  let round = 0;
  let statements = 0;
  const started = process.hrtime.bigint();
  const throughputEnd = started + BigInt(budgetMs / 2) * 1_000_000n;
  while (process.hrtime.bigint() < throughputEnd) {
    for (const text of texts(round)) classify(text);
    statements += TEMPLATES.length;
    round += 1;
  }
  const perSecond = statements / (Number(process.hrtime.bigint() - started) / 1e9);
  const micros: number[] = [];
  const latencyEnd = process.hrtime.bigint() + BigInt(budgetMs / 2) * 1_000_000n;
  while (process.hrtime.bigint() < latencyEnd && micros.length < 1_000_000) {
    for (const text of texts(round)) {
      const before = process.hrtime.bigint();
      classify(text);
      micros.push(Number(process.hrtime.bigint() - before) / 1000);
    }
    round += 1;
  }
  return { name, perSecond, micros };
}

function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
}

function report(measurements: readonly Measurement[]): void {
  const rows = measurements.map((measurement) => {
    const sorted = [...measurement.micros].sort((left, right) => left - right);
    return {
      scenario: measurement.name,
      'statements/s': Math.round(measurement.perSecond),
      'p50 µs': percentile(sorted, 0.5).toFixed(1),
      'p99 µs': percentile(sorted, 0.99).toFixed(1),
      samples: sorted.length,
    };
  });
  console.table(rows);
}

async function main(): Promise<void> {
  await loadSqlParser();
  console.log(`SQL classification, ${TEMPLATES.length} statement shapes, Node ${process.version}`);

  const uncached = (text: string): void => void classifySql(text);
  // Warm up the JIT before measuring; cold rounds use texts the warm-up never saw.
  measure('warm-up', 600, uncached, textsFor);
  const cold = measure('cold (unique texts, parser every time)', 8_000, uncached, (round) => textsFor(round + 1_000_000));

  const classifier = new SqlClassifier();
  const repeated = textsFor(7);
  for (const text of repeated) classifier.classify(text);
  const cached = measure('cached (SqlClassifier hit)', 4_000, (text) => void classifier.classify(text), () => repeated);

  report([cold, cached]);
  const { hits, misses, size } = classifier.stats;
  console.log(`classifier cache: ${hits} hits, ${misses} misses, ${size} entries`);
}

await main();
