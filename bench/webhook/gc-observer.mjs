// Loaded into the benchmark's operator with `node --import` when run.ts gets --operator-gc: prints
// one line per garbage collection (start as epoch ms, duration ms, kind: 1 minor, 2 major,
// 4 incremental, 8 weak callbacks) so the harness can add up the GC pauses inside each burst.
import { PerformanceObserver, performance } from 'node:perf_hooks';

const origin = performance.timeOrigin;
new PerformanceObserver((list) => {
  let lines = '';
  for (const entry of list.getEntries()) lines += `gatehouse-bench-gc ${(origin + entry.startTime).toFixed(2)} ${entry.duration.toFixed(3)} ${entry.detail?.kind ?? 0}\n`;
  process.stdout.write(lines);
}).observe({ entryTypes: ['gc'] });
