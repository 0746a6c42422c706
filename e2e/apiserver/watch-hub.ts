// The change log behind watches: a bounded window of recent events (like etcd's compacted history) that
// a watch replays from its resourceVersion, then live events. A resourceVersion older than the window
// is answered with 410 Gone, which is what makes informers relist; `compact()` forces that in tests.
import type { KubeObject } from './objects.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ChangeEvent {
  readonly type: WatchEventType;
  readonly resourceVersion: number;
  /** `group/plural` of the object's type. */
  readonly typeKey: string;
  readonly object: KubeObject;
  /** For MODIFIED: the object before, so selector watches can report it entering or leaving. */
  readonly previous?: KubeObject;
}

export interface WatchSubscription {
  /** Stops delivery; idempotent. */
  close(): void;
}

type Listener = (event: ChangeEvent) => void;

export class WatchHub {
  private events: ChangeEvent[] = [];
  /** Events at or below this resourceVersion are no longer retained. */
  private compactedThrough = 0;
  private readonly listeners = new Set<{ typeKey: string; listener: Listener; onDrop: () => void }>();

  constructor(private readonly windowSize: number) {}

  publish(event: ChangeEvent): void {
    this.events.push(event);
    if (this.events.length > this.windowSize) {
      const dropped = this.events.splice(0, this.events.length - this.windowSize);
      this.compactedThrough = dropped[dropped.length - 1].resourceVersion;
    }
    for (const entry of [...this.listeners]) if (entry.typeKey === event.typeKey) entry.listener(event);
  }

  /** True when a watch may start at `resourceVersion` (nothing after it has been forgotten). */
  canReplayFrom(resourceVersion: number): boolean {
    return resourceVersion >= this.compactedThrough;
  }

  /**
   * Replays retained events after `fromResourceVersion` for `typeKey`, then delivers live ones.
   * Callers check `canReplayFrom` first.
   */
  subscribe(typeKey: string, fromResourceVersion: number, listener: Listener, onDrop: () => void): WatchSubscription {
    for (const event of this.events) {
      if (event.typeKey === typeKey && event.resourceVersion > fromResourceVersion) listener(event);
    }
    const entry = { typeKey, listener, onDrop };
    this.listeners.add(entry);
    return { close: () => this.listeners.delete(entry) };
  }

  /** Forgets every retained event up to `currentResourceVersion`: older watches now get 410. */
  compact(currentResourceVersion: number): void {
    this.events = [];
    this.compactedThrough = currentResourceVersion;
  }

  /** Ends every open watch (their streams close, as when an API server restarts). */
  dropAll(): void {
    const entries = [...this.listeners];
    this.listeners.clear();
    for (const entry of entries) entry.onDrop();
  }

  get openWatches(): number {
    return this.listeners.size;
  }
}
