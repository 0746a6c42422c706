// Waiting on asynchronous effects in tests: poll until a condition holds, or catch the failure a call
// must end in. One definition for the suites that used to carry their own copies.
import { setTimeout as delay } from 'node:timers/promises';

/** Polls `check` until it holds; `what` names it in the failure. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000, everyMs = 10): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await delay(everyMs);
  }
}

/** Polls `condition` until it holds; the generous default covers a loaded 2-core machine, not normal runs. */
export function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  return eventually('condition', condition, timeoutMs, 5);
}

/** The error `promise` rejects with; throws if it resolves. */
export async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}
