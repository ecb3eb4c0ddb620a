/**
 * File descriptors are the one resource the whole process shares: every segment holds three
 * (its log and two indexes), and every connection, replay transfer, metadata write and
 * directory fsync needs one more. When the engine takes the last of them, nothing else can
 * open anything, a new connection included: the listening socket stays readable, accept(2)
 * fails with EMFILE again and again, and the process spins without serving anyone.
 *
 * So the engine keeps a reserve: before it opens files for a new segment or topic it checks
 * that, after them, at least `reserve` descriptors stay free under RLIMIT_NOFILE, and refuses
 * (UNAVAILABLE, TOO_MANY_OPEN_FILES) otherwise. The reserve is a share of the limit
 * (`fdReservePercent`, at least `fdReserveMin`) and is left to connections and the rest.
 *
 * Node has no getrlimit: the soft limit is read from /proc/self/limits and the descriptors in
 * use are counted in /proc/self/fd (Linux; elsewhere no limit is known and nothing is
 * refused). Since Linux 6.2 a stat of that directory gives the count at once; older kernels
 * need a readdir, a few ms at 15,000 descriptors, so there a count is reused for
 * `fdCountMaxAgeMs`, with what the engine asked for since added to it.
 */
import fs from 'node:fs';
import { UnavailableError } from './errors.ts';
import { fdCountMaxAgeMs, fdReserveMin, fdReservePercent } from './limits.ts';

export interface FdLimit {
  soft: number;
  /** Infinity for "unlimited". */
  hard: number;
}

/** RLIMIT_NOFILE of this process, or null where /proc/self/limits cannot be read. */
export function readFdLimit(file = '/proc/self/limits'): FdLimit | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
  if (!m) return null;
  const num = (s: string): number => (s === 'unlimited' ? Infinity : Number(s));
  const soft = num(m[1]);
  const hard = num(m[2]);
  return Number.isNaN(soft) || Number.isNaN(hard) ? null : { soft, hard };
}

/** Descriptors this process has open, or null where /proc/self/fd cannot be read. */
export function countOpenFds(): { count: number; exact: boolean } | null {
  try {
    // Linux >= 6.2 reports the number of open descriptors as the directory's size.
    const size = fs.statSync('/proc/self/fd').size;
    if (size > 0) return { count: size, exact: true };
    // The readdir itself holds one descriptor while it runs.
    return { count: fs.readdirSync('/proc/self/fd').length - 1, exact: false };
  } catch {
    return null;
  }
}

/** The reserve for a soft limit: `fdReservePercent` of it, at least `fdReserveMin`. */
export function fdReserveFor(limit: number): number {
  return Math.max(fdReserveMin, Math.floor((limit * fdReservePercent) / 100));
}

export class FdReserve {
  private counted: number | null = null;
  private countedAt = 0;
  /** Descriptors asked for since the last (inexact) count. */
  private askedSince = 0;

  constructor(
    /** The soft RLIMIT_NOFILE, or null when unknown (nothing is then refused). */
    readonly limit: number | null,
    /** Descriptors to keep free. */
    readonly reserve: number,
    private readonly count: () => { count: number; exact: boolean } | null = countOpenFds,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The reserve for this process's own limit. */
  static forProcess(): FdReserve {
    const lim = readFdLimit();
    const soft = lim && Number.isFinite(lim.soft) ? lim.soft : null;
    return new FdReserve(soft, soft === null ? 0 : fdReserveFor(soft));
  }

  /** Descriptors open now (estimated from a recent count on old kernels), or null when unknown. */
  inUse(): number | null {
    const now = this.clock();
    if (this.counted !== null && now - this.countedAt < fdCountMaxAgeMs) return this.counted + this.askedSince;
    const c = this.count();
    if (c === null) return null;
    if (c.exact) return c.count;
    this.counted = c.count;
    this.countedAt = now;
    this.askedSince = 0;
    return c.count;
  }

  /** True when `n` more descriptors leave at least the reserve free. */
  hasRoomFor(n: number): boolean {
    if (this.limit === null) return true;
    const used = this.inUse();
    return used === null || used + n + this.reserve <= this.limit;
  }

  /** Throws UNAVAILABLE (TOO_MANY_OPEN_FILES) unless `n` more descriptors leave the reserve free. */
  assertRoomFor(n: number, what: string): void {
    if (!this.hasRoomFor(n)) {
      throw new UnavailableError(
        `cannot ${what}: ${this.inUse()} of ${this.limit} file descriptors are in use and ${this.reserve} are kept free for connections (raise ulimit -n)`,
        'TOO_MANY_OPEN_FILES',
      );
    }
    this.askedSince += n;
  }
}
