/**
 * What a server process costs, read from /proc: CPU time from /proc/<pid>/stat (utime + stime,
 * in clock ticks of 1/100 s on Linux), resident memory from VmRSS in /proc/<pid>/status, and,
 * for sub-tick precision over short runs, the per-thread schedstat nanoseconds.
 */
import fs from 'node:fs';

const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number {
  const { user, system } = cpuSplitSeconds(pid);
  return user + system;
}

/** CPU seconds the process has used so far in user space and in the kernel. */
export function cpuSplitSeconds(pid: number): { user: number; system: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return { user: Number(fields[11]) / TICKS_PER_SECOND, system: Number(fields[12]) / TICKS_PER_SECOND };
}

/** CPU nanoseconds over the live threads of the process (threads that exited are not counted). */
export function cpuNs(pid: number): number {
  let ns = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread exited
    }
  }
  return ns;
}

/** VmRSS in bytes (0 when the process is gone). */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * RssAnon in bytes: the process's own memory, without the file pages it maps (a server that
 * mmaps a 1 GiB segment and reads it through shows ~1 GiB more VmRSS, all of it page cache).
 */
export function rssAnonBytes(pid: number): number {
  try {
    const m = /RssAnon:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Server CPU% (of one core) and peak RSS over a measured window; RSS sampled every 100 ms. */
export class ProcWindow {
  private readonly c0: number;
  private readonly t0 = performance.now();
  private peak: number;
  private peakAnon: number;
  private readonly timer: NodeJS.Timeout;

  constructor(readonly pid: number) {
    this.c0 = cpuSeconds(pid);
    this.peak = rssBytes(pid);
    this.peakAnon = rssAnonBytes(pid);
    this.timer = setInterval(() => {
      this.peak = Math.max(this.peak, rssBytes(pid));
      this.peakAnon = Math.max(this.peakAnon, rssAnonBytes(pid));
    }, 100);
  }

  end(): { cpuPct: number; rssMiB: number; peakRssMiB: number; peakAnonMiB: number; seconds: number } {
    clearInterval(this.timer);
    const seconds = (performance.now() - this.t0) / 1000;
    const rss = rssBytes(this.pid);
    return { cpuPct: ((cpuSeconds(this.pid) - this.c0) / seconds) * 100, rssMiB: rss / 2 ** 20, peakRssMiB: Math.max(this.peak, rss) / 2 ** 20, peakAnonMiB: Math.max(this.peakAnon, rssAnonBytes(this.pid)) / 2 ** 20, seconds };
  }
}
