// The Gatehouse sidecar as a benchmark target.
//
// REGISTRATION POINT — not wired yet: start() throws GH_BENCH_TARGET_UNAVAILABLE and the harness
// skips the target with a note. To plug the sidecar in, make start():
//   - run the sidecar as a child process (context.processes.spawn), so the reported RSS is the
//     sidecar's alone and it does not share the harness's event loop;
//   - have it listen on a free 127.0.0.1 port (freePort() from testing/postgres-server.ts) and
//     forward to `upstream`, logging into PostgreSQL as upstream.user with upstream.password, plain
//     TCP towards pgbench (it connects with PGSSLMODE=disable);
//   - give it a policy (written under context.workDir) that allows SELECT on pgbench_* and on
//     WIDE_TABLE.name, masking WIDE_TABLE.maskedColumns (see ../wide-table.ts);
//   - wait with waitForListening(proc, host, port) and return { host, port, pid: proc.pid, stop }.
import { BenchError } from '../bench-errors.js';
import type { BenchTarget, TargetContext } from './target.js';

export function sidecarTarget(_context: TargetContext): BenchTarget {
  return {
    name: 'sidecar',
    async start() {
      throw new BenchError('GH_BENCH_TARGET_UNAVAILABLE', {
        target: 'sidecar',
        detail: 'bench/postgres/targets/sidecar.ts does not start the sidecar yet (no `gatehouse dev` command to run)',
      });
    },
  };
}
