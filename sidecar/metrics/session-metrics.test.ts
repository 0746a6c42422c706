import { createSidecarMetrics } from './sidecar-metrics.js';
import { SampledLatency, SessionMetrics } from './session-metrics.js';

async function sum(metric: { get(): Promise<{ values: readonly { value: number; labels: Record<string, string | number>; metricName?: string }[] }> }, labels: Record<string, string>, sampleName?: string): Promise<number> {
  const { values } = await metric.get();
  return values
    .filter((sample) => sampleName === undefined || sample.metricName === sampleName)
    .filter((sample) => Object.entries(labels).every(([name, value]) => String(sample.labels[name]) === value))
    .reduce((total, sample) => total + sample.value, 0);
}

describe('SessionMetrics', () => {
  test('tallied counts show, exactly, in the counters when they are collected', async () => {
    const metrics = createSidecarMetrics({ defaultMetrics: false });
    const session = new SessionMetrics(metrics, { resource: 'db', identity: 'ci' });
    const other = new SessionMetrics(metrics, { resource: 'db', identity: 'cd' });
    for (let index = 0; index < 1000; index++) session.statement('read', 'allow');
    session.statement('ddl', 'deny');
    other.statement('read', 'allow');
    session.blocked('p/no-ddl');
    session.maskedValues(3);
    session.maskedValues(0);
    expect(await sum(metrics.statements, { identity: 'ci', operation: 'read', decision: 'allow' })).toBe(1000);
    expect(await sum(metrics.statements, { operation: 'read' })).toBe(1001);
    expect(await sum(metrics.statements, { identity: 'ci', operation: 'ddl', decision: 'deny' })).toBe(1);
    expect(await sum(metrics.blocked, { identity: 'ci', rule: 'p/no-ddl' })).toBe(1);
    expect(await sum(metrics.maskedValues, { identity: 'ci', strategy: 'any' })).toBe(3);
    // Collected again with nothing new: the same totals, nothing added twice.
    session.statement('read', 'allow');
    expect(await sum(metrics.statements, { identity: 'ci', operation: 'read' })).toBe(1001);
    expect(await metrics.registry.metrics()).toContain('gatehouse_sidecar_statements_total{resource="db",identity="ci",operation="read",decision="allow"} 1001');
  });

  test('statements of kinds that alternate are each counted under their own operation and decision', async () => {
    const metrics = createSidecarMetrics({ defaultMetrics: false });
    const session = new SessionMetrics(metrics, { resource: 'db', identity: 'ci' });
    const kinds = [['read', 'allow'], ['read', 'deny'], ['write', 'deny'], ['write', 'allow']] as const;
    const expected = new Map<string, number>();
    // A fixed pseudo-random walk: runs of one kind and switches of operation, decision or both.
    let state = 7;
    for (let index = 0; index < 500; index++) {
      state = (state * 1103515245 + 12345) % 2147483648;
      const [operation, decision] = kinds[state % 4]!;
      // Fresh string objects too, not only the same constants: equal labels are one series.
      session.statement(index % 3 === 0 ? `${operation} `.trim() : operation, decision);
      expected.set(`${operation}/${decision}`, (expected.get(`${operation}/${decision}`) ?? 0) + 1);
    }
    for (const [operation, decision] of kinds) {
      expect(await sum(metrics.statements, { operation, decision })).toBe(expected.get(`${operation}/${decision}`) ?? 0);
    }
  });

  test('added latency is observed for the first message and then one in every LATENCY_SAMPLE_EVERY', async () => {
    const metrics = createSidecarMetrics({ defaultMetrics: false });
    const session = new SessionMetrics(metrics, { resource: 'db', identity: 'ci' });
    for (let index = 0; index < 33; index++) session.requestLatency.end(session.requestLatency.start());
    const count = await sum(metrics.addedLatency, { resource: 'db', direction: 'request' }, 'gatehouse_sidecar_added_latency_seconds_count');
    expect(count).toBe(3); // messages 1, 17 and 33
  });
});

describe('SampledLatency', () => {
  test('times the first message, then every n-th', () => {
    const observed: number[] = [];
    const latency = new SampledLatency((seconds) => observed.push(seconds), 4);
    const sampled = Array.from({ length: 9 }, () => latency.start() !== undefined);
    expect(sampled).toEqual([true, false, false, false, true, false, false, false, true]);
    latency.end(undefined);
    latency.end(performance.now());
    expect(observed).toHaveLength(1);
    expect(observed[0]).toBeGreaterThanOrEqual(0);
  });
});
