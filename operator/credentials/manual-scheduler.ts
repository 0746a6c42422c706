// A Scheduler whose clock moves only when a test says so: advance() runs every task that falls due,
// in time order, with the clock set to each task's time. For tests; production uses systemScheduler.
import type { Scheduler } from './scheduler.js';

interface ScheduledTask {
  readonly atMs: number;
  readonly sequence: number;
  readonly task: () => void;
}

export class ManualScheduler implements Scheduler {
  private current: number;
  private sequence = 0;
  private readonly tasks = new Set<ScheduledTask>();

  constructor(startMs: number = Date.now()) {
    this.current = startMs;
  }

  now(): number {
    return this.current;
  }

  schedule(atMs: number, task: () => void): () => void {
    const entry = { atMs, sequence: this.sequence++, task };
    this.tasks.add(entry);
    return () => {
      this.tasks.delete(entry);
    };
  }

  /**
   * Moves the clock forward by `ms`, running due tasks (including ones they schedule) in time order.
   * After each task `settle` is awaited, so async work a task starts (a renewal) finishes at that
   * task's time, before the clock moves on; pass e.g. `() => manager.settled()`.
   */
  async advance(ms: number, settle: () => Promise<void> = () => Promise.resolve()): Promise<void> {
    const target = this.current + ms;
    for (let next = this.nextDue(target); next !== undefined; next = this.nextDue(target)) {
      this.tasks.delete(next);
      this.current = Math.max(this.current, next.atMs);
      next.task();
      await settle();
    }
    this.current = target;
  }

  /** Times of the tasks still waiting, earliest first. */
  pendingTimes(): number[] {
    return [...this.tasks].map((task) => task.atMs).sort((a, b) => a - b);
  }

  private nextDue(limit: number): ScheduledTask | undefined {
    let best: ScheduledTask | undefined;
    for (const task of this.tasks) {
      if (task.atMs > limit) continue;
      if (best === undefined || task.atMs < best.atMs || (task.atMs === best.atMs && task.sequence < best.sequence)) best = task;
    }
    return best;
  }
}
