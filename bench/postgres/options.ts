// Command-line flags and BENCH_PG_* environment variables of `npm run bench:postgres`, turned into
// one validated options object (flags win over the environment, which wins over the defaults).
import { parseArgs } from 'node:util';
import { BenchError } from './bench-errors.js';
import { QUERY_MODES, type QueryMode } from './pgbench.js';
import { SCENARIOS } from './scenarios.js';

export const TARGET_NAMES = ['direct', 'pgbouncer', 'haproxy', 'sidecar', 'node-pipe'] as const;
/** node-pipe (a bare Node.js proxy, the ceiling for the sidecar) runs when asked for. */
export const DEFAULT_TARGETS = ['direct', 'pgbouncer', 'haproxy', 'sidecar'] as const;

/**
 * Node flags the sidecar runs with, as its container image is to set them: a 2 MiB young generation
 * (semi-space) instead of 16 MiB, and the SQL parser's WebAssembly kept on V8's baseline compiler
 * (Liftoff), whose optimising tier-up of the ~12 MB module takes ~30 MB of memory that is never given
 * back; cache misses parse ~18% slower, hits are unaffected. bench/README.md has the measurements.
 */
export const DEFAULT_SIDECAR_NODE_OPTIONS = ['--max-semi-space-size=2', '--liftoff-only'] as const;

export interface BenchOptions {
  readonly help: boolean;
  readonly scale: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  /** How many times the whole target sequence runs; the report shows the median round. */
  readonly rounds: number;
  readonly clients: readonly number[];
  /** pgbench -j; undefined means min(clients, CPUs) per run. */
  readonly threads?: number;
  readonly modes: readonly QueryMode[];
  readonly targets: readonly string[];
  readonly scenarios: readonly string[];
  readonly jsonPath?: string;
  /** Flags for the node process running the sidecar. */
  readonly sidecarNodeOptions: readonly string[];
}

export const USAGE = `Usage: npm run bench:postgres -- [options]

Runs pgbench against direct PostgreSQL, pgbouncer (session mode), haproxy (TCP mode) and the
Gatehouse sidecar, one after another, and prints TPS, latency and proxy memory side by side.

  --quick               3 s runs with 1 s warm-ups (default 10 s and 2 s)
  --seconds N           seconds per measured run            [BENCH_PG_SECONDS, default 10]
  --warmup N            seconds of warm-up before each run  [BENCH_PG_WARMUP_SECONDS, default 2]
  --rounds N            repeat the target sequence N times, report medians
                                                      [BENCH_PG_ROUNDS, default 1]
  --scale N             pgbench -i scale factor             [BENCH_PG_SCALE, default 10]
  --clients 1,8         client counts (pgbench -c)          [BENCH_PG_CLIENTS]
  --threads N           pgbench -j (default min(clients, CPUs))
  --mode simple         pgbench -M: ${QUERY_MODES.join(', ')}; comma-separated for several
  --targets LIST        subset of ${TARGET_NAMES.join(',')}
                        [default ${DEFAULT_TARGETS.join(',')}]
  --scenarios LIST      subset of ${SCENARIOS.map((s) => s.name).join(',')}
  --json FILE           also write the results as JSON
  --sidecar-node-options "FLAGS"
                        node flags of the sidecar process ("" for Node's defaults)
                        [BENCH_PG_SIDECAR_NODE_OPTIONS, default "${DEFAULT_SIDECAR_NODE_OPTIONS.join(' ')}"]
  -h, --help            this text
`;

function usageError(detail: string): BenchError {
  return new BenchError('GH_BENCH_USAGE', { detail });
}

function positiveInteger(name: string, raw: string): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw usageError(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

function list(raw: string): string[] {
  return raw.split(',').map((item) => item.trim()).filter(Boolean);
}

function subsetOf<T extends string>(name: string, raw: string, allowed: readonly T[]): T[] {
  const items = list(raw);
  const unknown = items.filter((item) => !(allowed as readonly string[]).includes(item));
  if (unknown.length > 0 || items.length === 0) {
    throw usageError(`${name} takes a comma-separated subset of ${allowed.join(', ')}, got "${raw}"`);
  }
  return items as T[];
}

export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): BenchOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        quick: { type: 'boolean' },
        seconds: { type: 'string' },
        warmup: { type: 'string' },
        rounds: { type: 'string' },
        scale: { type: 'string' },
        clients: { type: 'string' },
        threads: { type: 'string' },
        mode: { type: 'string' },
        targets: { type: 'string' },
        scenarios: { type: 'string' },
        json: { type: 'string' },
        'sidecar-node-options': { type: 'string' },
      },
    }).values;
  } catch (error) {
    throw usageError(error instanceof Error ? error.message : String(error));
  }
  const quick = parsed.quick === true;
  const seconds = parsed.seconds ?? env.BENCH_PG_SECONDS ?? (quick ? '3' : '10');
  const warmup = parsed.warmup ?? env.BENCH_PG_WARMUP_SECONDS ?? (quick ? '1' : '2');
  const clients = list(parsed.clients ?? env.BENCH_PG_CLIENTS ?? '1,8').map((c) => positiveInteger('--clients', c));
  if (clients.length === 0) throw usageError('--clients needs at least one client count');
  return {
    help: parsed.help === true,
    scale: positiveInteger('--scale', parsed.scale ?? env.BENCH_PG_SCALE ?? '10'),
    seconds: positiveInteger('--seconds', seconds),
    warmupSeconds: positiveInteger('--warmup', warmup),
    rounds: positiveInteger('--rounds', parsed.rounds ?? env.BENCH_PG_ROUNDS ?? '1'),
    clients,
    threads: parsed.threads === undefined ? undefined : positiveInteger('--threads', parsed.threads),
    modes: subsetOf('--mode', parsed.mode ?? 'simple', QUERY_MODES),
    targets: subsetOf('--targets', parsed.targets ?? DEFAULT_TARGETS.join(','), TARGET_NAMES),
    scenarios: subsetOf('--scenarios', parsed.scenarios ?? SCENARIOS.map((s) => s.name).join(','), SCENARIOS.map((s) => s.name)),
    jsonPath: parsed.json,
    sidecarNodeOptions: (parsed['sidecar-node-options'] ?? env.BENCH_PG_SIDECAR_NODE_OPTIONS ?? DEFAULT_SIDECAR_NODE_OPTIONS.join(' '))
      .split(/\s+/)
      .filter((flag) => flag !== ''),
  };
}
