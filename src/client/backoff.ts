/**
 * Full-jitter exponential backoff (the "Exponential Backoff And Jitter" scheme): the n-th
 * retry waits a uniformly random time in [0, min(maxMs, baseMs * 2^n)], so that a thousand
 * browsers dropped by one server restart do not all come back in the same millisecond.
 */
export interface BackoffOptions {
  /** First ceiling, in ms. */
  baseMs?: number;
  /** Largest ceiling, in ms. */
  maxMs?: number;
  /** Source of randomness in [0, 1); tests pass a fixed one. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(opts: BackoffOptions = {}) {
    this.baseMs = opts.baseMs ?? 100;
    this.maxMs = opts.maxMs ?? 10_000;
    this.random = opts.random ?? Math.random;
  }

  /** The delay before the next attempt; each call doubles the ceiling (up to maxMs). */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.floor(this.random() * ceiling);
  }

  /** After a successful connection. */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
