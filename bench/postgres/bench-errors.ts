// Error codes of the PostgreSQL benchmark harness. They follow api/errors.ts (stable GH_* code, a
// message that says what to do) but live here because the harness is a dev tool, not product code.

export const BENCH_ERROR_CODES = {
  GH_BENCH_USAGE: { message: '{detail}. Run with --help for usage.' },
  GH_BENCH_MISSING_BINARY: {
    message: '{binary} is not installed (needed by {neededBy}); run `bash scripts/install-bench-deps.sh`.',
  },
  GH_BENCH_TARGET_UNAVAILABLE: { message: '{target} target is not available yet: {detail}' },
  GH_BENCH_PROCESS_EXITED: { message: '{name} exited with {status} before it was ready; its output ends with:\n{output}' },
  GH_BENCH_PROCESS_NOT_READY: { message: '{name} did not accept connections on {address} within {seconds} s.' },
  GH_BENCH_PGBENCH_FAILED: { message: 'pgbench against {target} exited with {status}:\n{output}' },
  GH_BENCH_PGBENCH_OUTPUT: { message: 'Could not read {field} from pgbench output; got:\n{output}' },
  GH_BENCH_INTERRUPTED: { message: 'Interrupted by {signal}; stopped all child processes.' },
} as const satisfies Record<string, { readonly message: string }>;

export type BenchErrorCode = keyof typeof BENCH_ERROR_CODES;

export type BenchErrorDetails = Readonly<Record<string, string | number | undefined>>;

export class BenchError extends Error {
  readonly code: BenchErrorCode;
  readonly details: BenchErrorDetails;

  constructor(code: BenchErrorCode, details: BenchErrorDetails = {}, options?: { cause?: unknown }) {
    super(
      BENCH_ERROR_CODES[code].message.replace(/\{(\w+)\}/g, (whole, key: string) => String(details[key] ?? whole)),
      options,
    );
    this.name = 'BenchError';
    this.code = code;
    this.details = details;
  }
}

export function isBenchError(value: unknown, code?: BenchErrorCode): value is BenchError {
  return value instanceof BenchError && (code === undefined || value.code === code);
}
