// Messages between the control-plane benchmark's processes (parent, operator, sidecar fleets),
// sent over Node's IPC channel.

export interface FleetOptions {
  readonly port: number;
  readonly tls: boolean;
  readonly from: number;
  readonly to: number;
}

export type OperatorCommand =
  | { readonly type: 'change'; readonly revision: number }
  | { readonly type: 'wait-initial' }
  | { readonly type: 'memory' }
  | { readonly type: 'stop' };

export interface MemoryReport {
  readonly rssBytes: number;
  readonly peakRssBytes: number;
  readonly heapUsedBytes: number;
  readonly heapTotalBytes: number;
}

export interface RoundResult {
  readonly revision: number;
  readonly acked: number;
  readonly expected: number;
  /** ms from each node's setSnapshot to its ACK of the new version. */
  readonly latenciesMs: readonly number[];
  /** ms the setSnapshot loop over every node took. */
  readonly setAllMs: number;
  /** ms from the first setSnapshot to the last ACK. */
  readonly allAckedMs: number;
  readonly memory: MemoryReport;
}

export type OperatorEvent =
  | { readonly type: 'listening'; readonly port: number }
  | { readonly type: 'initial-acked'; readonly acked: number; readonly ms: number; readonly memory: MemoryReport; readonly idleRssBytes: number }
  | { readonly type: 'memory'; readonly memory: MemoryReport }
  | { readonly type: 'round'; readonly result: RoundResult };

export type FleetEvent = { readonly type: 'subscribed'; readonly count: number; readonly ms: number; readonly rssBytes: number };

export function nodeId(index: number): string {
  return `sidecar-${String(index).padStart(5, '0')}`;
}

/** VmRSS and VmHWM (peak since start) of this process from /proc, and the V8 heap. */
export async function memoryOfSelf(): Promise<MemoryReport> {
  const { readFile } = await import('node:fs/promises');
  const { rss, heapUsed, heapTotal } = process.memoryUsage();
  const heap = { heapUsedBytes: heapUsed, heapTotalBytes: heapTotal };
  try {
    const status = await readFile('/proc/self/status', 'utf8');
    const kib = (field: string): number => Number(/\s(\d+) kB/.exec(status.split('\n').find((line) => line.startsWith(field)) ?? '')?.[1] ?? 0) * 1024;
    return { rssBytes: kib('VmRSS:'), peakRssBytes: kib('VmHWM:'), ...heap };
  } catch {
    return { rssBytes: rss, peakRssBytes: rss, ...heap };
  }
}
