// `node --import tsx bench/postgres/instructions.ts`: what a Node.js proxy costs per transaction, in
// CPU instructions counted by valgrind's callgrind. Unlike TPS, the count does not depend on what
// else runs on the machine, so it can compare the sidecar with the bare socket.pipe() proxy (and one
// version of the sidecar with the next) on a busy, shared machine. The proxy runs under callgrind;
// pgbench runs a fixed number of transactions twice (short, then long) with the counters zeroed
// before and dumped after each, and the difference divided by the extra transactions is the cost of
// one transaction, connection setup (SCRAM, startup) excluded. All threads count (GC, JIT included).
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';
import { startPostgres } from '../../testing/postgres-server.js';
import { BenchError } from './bench-errors.js';
import { requireBinaries } from './binaries.js';
import { ChildProcessGroup } from './child-processes.js';
import { DEFAULT_SIDECAR_NODE_OPTIONS } from './options.js';
import { initialisePgbench, runPgbenchCount, type Endpoint, type QueryMode } from './pgbench.js';
import { SCENARIOS, type Scenario } from './scenarios.js';
import { nodePipeTarget } from './targets/node-pipe.js';
import { sidecarTarget } from './targets/sidecar.js';
import type { BenchTarget, RunningTarget, TargetContext } from './targets/target.js';
import { createWideTableSql } from './wide-table.js';

const run = promisify(execFile);

const USAGE = `Usage: node --import tsx bench/postgres/instructions.ts [options]
  --targets node-pipe,sidecar      proxies to measure
  --scenarios select-only          select-only, wide-masked
  --transactions 2000              extra transactions of the long run over the short one (per scenario)
  --base 200                       transactions of the short run
  --warmup 3000                    transactions per warm-up connection: V8 optimises the hot path over
  --warmup-runs 4                  several connections (a new session brings new feedback and deopts)
  --mode simple                    pgbench -M
  --sidecar-node-options "FLAGS"   node flags of the sidecar (default: as bench:postgres)
  --annotate DIR                   keep the callgrind dumps of the long runs in DIR (for callgrind_annotate)`;

interface InstructionOptions {
  readonly targets: readonly string[];
  readonly scenarios: readonly string[];
  readonly transactions: number;
  readonly base: number;
  readonly warmup: number;
  readonly warmupRuns: number;
  readonly mode: QueryMode;
  readonly sidecarNodeOptions: readonly string[];
  readonly annotateDir?: string;
}

function parseOptions(argv: readonly string[]): InstructionOptions | undefined {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      targets: { type: 'string', default: 'node-pipe,sidecar' },
      scenarios: { type: 'string', default: 'select-only' },
      transactions: { type: 'string', default: '2000' },
      base: { type: 'string', default: '200' },
      warmup: { type: 'string', default: '3000' },
      'warmup-runs': { type: 'string', default: '4' },
      mode: { type: 'string', default: 'simple' },
      'sidecar-node-options': { type: 'string' },
      annotate: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return undefined;
  const count = (name: string, value: string): number => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < 1) throw new BenchError('GH_BENCH_USAGE', { detail: `--${name} ${value} is not a positive integer` });
    return parsed;
  };
  const mode = values.mode as QueryMode;
  if (!['simple', 'extended', 'prepared'].includes(mode)) throw new BenchError('GH_BENCH_USAGE', { detail: `--mode ${values.mode} is not simple, extended or prepared` });
  const nodeOptions = values['sidecar-node-options'];
  return {
    targets: values.targets.split(',').filter(Boolean),
    scenarios: values.scenarios.split(',').filter(Boolean),
    transactions: count('transactions', values.transactions),
    base: count('base', values.base),
    warmup: count('warmup', values.warmup),
    warmupRuns: count('warmup-runs', values['warmup-runs']),
    mode,
    sidecarNodeOptions: nodeOptions === undefined ? DEFAULT_SIDECAR_NODE_OPTIONS : nodeOptions.split(/\s+/).filter(Boolean),
    ...(values.annotate ? { annotateDir: values.annotate } : {}),
  };
}

function log(message: string): void {
  process.stderr.write(`[bench:instructions] ${message}\n`);
}

/** The instruction total of a callgrind dump ("summary:" in the file header). */
async function totalOf(file: string): Promise<number> {
  const match = /^summary: (\d+)/m.exec(await readFile(file, 'utf8'));
  if (!match) throw new Error(`no summary line in ${file}`);
  return Number(match[1]);
}

/** Instructions of the event loop's thread, and of all threads (V8's compiler and GC helpers included). */
interface Count {
  readonly main: number;
  readonly all: number;
}

interface Counter {
  /** Zeroes the counters, runs `work`, dumps; resolves with the instructions `work` cost the proxy. */
  count(work: () => Promise<unknown>): Promise<Count>;
}

function callgrindCounter(pid: number, dumpDir: string, prefix: string): Counter {
  let dumps = 0;
  return {
    async count(work) {
      await run('callgrind_control', ['-z', String(pid)]);
      await work();
      await run('callgrind_control', ['-d', String(pid)]);
      dumps += 1;
      // With --separate-threads callgrind writes <out-file>.<dump>-<thread>, thread 01 being the main one.
      const stem = `${prefix}.${pid}.out.${dumps}-`;
      const files = (await readdir(dumpDir)).filter((name) => name.startsWith(stem));
      if (!files.includes(`${stem}01`)) throw new Error(`callgrind wrote no dump ${dumps} for ${prefix} (pid ${pid}) in ${dumpDir}`);
      const totals = await Promise.all(files.map(async (name) => [name, await totalOf(join(dumpDir, name))] as const));
      return { main: totals.find(([name]) => name === `${stem}01`)![1], all: totals.reduce((sum, [, total]) => sum + total, 0) };
    },
  };
}

interface Measurement {
  readonly target: string;
  readonly scenario: string;
  /** On the event loop's thread: what limits a single-threaded proxy's throughput. */
  readonly perTransaction: number;
  /** All threads; background compilation and GC make this one drift and vary between runs. */
  readonly perTransactionAllThreads: number;
  readonly shortRun: Count;
  readonly longRun: Count;
}

async function measureScenario(
  processes: ChildProcessGroup,
  counter: Counter,
  endpoint: Endpoint,
  scenario: Scenario,
  options: InstructionOptions,
  target: string,
): Promise<Measurement> {
  const pgbench = (transactions: number) => () =>
    runPgbenchCount(processes, 'pgbench', { targetName: target, endpoint, workload: scenario.workload, clients: 1, threads: 1, mode: options.mode, transactions });
  // Warm-up: until the hot path is optimised and stays so. Too short a warm-up leaves functions
  // running as baseline code, deopts and TurboFan compiles in the counted runs, which then measure
  // how far V8 got rather than what a transaction costs.
  for (let run = 0; run < options.warmupRuns; run += 1) await pgbench(options.warmup)();
  const shortRun = await counter.count(pgbench(options.base));
  const longRun = await counter.count(pgbench(options.base + options.transactions));
  return {
    target,
    scenario: scenario.name,
    perTransaction: (longRun.main - shortRun.main) / options.transactions,
    perTransactionAllThreads: (longRun.all - shortRun.all) / options.transactions,
    shortRun,
    longRun,
  };
}

async function measureTarget(bench: { processes: ChildProcessGroup; workDir: string; options: InstructionOptions }, name: string, upstream: Endpoint): Promise<Measurement[]> {
  const dumpDir = bench.options.annotateDir ?? bench.workDir;
  const context: TargetContext = {
    workDir: bench.workDir,
    processes: bench.processes,
    binary: (binary) => binary,
    nodeLauncher: ['valgrind', '--tool=callgrind', '--smc-check=all-non-file', '--separate-threads=yes', `--callgrind-out-file=${join(dumpDir, `${name}.%p.out`)}`],
    startTimeoutMs: 600_000,
  };
  const factories: Record<string, () => BenchTarget> = {
    'node-pipe': () => nodePipeTarget(context),
    sidecar: () => sidecarTarget(context, bench.options.sidecarNodeOptions),
  };
  const factory = factories[name];
  if (!factory) throw new BenchError('GH_BENCH_USAGE', { detail: `unknown target ${name}; this harness measures node-pipe and sidecar` });
  log(`starting ${name} under callgrind (slow)`);
  const running: RunningTarget = await factory().start(upstream);
  try {
    const counter = callgrindCounter(running.pid!, dumpDir, name);
    const endpoint = { ...upstream, host: running.host, port: running.port };
    const results: Measurement[] = [];
    for (const scenario of SCENARIOS.filter((s) => bench.options.scenarios.includes(s.name) && s.targets.includes(name))) {
      const measured = await measureScenario(bench.processes, counter, endpoint, scenario, bench.options, name);
      log(`${name} ${scenario.name}: ${Math.round(measured.perTransaction).toLocaleString('en')} instructions per transaction on the event loop`);
      results.push(measured);
    }
    return results;
  } finally {
    await running.stop();
  }
}

function formatTable(measurements: readonly Measurement[], options: InstructionOptions): string {
  const lines = [`instructions per transaction (callgrind, 1 client, -M ${options.mode}, ${options.transactions} transactions over a ${options.base}-transaction run)`, ''];
  lines.push('| scenario | target | instructions / transaction (event loop) | vs node-pipe | all threads (indicative) |', '| --- | --- | ---: | ---: | ---: |');
  for (const measured of measurements) {
    const pipe = measurements.find((other) => other.target === 'node-pipe' && other.scenario === measured.scenario);
    const ratio = pipe ? `${(measured.perTransaction / pipe.perTransaction).toFixed(2)}x` : '';
    const all = Math.round(measured.perTransactionAllThreads).toLocaleString('en');
    lines.push(`| ${measured.scenario} | ${measured.target} | ${Math.round(measured.perTransaction).toLocaleString('en')} | ${ratio} | ${all} |`);
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  requireBinaries([
    { binary: 'valgrind', neededBy: 'counting instructions' },
    { binary: 'callgrind_control', neededBy: 'counting instructions' },
    { binary: 'postgres', neededBy: 'the PostgreSQL server under test' },
    { binary: 'pgbench', neededBy: 'every measurement' },
  ]);
  const processes = new ChildProcessGroup();
  const workDir = await mkdtemp(join(tmpdir(), 'gatehouse-bench-instructions-'));
  const stop = () => void processes.close('SIGINT');
  process.once('SIGINT', stop);
  process.once('exit', () => processes.killAllNow());
  const server = await startPostgres();
  try {
    const upstream: Endpoint = { host: server.host, port: server.port, user: server.admin.user, password: server.admin.password, database: server.database };
    await initialisePgbench(processes, 'pgbench', upstream, 1);
    if (options.scenarios.includes('wide-masked')) {
      const client = new pg.Client({ ...upstream, ssl: false });
      await client.connect();
      await client.query(createWideTableSql()).finally(() => client.end());
    }
    const measurements: Measurement[] = [];
    for (const target of options.targets) measurements.push(...(await measureTarget({ processes, workDir, options }, target, upstream)));
    process.stdout.write(formatTable(measurements, options));
    return 0;
  } finally {
    await processes.close('done');
    await server.stop();
    await rm(workDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
