// Runs async work one at a time per key and concurrently across keys: the credential manager
// serialises everything it does to one (identity, resource), the postgres issuer everything it does
// to one server.

export class KeyedQueue {
  /** Tail of the work queued per key (never rejects); absent when the key is idle. */
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `work` after everything queued before it under `key`; resolves or rejects with it. */
  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Resolves once no key has work queued, including work queued while waiting. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }
}
