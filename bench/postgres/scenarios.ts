// The workloads the harness measures and which targets each applies to.
import { WIDE_TABLE } from './wide-table.js';

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** pgbench arguments naming the transaction. */
  readonly workload: readonly string[];
  /** Targets that run it; the others are left out of this scenario's rows. */
  readonly targets: readonly string[];
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'select-only',
    description: 'pgbench -S: one primary-key SELECT on pgbench_accounts per transaction',
    workload: ['-S'],
    targets: ['direct', 'pgbouncer', 'haproxy', 'node-pipe', 'sidecar'],
  },
  {
    name: 'wide-masked',
    description: `SELECT * FROM ${WIDE_TABLE.name} LIMIT 1000 (21 columns; the sidecar masks ${WIDE_TABLE.maskedColumns.join(', ')})`,
    workload: ['-f', WIDE_TABLE.scriptFile],
    targets: ['direct', 'pgbouncer', 'node-pipe', 'sidecar'],
  },
];
