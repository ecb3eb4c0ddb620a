/**
 * What the threads of one sluice process share, for a front that runs on several of them
 * (the WebSocket front with `--threads N`): which thread this is, and the counters that
 * must be global — the connections open over every thread, against --max-connections. Every
 * other limit is per connection and stays in the thread that holds the connection.
 *
 * The counters live in a SharedArrayBuffer handed to each worker at start, updated with
 * Atomics: no message and no lock per connection.
 */

/** A count shared by every thread (Atomics over a SharedArrayBuffer). */
export class SharedCounter {
  private readonly cell: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(4)) {
    this.cell = new Int32Array(buffer, 0, 1);
  }

  /** Adds one unless that would pass `max`; true when it did. */
  tryIncrement(max: number): boolean {
    for (;;) {
      const n = Atomics.load(this.cell, 0);
      if (n >= max) return false;
      if (Atomics.compareExchange(this.cell, 0, n, n + 1) === n) return true;
    }
  }

  decrement(): void {
    Atomics.sub(this.cell, 0, 1);
  }
}

export interface ThreadShare {
  /** 0 on the log thread (the main thread, which also serves), 1 .. count-1 on the workers. */
  readonly index: number;
  /** Threads the WebSocket front runs on (--threads). */
  readonly count: number;
  /** WebSocket connections open or upgrading, over every thread (--max-connections). */
  readonly connections: SharedCounter;
}

/** The share of a process whose front runs on this one thread. */
export function singleThread(): ThreadShare {
  return { index: 0, count: 1, connections: new SharedCounter() };
}
