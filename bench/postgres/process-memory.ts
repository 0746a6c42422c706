// Reads a process's resident memory from /proc/<pid>/status: VmRSS now and VmHWM, the peak since it
// started, which is what matters for a proxy that buffers result sets.
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
