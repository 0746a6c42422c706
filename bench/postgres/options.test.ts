import { parseOptions } from './options.js';
import { isBenchError } from './bench-errors.js';

describe('parseOptions', () => {
  test('defaults: 10 s runs, 2 s warm-ups, scale 10, 1 and 8 clients, every target and scenario', () => {
    expect(parseOptions([], {})).toMatchObject({
      seconds: 10, warmupSeconds: 2, rounds: 1, scale: 10, clients: [1, 8], modes: ['simple'],
      targets: ['direct', 'pgbouncer', 'haproxy', 'sidecar'], scenarios: ['select-only', 'wide-masked'],
    });
  });

  test('--quick shortens runs; the environment overrides it and flags override the environment', () => {
    expect(parseOptions(['--quick'], {})).toMatchObject({ seconds: 3, warmupSeconds: 1 });
    expect(parseOptions(['--quick'], { BENCH_PG_SECONDS: '5' })).toMatchObject({ seconds: 5, warmupSeconds: 1 });
    expect(parseOptions(['--seconds', '7'], { BENCH_PG_SECONDS: '5', BENCH_PG_SCALE: '2' })).toMatchObject({ seconds: 7, scale: 2 });
  });

  test('the sidecar runs with the recommended node flags unless told otherwise', () => {
    expect(parseOptions([], {}).sidecarNodeOptions).toEqual(['--max-semi-space-size=2', '--liftoff-only']);
    expect(parseOptions(['--sidecar-node-options', ''], {}).sidecarNodeOptions).toEqual([]);
    expect(parseOptions([], { BENCH_PG_SIDECAR_NODE_OPTIONS: ' --max-semi-space-size=4 ' }).sidecarNodeOptions).toEqual(['--max-semi-space-size=4']);
  });

  test('lists take comma-separated subsets', () => {
    expect(parseOptions(['--clients', '1,4,16', '--mode', 'prepared,simple', '--targets', 'direct,haproxy'], {}))
      .toMatchObject({ clients: [1, 4, 16], modes: ['prepared', 'simple'], targets: ['direct', 'haproxy'] });
  });

  test.each([
    [['--mode', 'fast']],
    [['--seconds', '0']],
    [['--clients', 'many']],
    [['--targets', 'envoy']],
    [['--unknown']],
  ])('rejects %j with GH_BENCH_USAGE', (argv) => {
    let thrown: unknown;
    try {
      parseOptions(argv, {});
    } catch (error) {
      thrown = error;
    }
    expect(isBenchError(thrown, 'GH_BENCH_USAGE')).toBe(true);
  });
});
