// What the harness needs from anything it benchmarks: start in front of an upstream PostgreSQL, say
// where clients connect (and which process to measure memory of), stop.
import type { ChildProcessGroup } from '../child-processes.js';
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
}
