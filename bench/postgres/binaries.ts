// Finds the external programs the benchmark runs (pgbench, psql, pgbouncer, haproxy, the PostgreSQL
// server) and fails with one message naming all that are missing, before any time is spent.
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { BenchError } from './bench-errors.js';

/** /usr/sbin holds pgbouncer and haproxy on Debian but is not on a normal user's PATH. */
const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin'];

export function findBinary(name: string, path = process.env.PATH ?? ''): string | undefined {
  const dirs = [...path.split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  return dirs.map((dir) => join(dir, name)).find((candidate) => existsSync(candidate));
}

export interface BinaryNeed {
  readonly binary: string;
  readonly neededBy: string;
}

/** Returns absolute paths by name; throws GH_BENCH_MISSING_BINARY listing every missing one. */
export function requireBinaries(needs: readonly BinaryNeed[]): ReadonlyMap<string, string> {
  const found = new Map<string, string>();
  const missing: BinaryNeed[] = [];
  for (const need of needs) {
    const path = findBinary(need.binary);
    if (path) found.set(need.binary, path);
    else missing.push(need);
  }
  if (missing.length > 0) {
    throw new BenchError('GH_BENCH_MISSING_BINARY', {
      binary: [...new Set(missing.map((m) => m.binary))].join(', '),
      neededBy: [...new Set(missing.map((m) => m.neededBy))].join(', '),
    });
  }
  return found;
}
