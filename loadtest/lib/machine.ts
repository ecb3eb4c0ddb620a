/** The machine a benchmark ran on, printed with every table so that figures carry their context. */
import os from 'node:os';

export function machine(): string {
  const cpus = os.cpus();
  return `${cpus.length} x ${cpus[0]?.model ?? '?'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${os.release()}, Node ${process.version}`;
}

export function loadAverage(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(' ');
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
