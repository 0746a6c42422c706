import { histogramDelta, histogramQuantile, parseHistogram, percentile, summarize } from './latency.js';

describe('percentile / summarize', () => {
  it('uses the nearest rank', () => {
    const samples = Array.from({ length: 100 }, (_, index) => index + 1);
    expect(percentile(samples, 0.5)).toBe(50);
    expect(percentile(samples, 0.99)).toBe(99);
    expect(percentile([5, 1, 3], 0.5)).toBe(3);
    expect(summarize([4, 2])).toEqual({ count: 2, p50: 2, p99: 4, max: 4, mean: 3 });
    expect(Number.isNaN(percentile([], 0.5))).toBe(true);
  });
});

const exposition = (fast: number, slow: number) => `# HELP gatehouse_admission_request_duration_seconds Time
# TYPE gatehouse_admission_request_duration_seconds histogram
gatehouse_admission_request_duration_seconds_bucket{le="0.001",webhook="mutate-pods"} ${fast}
gatehouse_admission_request_duration_seconds_bucket{le="0.01",webhook="mutate-pods"} ${fast + slow}
gatehouse_admission_request_duration_seconds_bucket{le="+Inf",webhook="mutate-pods"} ${fast + slow}
gatehouse_admission_request_duration_seconds_sum{webhook="mutate-pods"} ${fast * 0.0005 + slow * 0.005}
gatehouse_admission_request_duration_seconds_count{webhook="mutate-pods"} ${fast + slow}
gatehouse_admission_request_duration_seconds_bucket{le="0.001",webhook="validate-gatehouse"} 7
`;

describe('Prometheus histogram helpers', () => {
  const name = 'gatehouse_admission_request_duration_seconds';

  it('reads one labelled histogram and estimates quantiles like histogram_quantile', () => {
    const histogram = parseHistogram(exposition(90, 10), name, { webhook: 'mutate-pods' });
    expect(histogram.count).toBe(100);
    expect(histogram.buckets.map((bucket) => bucket.count)).toEqual([90, 100, 100]);
    // p50 falls in the first bucket (0, 1 ms], which holds 90: 50 / 90 of 1 ms.
    expect(histogramQuantile(histogram, 0.5)).toBeCloseTo(50 / 90, 5);
    // p99 falls in the (1 ms, 10 ms] bucket: 1 + 9 × (99 − 90) / 10 = 9.1 ms.
    expect(histogramQuantile(histogram, 0.99)).toBeCloseTo(9.1, 5);
  });

  it('subtracts an earlier reading', () => {
    const before = parseHistogram(exposition(50, 0), name, { webhook: 'mutate-pods' });
    const after = parseHistogram(exposition(50, 10), name, { webhook: 'mutate-pods' });
    const delta = histogramDelta(after, before);
    expect(delta.count).toBe(10);
    expect(delta.buckets.map((bucket) => bucket.count)).toEqual([0, 10, 10]);
    expect(histogramQuantile(delta, 0.5)).toBeCloseTo(5.5, 5);
  });
});
