import { compareToBaselines, cpuPerTransaction, foldSamples, formatReport, type Sample } from './report.js';
import type { PgbenchResult } from './pgbench.js';
import { SCENARIOS } from './scenarios.js';

function result(tps: number, latencyAverageMs: number): PgbenchResult {
  return {
    transactionType: '<builtin: select only>', queryMode: 'simple', clients: 1, threads: 1, durationSeconds: 10,
    transactions: tps * 10, failedTransactions: 0, latencyAverageMs, initialConnectionMs: 5, tps,
  };
}

const key = { scenario: 'select-only', clients: 1, threads: 1, mode: 'simple' as const };

describe('foldSamples', () => {
  test('keeps the median round, every TPS, the first error and the peak memory', () => {
    const samples: Sample[] = [
      { ...key, target: 'pgbouncer', round: 1, result: result(900, 0.11), memory: { rssKiB: 8000, peakRssKiB: 8100 } },
      { ...key, target: 'pgbouncer', round: 2, result: result(1100, 0.09), memory: { rssKiB: 8200, peakRssKiB: 9000 } },
      { ...key, target: 'pgbouncer', round: 3, error: 'pgbench against pgbouncer exited with exit code 2' },
      { ...key, target: 'pgbouncer', round: 4, result: result(1000, 0.1), memory: { rssKiB: 8300, peakRssKiB: 8400 }, cpu: { proxyUs: 17, harnessUs: 1 } },
    ];
    const [folded] = foldSamples(samples);
    expect(folded.result?.tps).toBe(1000);
    expect(folded.tpsSamples).toEqual([900, 1100, 1000]);
    expect(folded.error).toContain('exit code 2');
    expect(folded.memory).toEqual({ rssKiB: 8300, peakRssKiB: 9000 });
    // CPU per transaction comes from the median round, like TPS and latency.
    expect(folded.cpu).toEqual({ proxyUs: 17, harnessUs: 1 });
  });
});

describe('cpuPerTransaction', () => {
  test('divides the proxy\'s CPU growth and the harness\'s CPU by the transactions', () => {
    expect(cpuPerTransaction(10_000, 50_000, 1_000_000, 1_170_000)).toEqual({ proxyUs: 17, harnessUs: 5 });
    // Direct connections (no proxy process) and no /proc: the harness figure only.
    expect(cpuPerTransaction(10_000, 50_000, undefined, undefined)).toEqual({ harnessUs: 5 });
    expect(cpuPerTransaction(0, 50_000, 0, 1)).toBeUndefined();
  });
});

describe('compareToBaselines', () => {
  test('divides TPS by direct and pgbouncer and subtracts direct latency at the same key', () => {
    const rows = compareToBaselines(foldSamples([
      { ...key, target: 'direct', round: 1, result: result(10000, 0.1) },
      { ...key, target: 'pgbouncer', round: 1, result: result(8000, 0.125) },
      { ...key, target: 'haproxy', round: 1, result: result(9000, 0.111) },
      { ...key, clients: 8, target: 'haproxy', round: 1, result: result(20000, 0.4) },
    ]));
    const haproxy = rows.find((row) => row.target === 'haproxy' && row.clients === 1);
    expect(haproxy?.ratioVsDirect).toBeCloseTo(0.9);
    expect(haproxy?.ratioVsPgbouncer).toBeCloseTo(1.125);
    expect(haproxy?.addedLatencyMs).toBeCloseTo(0.011);
    const alone = rows.find((row) => row.clients === 8);
    expect(alone?.ratioVsDirect).toBeUndefined();
  });
});

describe('formatReport', () => {
  test('prints one aligned table per scenario, failures inline and skipped targets last', () => {
    const rows = compareToBaselines(foldSamples([
      { ...key, target: 'direct', round: 1, result: result(10000, 0.1), cpu: { harnessUs: 0.4 } },
      { ...key, target: 'pgbouncer', round: 1, result: result(8000, 0.125), memory: { rssKiB: 8704, peakRssKiB: 8704 }, cpu: { proxyUs: 16.62, harnessUs: 0.51 } },
      { ...key, target: 'haproxy', round: 1, error: 'pgbench against haproxy exited with exit code 1:\nconnection refused' },
    ]));
    const text = formatReport(rows, {
      scenarios: SCENARIOS, seconds: 10, rounds: 1,
      skipped: [{ target: 'sidecar', reason: 'not available yet', code: 'GH_BENCH_TARGET_UNAVAILABLE' }],
    });
    expect(text.split('\n')).toEqual([
      'select-only: pgbench -S: one primary-key SELECT on pgbench_accounts per transaction',
      'query mode simple, 10 s per run, 1 round',
      '',
      'target     clients    TPS  vs direct  vs pgbouncer  latency avg ms  added ms  RSS MiB  peak RSS MiB  CPU µs/txn  harness µs/txn',
      'direct           1  10000      1.00x         1.25x           0.100         —        —             —           —             0.4',
      'pgbouncer        1   8000      0.80x         1.00x           0.125    +0.025      8.5           8.5        16.6             0.5',
      'haproxy          1  failed: pgbench against haproxy exited with exit code 1:',
      '',
      'CPU µs/txn: the proxy process\'s CPU time (user + system, every thread) per transaction of the measured run.',
      'harness µs/txn: the benchmark process\'s own; for the sidecar it holds the operator\'s discovery server and',
      'recording receiver, which in a cluster run on other nodes but here take the same cores as everything else.',
      '',
      'skipped sidecar: not available yet',
      '',
    ]);
  });
});
