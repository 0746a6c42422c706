// Latency summaries for the webhook benchmark: exact percentiles of client-side samples, and
// percentiles estimated from a Prometheus histogram (the operator's own view of its webhook).

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank percentile of samples (ms); q in (0, 1]. */
export function percentile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1];
}

export function summarize(samples: readonly number[]): LatencySummary {
  const total = samples.reduce((sum, value) => sum + value, 0);
  return {
    count: samples.length,
    p50: percentile(samples, 0.5),
    p99: percentile(samples, 0.99),
    max: samples.length === 0 ? Number.NaN : Math.max(...samples),
    mean: samples.length === 0 ? Number.NaN : total / samples.length,
  };
}

export interface HistogramBuckets {
  /** Upper bounds in seconds with cumulative counts, +Inf last. */
  readonly buckets: ReadonlyArray<{ readonly le: number; readonly count: number }>;
  readonly sum: number;
  readonly count: number;
}

/** Reads one histogram (name and label filter) out of Prometheus text exposition. */
export function parseHistogram(text: string, name: string, labels: Readonly<Record<string, string>>): HistogramBuckets {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  const matches = (line: string) => wanted.every((pair) => line.includes(pair));
  const buckets: Array<{ le: number; count: number }> = [];
  let sum = 0;
  let count = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !matches(line)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith(`${name}_bucket{`)) {
      const le = /le="([^"]+)"/.exec(line)?.[1];
      buckets.push({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), count: value });
    } else if (line.startsWith(`${name}_sum`)) sum = value;
    else if (line.startsWith(`${name}_count`)) count = value;
  }
  return { buckets: buckets.sort((a, b) => a.le - b.le), sum, count };
}

/** Subtracts an earlier reading, so a measurement counts only its own requests. */
export function histogramDelta(after: HistogramBuckets, before: HistogramBuckets): HistogramBuckets {
  const earlier = new Map(before.buckets.map((bucket) => [bucket.le, bucket.count]));
  return {
    buckets: after.buckets.map((bucket) => ({ le: bucket.le, count: bucket.count - (earlier.get(bucket.le) ?? 0) })),
    sum: after.sum - before.sum,
    count: after.count - before.count,
  };
}

/** The quantile as Prometheus' histogram_quantile estimates it (linear within the bucket), in ms. */
export function histogramQuantile(histogram: HistogramBuckets, q: number): number {
  const total = histogram.buckets.at(-1)?.count ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let previousLe = 0;
  let previousCount = 0;
  for (const bucket of histogram.buckets) {
    if (bucket.count >= rank) {
      if (!Number.isFinite(bucket.le)) return previousLe * 1000;
      const within = bucket.count - previousCount;
      const fraction = within === 0 ? 0 : (rank - previousCount) / within;
      return (previousLe + (bucket.le - previousLe) * fraction) * 1000;
    }
    previousLe = bucket.le;
    previousCount = bucket.count;
  }
  return previousLe * 1000;
}
