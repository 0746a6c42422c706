// Turns pgbench measurements into the comparison the benchmark exists for: each target against
// direct PostgreSQL and against pgbouncer at the same scenario and client count, as a text table.
import type { PgbenchResult, QueryMode } from './pgbench.js';
import type { ProcessMemory } from './process-memory.js';
import type { Scenario } from './scenarios.js';

/** What identifies a row of the report. */
export interface RunKey {
  readonly scenario: string;
  readonly target: string;
  readonly clients: number;
  readonly threads: number;
  readonly mode: QueryMode;
}

/** CPU time per transaction of a measured run, in microseconds. */
export interface CpuPerTransaction {
  /** The proxy process, every thread; absent for direct connections and off Linux. */
  readonly proxyUs?: number;
  /** The benchmark's own process (for the sidecar: the operator's side, see cpuPerTransaction). */
  readonly harnessUs: number;
}

/**
 * CPU microseconds per transaction of the measured run: the proxy process's (every thread, from
 * /proc; absent for direct and off Linux) and the harness process's own (process.cpuUsage: for the
 * sidecar that holds the operator's discovery server and recording receiver, which in a cluster run
 * elsewhere but here take the same 2 cores).
 */
export function cpuPerTransaction(transactions: number, harnessUs: number, proxyBefore: number | undefined, proxyAfter: number | undefined): CpuPerTransaction | undefined {
  if (transactions <= 0) return undefined;
  const proxy = proxyBefore === undefined || proxyAfter === undefined ? {} : { proxyUs: (proxyAfter - proxyBefore) / transactions };
  return { ...proxy, harnessUs: harnessUs / transactions };
}

/** One measured pgbench run (after its warm-up) in one round. */
export interface Sample extends RunKey {
  readonly round: number;
  readonly result?: PgbenchResult;
  /** Why the run produced no result. */
  readonly error?: string;
  /** The proxy's memory right after the run; absent for direct. */
  readonly memory?: ProcessMemory;
  readonly cpu?: CpuPerTransaction;
}

/** The rounds of one run key folded into one row. */
export interface Measurement extends RunKey {
  /** The round with the median TPS (the lower middle one for an even count), so TPS and latency agree. */
  readonly result?: PgbenchResult;
  /** TPS of every round that produced a result, in round order. */
  readonly tpsSamples: readonly number[];
  /** The first failure, when any round failed. */
  readonly error?: string;
  /** RSS after the last round; peak over all rounds. */
  readonly memory?: ProcessMemory;
  /** Of the round with the median TPS. */
  readonly cpu?: CpuPerTransaction;
}

export interface ReportRow extends Measurement {
  readonly ratioVsDirect?: number;
  readonly ratioVsPgbouncer?: number;
  /** Latency average minus direct's at the same scenario, query mode and client count. */
  readonly addedLatencyMs?: number;
}

const keyOf = (run: RunKey) => `${run.scenario}|${run.target}|${run.clients}|${run.mode}`;

function foldRounds(samples: readonly Sample[]): Measurement {
  const { scenario, target, clients, threads, mode } = samples[0];
  const measured = samples.filter((sample) => sample.result !== undefined);
  const results = measured.map((sample) => sample.result!);
  const median = [...measured].sort((a, b) => a.result!.tps - b.result!.tps)[Math.floor((measured.length - 1) / 2)];
  const memories = samples.flatMap((sample) => (sample.memory ? [sample.memory] : []));
  const lastMemory = memories.at(-1);
  return {
    scenario, target, clients, threads, mode,
    result: median?.result,
    cpu: median?.cpu,
    tpsSamples: results.map((result) => result.tps),
    error: samples.find((sample) => sample.error !== undefined)?.error,
    memory: lastMemory && { rssKiB: lastMemory.rssKiB, peakRssKiB: Math.max(...memories.map((m) => m.peakRssKiB)) },
  };
}

/** Groups samples by run key (first-seen order) and folds each group's rounds into one measurement. */
export function foldSamples(samples: readonly Sample[]): Measurement[] {
  const groups = new Map<string, Sample[]>();
  for (const sample of samples) {
    const group = groups.get(keyOf(sample));
    if (group) group.push(sample);
    else groups.set(keyOf(sample), [sample]);
  }
  return [...groups.values()].map(foldRounds);
}

export interface SkippedTarget {
  readonly target: string;
  readonly reason: string;
  /** The error code when start() threw a BenchError, e.g. GH_BENCH_TARGET_UNAVAILABLE. */
  readonly code?: string;
}

const TARGET_ORDER = ['direct', 'pgbouncer', 'haproxy', 'node-pipe', 'sidecar'];

function targetRank(target: string): number {
  const rank = TARGET_ORDER.indexOf(target);
  return rank === -1 ? TARGET_ORDER.length : rank;
}

export function compareToBaselines(measurements: readonly Measurement[]): ReportRow[] {
  const find = (like: Measurement, target: string) => measurements.find((m) => keyOf(m) === keyOf({ ...like, target }))?.result;
  return measurements.map((measurement) => {
    const { result } = measurement;
    const direct = find(measurement, 'direct');
    const pgbouncer = find(measurement, 'pgbouncer');
    if (!result) return measurement;
    return {
      ...measurement,
      ratioVsDirect: direct ? result.tps / direct.tps : undefined,
      ratioVsPgbouncer: pgbouncer ? result.tps / pgbouncer.tps : undefined,
      addedLatencyMs: direct ? result.latencyAverageMs - direct.latencyAverageMs : undefined,
    };
  });
}

const DASH = '—';
const fixed = (value: number | undefined, digits: number, suffix = '') => (value === undefined ? DASH : `${value.toFixed(digits)}${suffix}`);
const mebibytes = (kib: number | undefined) => fixed(kib === undefined ? undefined : kib / 1024, 1);
const signed = (value: number | undefined) => (value === undefined ? DASH : `${value >= 0 ? '+' : ''}${value.toFixed(3)}`);

const HEADER = ['target', 'clients', 'TPS', 'TPS range', 'vs direct', 'vs pgbouncer', 'latency avg ms', 'added ms', 'RSS MiB', 'peak RSS MiB', 'CPU µs/txn', 'harness µs/txn'];

function tpsRange(samples: readonly number[]): string {
  return samples.length < 2 ? DASH : `${Math.min(...samples).toFixed(0)}-${Math.max(...samples).toFixed(0)}`;
}

function cells(row: ReportRow): string[] {
  const lead = [row.target, String(row.clients)];
  if (!row.result) return [...lead, `failed: ${(row.error ?? 'no result').split('\n')[0]}`];
  return [
    ...lead,
    row.result.tps.toFixed(0),
    tpsRange(row.tpsSamples),
    fixed(row.ratioVsDirect, 2, 'x'),
    fixed(row.ratioVsPgbouncer, 2, 'x'),
    row.result.latencyAverageMs.toFixed(3),
    row.target === 'direct' ? DASH : signed(row.addedLatencyMs),
    mebibytes(row.memory?.rssKiB),
    mebibytes(row.memory?.peakRssKiB),
    fixed(row.cpu?.proxyUs, 1),
    fixed(row.cpu?.harnessUs, 1),
  ];
}

/** Left-aligns the first column, right-aligns the numbers; a failure message spans the rest. */
function formatTable(rows: readonly string[][], columns: number): string {
  const full = rows.filter((row) => row.length === columns);
  const widths = Array.from({ length: columns }, (_, column) => Math.max(...full.map((row) => row[column].length)));
  return rows
    .map((row) => row.map((cell, column) => {
      if (row.length < columns && column === row.length - 1) return cell;
      return column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]);
    }).join('  '))
    .join('\n');
}

/** The TPS range column only earns its place when some row has more than one round. */
function tableOf(rows: readonly ReportRow[]): string {
  const withRange = rows.some((row) => row.tpsSamples.length > 1);
  const drop = (cellsOfRow: string[]) => (withRange || cellsOfRow.length < HEADER.length ? cellsOfRow : cellsOfRow.filter((_, i) => i !== 3));
  return formatTable([HEADER, ...rows.map(cells)].map(drop), withRange ? HEADER.length : HEADER.length - 1);
}

export interface ReportOptions {
  readonly scenarios: readonly Scenario[];
  readonly seconds: number;
  readonly rounds: number;
  readonly skipped: readonly SkippedTarget[];
  /** The sidecar process's node flags, named under the tables. */
  readonly sidecarNodeOptions?: readonly string[];
}

function roundsText(rounds: number): string {
  return rounds === 1 ? '1 round' : `median of ${rounds} rounds`;
}

export function formatReport(rows: readonly ReportRow[], options: ReportOptions): string {
  const sections: string[] = [];
  for (const scenario of options.scenarios) {
    const scenarioRows = rows.filter((row) => row.scenario === scenario.name);
    for (const mode of new Set(scenarioRows.map((row) => row.mode))) {
      const tableRows = scenarioRows
        .filter((row) => row.mode === mode)
        .sort((a, b) => a.clients - b.clients || targetRank(a.target) - targetRank(b.target));
      sections.push(
        `${scenario.name}: ${scenario.description}\n` +
          `query mode ${mode}, ${options.seconds} s per run, ${roundsText(options.rounds)}\n\n` +
          tableOf(tableRows),
      );
    }
  }
  if (options.sidecarNodeOptions) {
    const flags = options.sidecarNodeOptions.length > 0 ? options.sidecarNodeOptions.join(' ') : "Node's defaults";
    sections.push(`sidecar process: node ${flags}`);
  }
  if (rows.some((row) => row.cpu !== undefined)) {
    sections.push(
      'CPU µs/txn: the proxy process\'s CPU time (user + system, every thread) per transaction of the measured run.\n' +
        'harness µs/txn: the benchmark process\'s own; for the sidecar it holds the operator\'s discovery server and\n' +
        'recording receiver, which in a cluster run on other nodes but here take the same cores as everything else.',
    );
  }
  for (const skip of options.skipped) sections.push(`skipped ${skip.target}: ${skip.reason}`);
  return `${sections.join('\n\n')}\n`;
}
