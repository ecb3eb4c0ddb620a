/**
 * A pacing clock for fixed-rate senders. Node's timers fire in whole milliseconds and, on a
 * quiet machine, often a millisecond or more late: a sender paced by `setTimeout(1)` sent
 * messages due 1.7 ms earlier at the median here, which the latency figures (measured from
 * the intended send time) then charged to the server. This clock ticks from a worker thread
 * that sleeps with `Atomics.wait` (a futex with a sub-millisecond timeout) against absolute
 * deadlines and posts one message per tick; the sending thread wakes on the message (an
 * async handle, tens of microseconds) and sends what is due. Only the worker blocks: the
 * sender's event loop keeps reading its sockets.
 */
import { Worker } from 'node:worker_threads';

/** Plain JavaScript (no loader needed): sleep to each deadline, post the tick, until told to stop. */
const TICKER = `
const { parentPort, workerData } = require('node:worker_threads');
const stop = new Int32Array(workerData.stop);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
// Deadlines are on the sender's clock: both threads' performance.now() are shifted to the epoch.
const t0 = workerData.startAt - performance.timeOrigin;
for (let k = 1; Atomics.load(stop, 0) === 0; k++) {
  const wait = t0 + k * workerData.periodMs - performance.now();
  if (wait > 0) Atomics.wait(sleeper, 0, 0, wait);
  parentPort.postMessage(k);
}
`;

export interface Clock {
  /** Resolves at the next tick (at once if ticks came since the last call). */
  tick(): Promise<void>;
  stop(): Promise<void>;
}

/** Ticks every `periodMs` after `startAt` (a `performance.now()` of this thread), the first one period after it. */
export function startClock(periodMs: number, startAt: number): Clock {
  const stop = new SharedArrayBuffer(4);
  const worker = new Worker(TICKER, { eval: true, workerData: { periodMs, stop, startAt: performance.timeOrigin + startAt } });
  let pending = 0;
  let waiter: (() => void) | null = null;
  worker.on('message', () => {
    pending++;
    const w = waiter;
    waiter = null;
    w?.();
  });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    tick() {
      if (pending > 0) {
        pending = 0;
        return Promise.resolve();
      }
      return new Promise((resolve) => {
        waiter = () => {
          pending = 0;
          resolve();
        };
      });
    },
    async stop() {
      Atomics.store(new Int32Array(stop), 0, 1);
      await exited;
    },
  };
}
