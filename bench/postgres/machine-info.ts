// Describes the machine and tool versions a benchmark ran with, so published numbers can be judged
// and regenerated under the same conditions.
import { execFile } from 'node:child_process';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cpus: number;
  readonly memoryGiB: number;
  readonly kernel: string;
  readonly node: string;
  /** 1-minute load average when the description was taken. */
  readonly loadAverage: number;
  /** First line of `<tool> --version` by tool name; absent when the tool was not used. */
  readonly versions: Readonly<Record<string, string>>;
}

async function firstLineOf(binary: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(binary, [...args]);
    return (stdout || stderr).split('\n')[0].trim();
  } catch {
    return 'unknown';
  }
}

/** binaries: tool name to absolute path, as found by requireBinaries. */
export async function describeMachine(binaries: ReadonlyMap<string, string>): Promise<MachineInfo> {
  const versionArgs: Record<string, readonly string[]> = { pgbench: ['--version'], pgbouncer: ['--version'], haproxy: ['-v'] };
  const versions: Record<string, string> = {};
  for (const [tool, args] of Object.entries(versionArgs)) {
    const path = binaries.get(tool);
    if (path) versions[tool] = await firstLineOf(path, args);
  }
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cpus: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    loadAverage: loadavg()[0],
    versions,
  };
}

/**
 * A warning when other work already keeps the CPUs busy: proxies, PostgreSQL and pgbench share the
 * machine, so anything else running skews every ratio. Undefined when the machine looks idle.
 */
export function busyMachineWarning(load = loadavg()[0], cpuCount = availableParallelism()): string | undefined {
  return load > cpuCount * 0.25
    ? `load average is ${load.toFixed(2)} on ${cpuCount} CPUs before the benchmark started; other work will skew the numbers`
    : undefined;
}
