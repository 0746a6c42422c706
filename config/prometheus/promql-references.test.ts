import { promqlReferences } from './promql-references.js';

describe('promqlReferences', () => {
  it('finds series and labels through aggregations, functions, ranges, offsets and binary operators', () => {
    const refs = promqlReferences(
      'histogram_quantile(0.99, sum by (le, resource) (rate(a_seconds_bucket{namespace=~"$namespace", resource!="x"}[$__rate_interval])))'
      + ' / on(resource) group_left(identity) sum without (pod) (b_total offset 5m) > bool 3 * c unless d{job="op"}',
    );
    expect(refs.series).toEqual(['a_seconds_bucket', 'b_total', 'c', 'd']);
    expect([...refs.labels].sort()).toEqual(['identity', 'job', 'le', 'namespace', 'pod', 'resource']);
  });

  it('does not take functions, keywords, strings or durations for series', () => {
    expect(promqlReferences('absent(up{job="gatehouse-operator"} == 1)').series).toEqual(['up']);
    expect(promqlReferences('sum(x) or vector(0)').series).toEqual(['x']);
    expect(promqlReferences('min by (r) (expiry) - time()').series).toEqual(['expiry']);
    expect(promqlReferences('topk(20, sum by (rule) (increase(blocked[1h:5m])))').series).toEqual(['blocked']);
  });

  it('refuses what it cannot tokenize instead of passing it', () => {
    expect(() => promqlReferences('sum(x{a="unterminated})')).toThrow(/unterminated/);
    expect(() => promqlReferences('sum(x) ; drop')).toThrow(/unexpected/);
  });
});
