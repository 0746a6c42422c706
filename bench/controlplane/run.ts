// Measures policy distribution: N simulated sidecars (real gRPC clients on loopback, TLS) hold a
// snapshot; one policy edit that touches all of them is set in the operator's cache; the time until
// each has applied and ACKed the new version is reported (p50, p99, max) with the operator's RSS.
// The operator runs in a child process so the RSS is its own, compiled to JavaScript first, as it
// is deployed (--tsx runs it through the TypeScript loader instead, which adds ~30 MiB of loader
// to its RSS); the sidecars run in fleet processes.
// Run: node --import tsx bench/controlplane/run.ts [--sidecars 1000] [--fleets 1] [--rounds 3]
//        [--debounce-ms 50] [--plaintext] [--tsx] [--operator-node-options=--max-semi-space-size=8]
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { TEST_TLS } from '../../operator/control-plane/testing/discovery-fixture.js';
import { loadSamples } from '../../operator/control-plane/testing/sample-snapshots.js';
import type { FleetEvent, FleetOptions, MemoryReport, OperatorCommand, OperatorEvent, RoundResult } from './protocol.js';

const P99_GOAL_MS = 1_000;
const RSS_GOAL_BYTES = 200 * 1024 * 1024;

const { values: args } = parseArgs({
  options: {
    sidecars: { type: 'string', default: '1000' },
    fleets: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
    'debounce-ms': { type: 'string', default: '50' },
    plaintext: { type: 'boolean', default: false },
    tsx: { type: 'boolean', default: false },
    'operator-node-options': { type: 'string', default: '' },
  },
});

const sidecars = Number(args.sidecars);
const fleets = Math.max(1, Number(args.fleets));
const rounds = Math.max(1, Number(args.rounds));
const operatorFlags = args['operator-node-options'].split(/\s+/).filter((flag) => flag !== '');
const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));
const repoRoot = here('../../');
const children: ChildProcess[] = [];
const tempDirs: string[] = [];

function spawn(path: string, env: Record<string, string>, execArgv: string[]): ChildProcess {
  const child = fork(path, [], { execArgv, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.push(child);
  return child;
}

/** Compiles the operator process and what it imports (no type check: the repo's typecheck does that) into a temp folder. */
async function compileOperator(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-cp-bench-'));
  tempDirs.push(dir);
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const flags = ['--noCheck', '--outDir', dir, '--rootDir', repoRoot, '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--esModuleInterop', '--skipLibCheck', '--types', 'node'];
  await promisify(execFile)(process.execPath, [tsc, ...flags, here('./operator-process.ts')]);
  await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
  await symlink(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  return join(dir, 'bench', 'controlplane', 'operator-process.js');
}

async function startOperator(): Promise<ChildProcess> {
  const samples = await loadSamples();
  const env = {
    BENCH_CP_SIDECARS: String(sidecars),
    BENCH_CP_DEBOUNCE_MS: args['debounce-ms'],
    BENCH_CP_PROTO: join(repoRoot, 'api', 'proto', 'gatehouse', 'v1', 'discovery.proto'),
    BENCH_CP_BASE_SNAPSHOT: JSON.stringify(samples.ciRunner),
    ...(args.plaintext ? {} : { BENCH_CP_TLS: JSON.stringify({ keyPem: TEST_TLS.keyPem, certPem: TEST_TLS.certPem }) }),
  };
  if (args.tsx) return spawn(here('./operator-process.ts'), env, ['--import', 'tsx', ...operatorFlags]);
  return spawn(await compileOperator(), env, operatorFlags);
}

function nextMessage<T extends { type: string }>(child: ChildProcess, type: T['type']): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type: string }): void => {
      if (message.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(message as T);
    };
    const onExit = (code: number | null): void => reject(new Error(`${child.spawnargs.at(-1) ?? 'child'} exited (${code}) before sending ${type}`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);
const ms = (value: number): string => (Number.isFinite(value) ? value.toFixed(1) : 'never');
const memoryLine = (memory: MemoryReport): string =>
  `RSS ${mib(memory.rssBytes)} MiB (peak ${mib(memory.peakRssBytes)}), JS heap ${mib(memory.heapUsedBytes)}/${mib(memory.heapTotalBytes)} MiB`;

function printRound(result: RoundResult): void {
  const sorted = [...result.latenciesMs].sort((a, b) => a - b);
  console.log(
    `round ${result.revision}: ${result.acked}/${result.expected} acked | p50 ${ms(percentile(sorted, 50))} ms | p99 ${ms(percentile(sorted, 99))} ms | max ${ms(sorted.at(-1)!)} ms` +
      ` | setSnapshot x${result.expected} took ${ms(result.setAllMs)} ms | last ACK ${ms(result.allAckedMs)} ms after the first set | operator ${memoryLine(result.memory)}`,
  );
}

async function subscribeFleets(operator: ChildProcess): Promise<void> {
  const { port } = await nextMessage<Extract<OperatorEvent, { type: 'listening' }>>(operator, 'listening');
  const perFleet = Math.ceil(sidecars / fleets);
  const ready = await Promise.all(
    Array.from({ length: fleets }, (_, index) => {
      const options: FleetOptions = { port, tls: !args.plaintext, from: index * perFleet, to: Math.min(sidecars, (index + 1) * perFleet) };
      return nextMessage<FleetEvent>(spawn(here('./sidecar-fleet.ts'), { BENCH_CP_FLEET: JSON.stringify(options) }, ['--import', 'tsx']), 'subscribed');
    }),
  );
  operator.send({ type: 'wait-initial' } satisfies OperatorCommand);
  const initial = await nextMessage<Extract<OperatorEvent, { type: 'initial-acked' }>>(operator, 'initial-acked');
  console.log(
    `subscribed: ${initial.acked}/${sidecars} ACKed their first snapshot ${ms(initial.ms)} ms after the operator listened` +
      ` (fleets: ${ready.map((fleet) => `${fleet.count} in ${ms(fleet.ms)} ms, RSS ${mib(fleet.rssBytes)} MiB`).join('; ')})`,
  );
  console.log(`operator with ${sidecars} snapshots and no stream: RSS ${mib(initial.idleRssBytes)} MiB; with ${sidecars} streams: ${memoryLine(initial.memory)}`);
}

async function main(): Promise<void> {
  console.log(
    `control-plane bench: ${sidecars} sidecars in ${fleets} fleet process(es), ${args.plaintext ? 'plaintext' : 'TLS'}, debounce ${args['debounce-ms']} ms,` +
      ` operator ${args.tsx ? 'through tsx' : 'compiled'}${operatorFlags.length ? ` with ${operatorFlags.join(' ')}` : ''}, ${cpus().length} CPUs, node ${process.version}`,
  );
  const operator = await startOperator();
  await subscribeFleets(operator);
  const results: RoundResult[] = [];
  for (let revision = 1; revision <= rounds; revision += 1) {
    await new Promise((resolve) => setTimeout(resolve, 500)); // let the previous round's ACK traffic settle
    operator.send({ type: 'change', revision } satisfies OperatorCommand);
    const { result } = await nextMessage<Extract<OperatorEvent, { type: 'round' }>>(operator, 'round');
    printRound(result);
    results.push(result);
  }
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  operator.send({ type: 'memory' } satisfies OperatorCommand);
  const { memory } = await nextMessage<Extract<OperatorEvent, { type: 'memory' }>>(operator, 'memory');
  const all = results.flatMap((result) => result.latenciesMs).sort((a, b) => a - b);
  const p99 = percentile(all, 99);
  console.log(`operator 3 s after the last round: ${memoryLine(memory)}`);
  console.log(
    `all rounds: p50 ${ms(percentile(all, 50))} ms | p99 ${ms(p99)} ms (goal <= ${P99_GOAL_MS}) | max ${ms(all.at(-1)!)} ms` +
      ` | operator peak RSS ${mib(memory.peakRssBytes)} MiB (goal <= ${mib(RSS_GOAL_BYTES)})`,
  );
  operator.send({ type: 'stop' } satisfies OperatorCommand);
  const met = p99 <= P99_GOAL_MS && memory.peakRssBytes <= RSS_GOAL_BYTES && results.every((result) => result.acked === result.expected);
  console.log(met ? 'goals met' : 'GOALS MISSED');
  process.exitCode = met ? 0 : 1;
}

function cleanUp(): void {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

process.on('exit', cleanUp);
process.on('SIGINT', () => process.exit(130));
main()
  .catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => setTimeout(cleanUp, 1_500).unref());
