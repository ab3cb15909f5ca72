/**
 * A FIFO with a capacity: `push` waits while it is full, so a fast producer cannot run ahead of
 * its consumer (the loader's bound on prefetched batches). `fail` delivers an error after the
 * items already queued; `cancel` releases a blocked producer when the consumer goes away.
 */
export class BoundedQueue<T> {
  private readonly items: T[] = [];
  private closed = false;
  private cancelled = false;
  private error: { value: unknown } | undefined;
  private wakeConsumer: (() => void) | undefined;
  private wakeProducer: (() => void) | undefined;

  constructor(private readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`queue capacity must be a positive integer, got ${capacity}`);
  }

  /** Resolves to false when the consumer has cancelled: stop producing. */
  async push(item: T): Promise<boolean> {
    while (this.items.length >= this.capacity && !this.cancelled) {
      await new Promise<void>((resolve) => (this.wakeProducer = resolve));
    }
    if (this.cancelled) return false;
    this.items.push(item);
    this.wake('consumer');
    return true;
  }

  close(): void {
    this.closed = true;
    this.wake('consumer');
  }

  fail(error: unknown): void {
    this.error = { value: error };
    this.close();
  }

  cancel(): void {
    this.cancelled = true;
    this.wake('producer');
  }

  /** The next item, or `done` once closed and drained; throws a producer's error in turn. */
  async shift(): Promise<{ done: false; value: T } | { done: true }> {
    while (this.items.length === 0 && !this.closed) {
      await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
    }
    if (this.items.length > 0) {
      const value = this.items.shift()!;
      this.wake('producer');
      return { done: false, value };
    }
    if (this.error) throw this.error.value;
    return { done: true };
  }

  private wake(who: 'consumer' | 'producer'): void {
    const wake = who === 'consumer' ? this.wakeConsumer : this.wakeProducer;
    if (who === 'consumer') this.wakeConsumer = undefined;
    else this.wakeProducer = undefined;
    wake?.();
  }
}
