/**
 * Durability of appends under the flush policy:
 * - `always`: an append resolves only after the fdatasync that covers it. While one sync
 *   runs, later appends queue for the next, so one sync serves everything that arrived
 *   meanwhile (group commit): the cost of `always` is one sync per round trip, not per append.
 * - `interval`: a timer syncs what is dirty every `flushMs`; appends resolve once written.
 * - `never`: the OS writes back when it likes; appends resolve once written.
 */
export type FlushPolicy = 'always' | 'interval' | 'never';

export class GroupCommit {
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  constructor(private readonly syncAll: () => Promise<void>) {}

  /** Resolves after a sync that started after this call. */
  sync(): Promise<void> {
    if (!this.running) {
      this.running = this.syncAll().finally(() => {
        this.running = null;
      });
      return this.running;
    }
    // A sync is in flight and may have started before our bytes were written: join the next.
    this.queued ??= this.running
      .catch(() => {})
      .then(() => {
        this.queued = null;
        return this.sync();
      });
    return this.queued;
  }
}
