// Time as the credential code sees it: a clock and absolute-time timers behind one small interface,
// so renewal and expiry can be driven by a manual clock in tests instead of by waiting.

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export interface Scheduler extends Clock {
  /** Runs `task` once the clock reaches `atMs` (at once if it already has); returns a cancel function. */
  schedule(atMs: number, task: () => void): () => void;
}

/** setTimeout caps delays at 2^31-1 ms (about 24.8 days); longer waits are chained. */
const MAX_TIMER_DELAY_MS = 2_147_483_647;

/** Wall-clock time with unref'd timers, so pending renewals never keep a process alive on shutdown. */
export const systemScheduler: Scheduler = {
  now: () => Date.now(),
  schedule(atMs, task) {
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      const delay = atMs - Date.now();
      if (delay <= 0) {
        timer = undefined;
        task();
        return;
      }
      timer = setTimeout(arm, Math.min(delay, MAX_TIMER_DELAY_MS));
      timer.unref();
    };
    arm();
    return () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    };
  },
};
