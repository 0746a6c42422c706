// Counters bumped on the per-statement path are summed in plain numbers and added to their
// prom-client Counter when it is collected (a scrape, or a test reading it). prom-client validates
// and hashes the label set on every inc(), which costs more than the rest of a statement's
// bookkeeping; a tally costs an addition. Totals read from the registry are exact.
import type { Counter, LabelValues } from 'prom-client';

/** The running count of one label set; hold on to it and call inc() as often as needed. */
export interface Tally {
  inc(value?: number): void;
}

class PendingTally implements Tally {
  pending = 0;

  constructor(readonly labels: LabelValues<string>) {}

  inc(value = 1): void {
    this.pending += value;
  }
}

export class CounterTallies<T extends string> {
  private readonly byLabels = new Map<string, PendingTally>();

  constructor(private readonly labelNames: readonly T[]) {}

  /** The tally of one label set: the same object for equal label sets, so callers can cache it. */
  tally(labels: LabelValues<T>): Tally {
    const key = this.labelNames.map((name) => String(labels[name] ?? '')).join('\0');
    let tally = this.byLabels.get(key);
    if (tally === undefined) {
      tally = new PendingTally({ ...labels });
      this.byLabels.set(key, tally);
    }
    return tally;
  }

  /** Adds what was counted since the last call to `counter`: wire it as the counter's `collect`. */
  flushInto(counter: Counter<T>): void {
    for (const tally of this.byLabels.values()) {
      if (tally.pending === 0) continue;
      counter.inc(tally.labels as LabelValues<T>, tally.pending);
      tally.pending = 0;
    }
  }
}
