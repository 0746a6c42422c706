// The baseline: pgbench connects straight to PostgreSQL; every ratio in the report is against this.
import type { BenchTarget } from './target.js';

export function directTarget(): BenchTarget {
  return {
    name: 'direct',
    async start(upstream) {
      return { host: upstream.host, port: upstream.port, stop: async () => undefined };
    },
  };
}
