import { parseProcStatus, readProcessMemory } from './process-memory.js';

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
});
