// Reads a process's resident memory from /proc/<pid>/status (VmRSS now and VmHWM, the peak since it
// started, which is what matters for a proxy that buffers result sets) and its CPU time from
// /proc/<pid>/stat (what it costs per transaction, which the 2 shared cores make TPS depend on).
import { readFile } from 'node:fs/promises';

export interface ProcessMemory {
  readonly rssKiB: number;
  readonly peakRssKiB: number;
}

export function parseProcStatus(status: string): ProcessMemory | undefined {
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status);
    return match ? Number(match[1]) : undefined;
  };
  const rssKiB = field('VmRSS');
  const peakRssKiB = field('VmHWM');
  return rssKiB === undefined || peakRssKiB === undefined ? undefined : { rssKiB, peakRssKiB };
}

/** Undefined when the process is gone or /proc is not there (not Linux). */
export async function readProcessMemory(pid: number): Promise<ProcessMemory | undefined> {
  try {
    return parseProcStatus(await readFile(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Linux reports a process's CPU times in /proc in units of USER_HZ, which is 100 on every architecture. */
const USER_HZ = 100;

/**
 * CPU time (user + system, every thread) from /proc/<pid>/stat, in microseconds; the fields after
 * the command name, which may itself hold spaces and parentheses, so the text is split after its last ')'.
 */
export function parseProcStatCpuUs(stat: string): number | undefined {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? (ticks * 1_000_000) / USER_HZ : undefined;
}

/** Undefined when the process is gone or /proc is not there (not Linux). */
export async function readProcessCpuUs(pid: number): Promise<number | undefined> {
  try {
    return parseProcStatCpuUs(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}
