// What the harness needs from anything it benchmarks: start in front of an upstream PostgreSQL, say
// where clients connect (and which process to measure memory of), stop.
import type { ChildProcessGroup, ManagedProcess } from '../child-processes.js';
import type { Endpoint } from '../pgbench.js';

export type Upstream = Endpoint;

export interface RunningTarget {
  readonly host: string;
  readonly port: number;
  /** The proxy process whose RSS is reported; absent for direct connections. */
  readonly pid?: number;
  stop(): Promise<void>;
}

export interface BenchTarget {
  readonly name: string;
  start(upstream: Upstream): Promise<RunningTarget>;
}

/** What the harness hands to target factories: where to write config files, how to spawn processes. */
export interface TargetContext {
  /** A private temp dir for this target's files, removed by the harness at exit. */
  readonly workDir: string;
  readonly processes: ChildProcessGroup;
  /** Absolute path of the binary, found before the run started. */
  binary(name: string): string;
  /**
   * A command that Node.js targets run under, e.g. valgrind with its options (instructions.ts);
   * node's path and arguments are appended to it.
   */
  readonly nodeLauncher?: readonly string[];
  /** How long a target may take to listen; waitForListening's default when absent (valgrind is slow to start). */
  readonly startTimeoutMs?: number;
}

/** Spawns node with `args`, under the context's launcher when it has one. */
export function spawnNode(context: TargetContext, name: string, args: readonly string[]): ManagedProcess {
  const launcher = context.nodeLauncher ?? [];
  return launcher.length === 0
    ? context.processes.spawn(name, process.execPath, args)
    : context.processes.spawn(name, launcher[0]!, [...launcher.slice(1), process.execPath, ...args]);
}
