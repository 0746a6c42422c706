// CLI entry of `npm run bench:postgres`: starts a throwaway PostgreSQL, loads pgbench data and the
// wide table, then measures each target (direct, pgbouncer, haproxy, sidecar) one after another and
// prints the comparison table (and JSON with --json). Every child process is stopped on exit or Ctrl-C.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres, type PostgresServer } from '../../testing/postgres-server.js';
import { BenchError, isBenchError } from './bench-errors.js';
import { requireBinaries, type BinaryNeed } from './binaries.js';
import { ChildProcessGroup } from './child-processes.js';
import { busyMachineWarning, describeMachine, type MachineInfo } from './machine-info.js';
import { parseOptions, USAGE, type BenchOptions } from './options.js';
import { initialisePgbench, runPgbench, type Endpoint, type QueryMode } from './pgbench.js';
import { readProcessCpuUs, readProcessMemory } from './process-memory.js';
import { compareToBaselines, cpuPerTransaction, foldSamples, formatReport, type Sample, type SkippedTarget } from './report.js';
import { SCENARIOS, type Scenario } from './scenarios.js';
import { directTarget } from './targets/direct.js';
import { haproxyTarget } from './targets/haproxy.js';
import { nodePipeTarget } from './targets/node-pipe.js';
import { pgbouncerTarget } from './targets/pgbouncer.js';
import { sidecarTarget } from './targets/sidecar.js';
import type { BenchTarget, RunningTarget, TargetContext } from './targets/target.js';
import { createWideTableSql } from './wide-table.js';

/** Enough shared_buffers to hold scale-10 pgbench_accounts, so runs measure proxies, not disk. */
const POSTGRES_SETTINGS = ['shared_buffers = 256MB'];

const TARGET_FACTORIES: Readonly<Record<string, (context: TargetContext, options: BenchOptions) => BenchTarget>> = {
  direct: directTarget,
  pgbouncer: pgbouncerTarget,
  haproxy: haproxyTarget,
  sidecar: (context, options) => sidecarTarget(context, options.sidecarNodeOptions),
  'node-pipe': nodePipeTarget,
};

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function log(message: string): void {
  process.stderr.write(`[bench:postgres] ${message}\n`);
}

/** What the run has learned so far, and the cleanup it owes. */
interface BenchRun {
  readonly options: BenchOptions;
  readonly processes: ChildProcessGroup;
  readonly binaries: ReadonlyMap<string, string>;
  /** Taken before anything starts, so its load average is the machine's, not ours. */
  readonly machine: MachineInfo;
  readonly workDir: string;
  readonly samples: Sample[];
  readonly skipped: SkippedTarget[];
  /** Set by the first SIGINT/SIGTERM; every step checks it before starting. */
  interruptedBy?: string;
}

function throwIfInterrupted(bench: BenchRun): void {
  if (bench.interruptedBy) throw new BenchError('GH_BENCH_INTERRUPTED', { signal: bench.interruptedBy });
}

function selectedScenarios(options: BenchOptions): Scenario[] {
  return SCENARIOS.filter((scenario) => options.scenarios.includes(scenario.name));
}

function binaryNeeds(options: BenchOptions): BinaryNeed[] {
  const needs: BinaryNeed[] = [
    { binary: 'postgres', neededBy: 'the PostgreSQL server under test' },
    { binary: 'pgbench', neededBy: 'every measurement' },
  ];
  for (const target of ['pgbouncer', 'haproxy']) {
    if (options.targets.includes(target)) needs.push({ binary: target, neededBy: `the ${target} target` });
  }
  return needs;
}

async function loadData(bench: BenchRun, upstream: Endpoint): Promise<void> {
  if (bench.options.scenarios.includes('select-only')) {
    log(`pgbench -i -s ${bench.options.scale}`);
    await initialisePgbench(bench.processes, bench.binaries.get('pgbench') ?? 'pgbench', upstream, bench.options.scale);
  }
  throwIfInterrupted(bench);
  if (bench.options.scenarios.includes('wide-masked')) {
    log('creating the wide table');
    const client = new pg.Client({ ...upstream, ssl: false });
    await client.connect();
    try {
      await client.query(createWideTableSql());
    } finally {
      await client.end();
    }
  }
}

function threadsFor(options: BenchOptions, clients: number): number {
  return Math.min(clients, options.threads ?? availableParallelism());
}

interface RunPlan {
  readonly round: number;
  readonly scenario: Scenario;
  readonly mode: QueryMode;
  readonly clients: number;
}

/** One warm-up, one measured run, then the proxy's memory; failures become a row, not an abort. */
async function measure(bench: BenchRun, target: string, running: RunningTarget, upstream: Endpoint, plan: RunPlan): Promise<Sample> {
  const { round, scenario, mode, clients } = plan;
  const threads = threadsFor(bench.options, clients);
  const base = { scenario: scenario.name, target, clients, threads, mode, round };
  const run = {
    targetName: target,
    endpoint: { ...upstream, host: running.host, port: running.port },
    workload: scenario.workload,
    clients,
    threads,
    mode,
  };
  const pgbench = bench.binaries.get('pgbench') ?? 'pgbench';
  try {
    await runPgbench(bench.processes, pgbench, { ...run, seconds: bench.options.warmupSeconds });
    throwIfInterrupted(bench);
    const proxyBefore = running.pid === undefined ? undefined : await readProcessCpuUs(running.pid);
    const harnessBefore = process.cpuUsage();
    const result = await runPgbench(bench.processes, pgbench, { ...run, seconds: bench.options.seconds });
    const harness = process.cpuUsage(harnessBefore);
    const proxyAfter = running.pid === undefined ? undefined : await readProcessCpuUs(running.pid);
    const memory = running.pid === undefined ? undefined : await readProcessMemory(running.pid);
    const cpu = cpuPerTransaction(result.transactions, harness.user + harness.system, proxyBefore, proxyAfter);
    log(`round ${round} ${target} ${scenario.name} -M ${mode} -c ${clients}: ${result.tps.toFixed(0)} tps, ${result.latencyAverageMs.toFixed(3)} ms`);
    return { ...base, result, memory, cpu };
  } catch (error) {
    throwIfInterrupted(bench);
    log(`round ${round} ${target} ${scenario.name} -M ${mode} -c ${clients} failed: ${messageOf(error)}`);
    return { ...base, error: messageOf(error) };
  }
}

async function benchmarkTarget(bench: BenchRun, name: string, upstream: Endpoint, round: number): Promise<void> {
  const context: TargetContext = {
    workDir: bench.workDir,
    processes: bench.processes,
    binary: (binary) => bench.binaries.get(binary) ?? binary,
  };
  const target = TARGET_FACTORIES[name](context, bench.options);
  let running: RunningTarget;
  try {
    running = await target.start(upstream);
  } catch (error) {
    throwIfInterrupted(bench);
    const reason = messageOf(error);
    log(`skipping ${name}: ${reason}`);
    bench.skipped.push({ target: name, reason, ...(isBenchError(error) ? { code: error.code } : {}) });
    return;
  }
  try {
    for (const scenario of selectedScenarios(bench.options).filter((s) => s.targets.includes(name))) {
      for (const mode of bench.options.modes) {
        for (const clients of bench.options.clients) {
          bench.samples.push(await measure(bench, name, running, upstream, { round, scenario, mode, clients }));
        }
      }
    }
  } finally {
    await running.stop();
  }
}

async function writeJson(bench: BenchRun, postgresVersion: string, text: string): Promise<void> {
  if (!bench.options.jsonPath) return;
  const { machine } = bench;
  const { help: _help, ...settings } = bench.options;
  const document = {
    generatedAt: new Date().toISOString(),
    machine: { ...machine, versions: { ...machine.versions, postgres: postgresVersion } },
    settings: { ...settings, postgresSettings: POSTGRES_SETTINGS },
    scenarios: selectedScenarios(bench.options),
    rows: compareToBaselines(foldSamples(bench.samples)),
    skipped: bench.skipped,
    table: text,
  };
  await writeFile(bench.options.jsonPath, `${JSON.stringify(document, null, 2)}\n`);
  log(`wrote ${bench.options.jsonPath}`);
}

async function serverVersion(upstream: Endpoint): Promise<string> {
  const client = new pg.Client({ ...upstream, ssl: false });
  await client.connect();
  try {
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    return rows[0]?.server_version ?? 'unknown';
  } finally {
    await client.end();
  }
}

async function runBenchmark(bench: BenchRun, cleanups: Array<() => Promise<void>>): Promise<void> {
  const server: PostgresServer = await startPostgres({ settings: POSTGRES_SETTINGS });
  cleanups.push(() => server.stop());
  throwIfInterrupted(bench);
  const upstream: Endpoint = { host: server.host, port: server.port, user: server.admin.user, password: server.admin.password, database: server.database };
  await loadData(bench, upstream);
  // Rounds interleave the targets (direct, pgbouncer, ..., direct, pgbouncer, ...) so that drift in
  // the machine's speed spreads over all of them instead of favouring whichever ran first.
  for (let round = 1; round <= bench.options.rounds; round += 1) {
    for (const name of bench.options.targets.filter((target) => !bench.skipped.some((skip) => skip.target === target))) {
      throwIfInterrupted(bench);
      await benchmarkTarget(bench, name, upstream, round);
    }
  }
  const text = formatReport(compareToBaselines(foldSamples(bench.samples)), {
    scenarios: selectedScenarios(bench.options),
    seconds: bench.options.seconds,
    rounds: bench.options.rounds,
    skipped: bench.skipped,
    ...(bench.options.targets.includes('sidecar') ? { sidecarNodeOptions: bench.options.sidecarNodeOptions } : {}),
  });
  process.stdout.write(`\n${text}`);
  await writeJson(bench, await serverVersion(upstream), text);
}

/** 0 when everything ran (a target that is not available yet is fine), 1 when something failed. */
function exitCodeOf(bench: BenchRun): number {
  const failedStart = bench.skipped.some((skip) => skip.code !== 'GH_BENCH_TARGET_UNAVAILABLE');
  return failedStart || bench.samples.some((sample) => sample.error !== undefined) ? 1 : 0;
}

async function main(argv: readonly string[]): Promise<number> {
  const options = parseOptions(argv, process.env);
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const binaries = requireBinaries(binaryNeeds(options));
  const warning = busyMachineWarning();
  if (warning) log(`warning: ${warning}`);
  const machine = await describeMachine(binaries);
  const processes = new ChildProcessGroup();
  const workDir = await mkdtemp(join(tmpdir(), 'gatehouse-bench-'));
  // pgbouncer drops to the postgres user and must still reach its config under this dir.
  await chmod(workDir, 0o711);
  const bench: BenchRun = { options, processes, binaries, machine, workDir, samples: [], skipped: [] };
  const cleanups: Array<() => Promise<void>> = [() => rm(workDir, { recursive: true, force: true })];
  const onSignal = (signal: NodeJS.Signals) => {
    // A second Ctrl-C means "now": the exit handler below still kills every child.
    if (bench.interruptedBy) process.exit(130);
    bench.interruptedBy = signal;
    log(`${signal}: stopping child processes and PostgreSQL`);
    processes.close(signal).catch((error: unknown) => log(`while stopping: ${String(error)}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', () => processes.killAllNow());
  try {
    await runBenchmark(bench, cleanups);
    return exitCodeOf(bench);
  } catch (error) {
    if (bench.interruptedBy) return 130;
    throw error;
  } finally {
    await processes.close('cleanup');
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => log(`cleanup failed: ${String(error)}`));
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${isBenchError(error) ? `${error.code}: ` : ''}${messageOf(error)}\n`);
    process.exitCode = 1;
  },
);
