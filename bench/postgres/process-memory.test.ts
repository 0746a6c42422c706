import { parseProcStatCpuUs, parseProcStatus, readProcessCpuUs, readProcessMemory } from './process-memory.js';

describe('process memory', () => {
  test('reads VmRSS and VmHWM from /proc/<pid>/status', () => {
    const status = 'Name:\tpgbouncer\nVmPeak:\t   20000 kB\nVmHWM:\t    9100 kB\nVmRSS:\t    8704 kB\nThreads:\t1\n';
    expect(parseProcStatus(status)).toEqual({ rssKiB: 8704, peakRssKiB: 9100 });
    expect(parseProcStatus('Name:\tkthreadd\n')).toBeUndefined();
  });

  test('measures a live process and returns undefined for one that is gone', async () => {
    const own = await readProcessMemory(process.pid);
    expect(own?.rssKiB).toBeGreaterThan(0);
    expect(own!.peakRssKiB).toBeGreaterThanOrEqual(own!.rssKiB);
    expect(await readProcessMemory(2 ** 22 + 1)).toBeUndefined();
  });

  test('reads user + system CPU time from /proc/<pid>/stat, whatever the command name holds', () => {
    const stat = '4242 (node (sidecar) x) S 1 4242 4242 0 -1 4194304 9000 0 0 0 1234 567 0 0 20 0 11 0 100 1000000 20000 18446744073709551615';
    expect(parseProcStatCpuUs(stat)).toBe((1234 + 567) * 10_000);
    expect(parseProcStatCpuUs('4242 (x) S 1')).toBeUndefined();
  });

  test('reads the CPU time of a live process, which grows as it works, and undefined for one that is gone', async () => {
    const before = await readProcessCpuUs(process.pid);
    // 50 ms of CPU: five of the kernel's 10 ms ticks.
    const start = process.cpuUsage();
    while (process.cpuUsage(start).user < 50_000) Math.sqrt(Math.random());
    const after = await readProcessCpuUs(process.pid);
    expect(after).toBeGreaterThan(before!);
    expect(await readProcessCpuUs(2 ** 22 + 1)).toBeUndefined();
  });
});
