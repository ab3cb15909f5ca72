// Writes that finish while training goes on (each epoch's weights: 600 MB for ViT-B/32, about a second
// with its fsync, longer than a short epoch's batches). One at a time; a failure is thrown at the next
// start or wait, never lost as an unhandled rejection.
export class BackgroundWrites {
  private pending: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | undefined;

  /** Waits for the write before (throwing its error, if any), then starts `write` without waiting. */
  async start(write: () => Promise<void>): Promise<void> {
    await this.wait();
    this.pending = write().then(
      () => {},
      (error: unknown) => void (this.failure ??= { error }),
    );
  }

  /** Resolves once every started write is done; throws the first failure. */
  async wait(): Promise<void> {
    await this.pending;
    const failure = this.failure;
    this.failure = undefined;
    if (failure) throw failure.error;
  }
}
