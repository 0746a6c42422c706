// Runs pgbench (initialisation and timed runs) against one endpoint and reads its summary report:
// TPS without connection time, latency average and stddev, transaction counts.
import { BenchError } from './bench-errors.js';
import type { ChildProcessGroup } from './child-processes.js';

export type QueryMode = 'simple' | 'extended' | 'prepared';
export const QUERY_MODES: readonly QueryMode[] = ['simple', 'extended', 'prepared'];

export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
}

export interface PgbenchResult {
  readonly transactionType: string;
  readonly queryMode: string;
  readonly clients: number;
  readonly threads: number;
  readonly durationSeconds: number;
  readonly transactions: number;
  readonly failedTransactions: number;
  readonly latencyAverageMs: number;
  /** Only reported when latencies were measured (we pass -P), not derived from the run time. */
  readonly latencyStddevMs?: number;
  readonly initialConnectionMs: number;
  readonly tps: number;
}

/** Reads `name: value` and `name = value` lines of pgbench's summary into a map. */
function summaryFields(output: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of output.split('\n')) {
    const match = /^([a-z][a-z ]*?)\s*(?::|=)\s*(.+)$/.exec(line.trim());
    if (match && !fields.has(match[1])) fields.set(match[1], match[2]);
  }
  return fields;
}

/** Parses the summary pgbench prints on stdout; throws GH_BENCH_PGBENCH_OUTPUT when a figure is absent. */
export function parsePgbenchOutput(output: string): PgbenchResult {
  const fields = summaryFields(output);
  const text = (name: string): string => {
    const value = fields.get(name);
    if (value === undefined) throw new BenchError('GH_BENCH_PGBENCH_OUTPUT', { field: name, output: output.trim() });
    return value;
  };
  const number = (name: string, unit = ''): number => {
    const raw = text(name);
    const value = Number.parseFloat(raw);
    if (!Number.isFinite(value) || (unit && !raw.includes(unit))) {
      throw new BenchError('GH_BENCH_PGBENCH_OUTPUT', { field: name, output: output.trim() });
    }
    return value;
  };
  // pgbench 14+ prints one "tps = N (without initial connection time)"; older ones printed two lines,
  // the first of which includes connection time; summaryFields keeps the first, so read by pattern.
  const tpsMatch = /^tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)$/m.exec(output);
  if (!tpsMatch) throw new BenchError('GH_BENCH_PGBENCH_OUTPUT', { field: 'tps', output: output.trim() });
  return {
    transactionType: text('transaction type'),
    queryMode: text('query mode'),
    clients: number('number of clients'),
    threads: number('number of threads'),
    durationSeconds: number('duration', 's'),
    transactions: number('number of transactions actually processed'),
    failedTransactions: fields.has('number of failed transactions') ? number('number of failed transactions') : 0,
    latencyAverageMs: number('latency average', 'ms'),
    latencyStddevMs: fields.has('latency stddev') ? number('latency stddev', 'ms') : undefined,
    initialConnectionMs: fields.has('initial connection time') ? number('initial connection time', 'ms') : 0,
    tps: Number.parseFloat(tpsMatch[1]),
  };
}

function connectionArgs(endpoint: Endpoint): string[] {
  return ['-h', endpoint.host, '-p', String(endpoint.port), '-U', endpoint.user];
}

/** Password by environment, never argv; TLS off so every target is measured on plain TCP. */
function connectionEnv(endpoint: Endpoint): NodeJS.ProcessEnv {
  return { ...process.env, PGPASSWORD: endpoint.password, PGSSLMODE: 'disable', PGAPPNAME: 'gatehouse-bench' };
}

export interface PgbenchRunOptions {
  /** Which target this run measures, for error messages. */
  readonly targetName: string;
  readonly endpoint: Endpoint;
  /** The transaction: ['-S'] for builtin select-only, ['-f', file] for a script. */
  readonly workload: readonly string[];
  readonly clients: number;
  readonly threads: number;
  readonly seconds: number;
  readonly mode: QueryMode;
}

export function pgbenchRunArgs(options: PgbenchRunOptions): string[] {
  return [
    ...options.workload,
    '-n',
    '-T', String(options.seconds),
    '-c', String(options.clients),
    '-j', String(options.threads),
    '-M', options.mode,
    // One progress report at the end: it makes pgbench measure latencies (average and stddev)
    // instead of deriving the average from run time and transaction count.
    '-P', String(options.seconds),
    ...connectionArgs(options.endpoint),
    options.endpoint.database,
  ];
}

async function runToCompletion(processes: ChildProcessGroup, binary: string, args: readonly string[], endpoint: Endpoint, target: string): Promise<string> {
  const proc = processes.spawn('pgbench', binary, args, { env: connectionEnv(endpoint), collectStdout: true });
  const status = await proc.exited;
  if (status !== 'exit code 0') {
    throw new BenchError('GH_BENCH_PGBENCH_FAILED', { target, status, output: proc.outputTail() });
  }
  return proc.stdout();
}

export async function runPgbench(processes: ChildProcessGroup, binary: string, options: PgbenchRunOptions): Promise<PgbenchResult> {
  const stdout = await runToCompletion(processes, binary, pgbenchRunArgs(options), options.endpoint, options.targetName);
  return parsePgbenchOutput(stdout);
}

export interface PgbenchCountOptions extends Omit<PgbenchRunOptions, 'seconds'> {
  /** Transactions per client (`-t`), for measurements that count work rather than time it. */
  readonly transactions: number;
}

export function pgbenchCountArgs(options: PgbenchCountOptions): string[] {
  return [
    ...options.workload,
    '-n',
    '-t', String(options.transactions),
    '-c', String(options.clients),
    '-j', String(options.threads),
    '-M', options.mode,
    ...connectionArgs(options.endpoint),
    options.endpoint.database,
  ];
}

/** Runs exactly `transactions` per client; resolves with the transactions pgbench says it processed. */
export async function runPgbenchCount(processes: ChildProcessGroup, binary: string, options: PgbenchCountOptions): Promise<number> {
  const stdout = await runToCompletion(processes, binary, pgbenchCountArgs(options), options.endpoint, options.targetName);
  const match = /^number of transactions actually processed: (\d+)/m.exec(stdout);
  if (!match) throw new BenchError('GH_BENCH_PGBENCH_OUTPUT', { field: 'number of transactions actually processed', output: stdout.trim() });
  return Number(match[1]);
}

/** `pgbench -i -s <scale>`: creates and fills the pgbench_* tables, then vacuums them. */
export async function initialisePgbench(processes: ChildProcessGroup, binary: string, endpoint: Endpoint, scale: number): Promise<void> {
  await runToCompletion(processes, binary, ['-i', '-s', String(scale), '-q', ...connectionArgs(endpoint), endpoint.database], endpoint, 'direct');
}
