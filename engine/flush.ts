/**
 * Durability of appends under the flush policy:
 * - `always`: an append resolves only after the fdatasync that covers it. While one sync
 *   runs, later appends queue for the next, so one sync serves everything that arrived
 *   meanwhile (group commit): the cost of `always` is one sync per round trip, not per append.
 * - `interval`: a timer syncs what is dirty every `flushMs`; appends resolve once written.
 * - `never`: the OS writes back when it likes; appends resolve once written.
 */
import type { AppendResult } from './log.ts';

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

/** A segment as the flush bookkeeping sees it: something to fdatasync. */
export interface Syncable {
  sync(): Promise<void>;
}

/** One batch written to a segment, waiting (under `flush: always`) for the sync that covers it. */
export interface PendingAppend<S extends Syncable> {
  segment: S;
  /** Where the batch starts and ends in `segment`. */
  start: number;
  end: number;
  /** The log end after this batch. */
  nextOffset: number;
  /** The batch as stored, handed to commit listeners. */
  bytes: Uint8Array;
  firstOffset: number;
  result: AppendResult;
  /** Under `flush: always`: settles the append once its sync succeeded or failed. */
  resolve?: (r: AppendResult) => void;
  reject?: (err: Error) => void;
}

/** What the bookkeeping asks of the log it keeps. */
export interface FlushTarget<S extends Syncable> {
  /** Makes the batch visible: the segment's readable end, the hw, the commit listeners. */
  commit(entry: PendingAppend<S>): void;
  /**
   * After a failed sync: cut the log back to where `first` starts, so that what follows is
   * written again at the same offsets. `batches` pending batches are dropped.
   */
  rollBack(first: PendingAppend<S>, batches: number, failure: Error): void;
  /** A sync's failure as the appends waiting on it see it. */
  syncFailure(err: unknown): Error;
}

/**
 * The pending / commit / roll-back bookkeeping of one partition's appends under its flush
 * policy. Under `always`, written batches wait here, in offset order, for the group commit
 * that syncs every segment they dirtied; then they are committed (shown) and their appends
 * resolve. When the sync fails, nothing unsynced can be trusted to be on disk (Linux may
 * already have dropped the dirty pages) and nobody has seen it: the log is cut back to the
 * first pending batch and every pending append rejects. Under `interval` and `never`,
 * batches are committed as soon as they are written; `interval` syncs what is dirty on a
 * timer, and both sync rolled segments at close.
 */
export class Flusher<S extends Syncable> {
  private readonly pending: PendingAppend<S>[] = [];
  private readonly dirty = new Set<S>();
  private readonly groupCommit: GroupCommit;
  private intervalTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly policy: FlushPolicy,
    private readonly target: FlushTarget<S>,
    opts: { flushMs: number; onIntervalError: (err: unknown) => void },
  ) {
    this.groupCommit = new GroupCommit(() => this.syncDirty());
    if (policy === 'interval') {
      this.intervalTimer = setInterval(() => {
        if (this.dirty.size > 0) this.groupCommit.sync().catch(opts.onIntervalError);
      }, opts.flushMs);
      this.intervalTimer.unref();
    }
  }

  /** Appends waiting for their sync (only ever under `always`). */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** True when `segment` has writes not synced yet that this bookkeeping knows of. */
  isDirty(segment: S): boolean {
    return this.dirty.has(segment);
  }

  /** A segment with writes to sync: at the next sync under `always`/`interval`, at close under all. */
  markDirty(segment: S): void {
    this.dirty.add(segment);
  }

  /**
   * Takes a batch just written. Under `always` it waits for its sync: the returned promise
   * settles then (committed after it succeeded, rejected when it failed and the tail was
   * cut; the group commit's own promise says nothing about this entry). Otherwise it is
   * committed now and the promise is already resolved.
   */
  add(entry: PendingAppend<S>): Promise<AppendResult> {
    if (this.policy !== 'always') {
      if (this.policy === 'interval') this.dirty.add(entry.segment);
      this.target.commit(entry);
      return Promise.resolve(entry.result);
    }
    this.pending.push(entry);
    this.dirty.add(entry.segment);
    const settled = new Promise<AppendResult>((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    this.groupCommit.sync().catch(() => {});
    return settled;
  }

  /** Waits for the sync that settles every pending append (close). */
  async drain(): Promise<void> {
    if (this.pending.length > 0) await this.groupCommit.sync().catch(() => {});
  }

  /**
   * Forgets every pending append (each rejects with `err`) and every dirty segment: the log
   * is being emptied or cut back under them (a cluster mirror brought in line with its
   * source), so there is nothing of theirs left to sync or show.
   */
  discard(err: Error): void {
    this.dirty.clear();
    for (const e of this.pending.splice(0)) e.reject?.(err);
  }

  /** Stops the interval timer. */
  stop(): void {
    if (this.intervalTimer) clearInterval(this.intervalTimer);
    this.intervalTimer = null;
  }

  private async syncDirty(): Promise<void> {
    const upTo = this.pending.length;
    const segs = [...this.dirty];
    this.dirty.clear();
    try {
      await Promise.all(segs.map((s) => s.sync()));
    } catch (err) {
      const failure = this.target.syncFailure(err);
      this.rollBack(failure);
      throw failure;
    }
    for (const e of this.pending.splice(0, upTo)) {
      this.target.commit(e);
      e.resolve?.(e.result);
    }
  }

  /** Drops every pending append after a failed sync: the log is cut, each append rejects. */
  private rollBack(failure: Error): void {
    const dropped = this.pending.splice(0);
    if (dropped.length === 0) return;
    // Whatever was dirtied since belongs to the dropped batches, cut away with them.
    this.dirty.clear();
    this.target.rollBack(dropped[0], dropped.length, failure);
    for (const e of dropped) e.reject?.(failure);
  }
}
