// Bounds one upstream step in time (and lets the caller abort it). On expiry `onExpire` runs (it
// destroys the socket, so every read pending on it fails too) and the step rejects with the
// timeout error, or with `signal.reason` when aborted, as AbortSignal users expect.
import type { GatehouseError } from '../../../api/errors.js';

export interface DeadlineOptions {
  readonly timeoutMs: number;
  readonly timeoutError: () => GatehouseError;
  readonly onExpire: () => void;
  readonly signal?: AbortSignal;
}

export async function withDeadline<T>(step: Promise<T>, options: DeadlineOptions): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const { signal } = options;
  const expiry = new Promise<never>((_resolve, reject) => {
    const expire = (error: unknown) => {
      options.onExpire();
      reject(error);
    };
    timer = setTimeout(() => expire(options.timeoutError()), options.timeoutMs);
    if (signal === undefined) return;
    if (signal.aborted) return expire(signal.reason);
    onAbort = () => expire(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([step, expiry]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}
