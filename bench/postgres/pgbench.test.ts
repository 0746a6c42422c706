import { parsePgbenchOutput, pgbenchRunArgs } from './pgbench.js';
import { isBenchError } from './bench-errors.js';

// Verbatim stdout of pgbench 15.18 (Debian 15.18-0+deb12u1) against PostgreSQL 15 on a 2-CPU machine.

/** `pgbench -S -n -T 2 -c 1 -j 1 -M simple`: no -P, so latency is derived and there is no stddev. */
const SELECT_ONLY_SIMPLE = `pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: select only>
scaling factor: 1
query mode: simple
number of clients: 1
number of threads: 1
maximum number of tries: 1
duration: 2 s
number of transactions actually processed: 18625
number of failed transactions: 0 (0.000%)
latency average = 0.107 ms
initial connection time = 6.923 ms
tps = 9344.453358 (without initial connection time)
`;

/** `pgbench -S -n -T 2 -c 2 -j 2 -M extended -P 2`, the way the harness runs it: measured latency. */
const SELECT_ONLY_WITH_PROGRESS = `pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: <builtin: select only>
scaling factor: 1
query mode: extended
number of clients: 2
number of threads: 2
maximum number of tries: 1
duration: 2 s
number of transactions actually processed: 46209
number of failed transactions: 0 (0.000%)
latency average = 0.086 ms
latency stddev = 0.231 ms
initial connection time = 12.141 ms
tps = 23197.533709 (without initial connection time)
`;

/** `pgbench -n -f custom.sql -T 2 -c 1 -M prepared`: a script file names the transaction type. */
const CUSTOM_SCRIPT_PREPARED = `pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: /tmp/pgb/custom.sql
scaling factor: 1
query mode: prepared
number of clients: 1
number of threads: 1
maximum number of tries: 1
duration: 2 s
number of transactions actually processed: 53375
number of failed transactions: 0 (0.000%)
latency average = 0.037 ms
initial connection time = 7.234 ms
tps = 26754.908993 (without initial connection time)
`;

/** A script whose statement fails (SELECT 1/0): every client aborts, pgbench exits 2, no figures. */
const ABORTED_RUN = `pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: /tmp/pgb/bad.sql
scaling factor: 1
query mode: simple
number of clients: 2
number of threads: 1
maximum number of tries: 1
duration: 1 s
number of transactions actually processed: 0
number of failed transactions: 0 (NaN%)
`;

describe('parsePgbenchOutput', () => {
  test('reads the builtin select-only summary', () => {
    expect(parsePgbenchOutput(SELECT_ONLY_SIMPLE)).toEqual({
      transactionType: '<builtin: select only>',
      queryMode: 'simple',
      clients: 1,
      threads: 1,
      durationSeconds: 2,
      transactions: 18625,
      failedTransactions: 0,
      latencyAverageMs: 0.107,
      latencyStddevMs: undefined,
      initialConnectionMs: 6.923,
      tps: 9344.453358,
    });
  });

  test('reads the latency stddev that -P adds', () => {
    const result = parsePgbenchOutput(SELECT_ONLY_WITH_PROGRESS);
    expect(result).toMatchObject({ queryMode: 'extended', clients: 2, threads: 2, latencyAverageMs: 0.086, latencyStddevMs: 0.231 });
    expect(result.tps).toBeCloseTo(23197.533709, 6);
  });

  test('names a script file as the transaction type', () => {
    expect(parsePgbenchOutput(CUSTOM_SCRIPT_PREPARED)).toMatchObject({
      transactionType: '/tmp/pgb/custom.sql',
      queryMode: 'prepared',
      transactions: 53375,
      tps: 26754.908993,
    });
  });

  test('reads the old two-line tps format, taking the figure without connection time', () => {
    const old = SELECT_ONLY_SIMPLE.replace(
      'tps = 9344.453358 (without initial connection time)',
      'tps = 9000.000000 (including connections establishing)\ntps = 9344.453358 (excluding connections establishing)',
    );
    expect(parsePgbenchOutput(old).tps).toBe(9344.453358);
  });

  test('rejects an aborted run with a GH_BENCH_PGBENCH_OUTPUT error naming the missing figure', () => {
    let thrown: unknown;
    try {
      parsePgbenchOutput(ABORTED_RUN);
    } catch (error) {
      thrown = error;
    }
    expect(isBenchError(thrown, 'GH_BENCH_PGBENCH_OUTPUT')).toBe(true);
    expect(isBenchError(thrown) && thrown.details.field).toBe('tps');
  });

  test('rejects output that is not a pgbench summary at all', () => {
    expect(() => parsePgbenchOutput('')).toThrow(/pgbench output/);
  });
});

describe('pgbenchRunArgs', () => {
  test('passes workload, duration, clients, threads, mode and one progress report at the end', () => {
    const args = pgbenchRunArgs({
      targetName: 'direct',
      endpoint: { host: '127.0.0.1', port: 5432, user: 'u', password: 'secret', database: 'app' },
      workload: ['-S'],
      clients: 8,
      threads: 2,
      seconds: 10,
      mode: 'prepared',
    });
    expect(args).toEqual(['-S', '-n', '-T', '10', '-c', '8', '-j', '2', '-M', 'prepared', '-P', '10',
      '-h', '127.0.0.1', '-p', '5432', '-U', 'u', 'app']);
    expect(args).not.toContain('secret');
  });
});
