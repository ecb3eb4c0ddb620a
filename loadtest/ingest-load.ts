/**
 * Question: what does one JSON publish cost the server? This drives the ingest scenario of
 * the side-by-side bench (100 connections, each keeping 200 publishes of 100 B unacked)
 * against a server that is already running, so that the server can be profiled
 * (`node --cpu-prof bin/sluice.js serve ...`) or watched while it runs.
 *
 *   node --import tsx loadtest/ingest-load.ts --port 8080 [--seconds 5] [--conns 100] [--topic bench]
 *
 * Prints the acks per second and, given the server's pid (--pid), its CPU µs per publish.
 */
import { cpuSeconds, cpuSplitSeconds } from './lib/proc.ts';
import { rawConnect } from './raw-ws.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : dflt);
const port = Number(opt('port', '8080'));
const seconds = Number(opt('seconds', '5'));
const conns = Number(opt('conns', '100'));
const topic = opt('topic', 'bench');
const pid = Number(opt('pid', '0'));
const window = 200;
const value = 'x'.repeat(100);

let acked = 0;
let running = true;
let seq = 0;
const sockets = [];
for (let i = 0; i < conns; i++) {
  let inflight = 0;
  const ws = await rawConnect(port, '/v1/ws', (d, bin) => {
    if (bin || d[7] !== 0x61) return;
    acked++;
    inflight--;
    while (running && inflight < window) {
      ws.sendText(`{"op":"pub","id":${++seq},"topic":"${topic}","value":"${value}"}`);
      inflight++;
    }
  });
  sockets.push(ws);
  for (; inflight < window; inflight++) ws.sendText(`{"op":"pub","id":${++seq},"topic":"${topic}","value":"${value}"}`);
}
await new Promise((r) => setTimeout(r, 1000));
const a0 = acked;
const c0 = pid ? cpuSeconds(pid) : 0;
const s0 = pid ? cpuSplitSeconds(pid) : { user: 0, system: 0 };
const t0 = performance.now();
await new Promise((r) => setTimeout(r, seconds * 1000));
const secs = (performance.now() - t0) / 1000;
const n = acked - a0;
const cpu = pid ? cpuSeconds(pid) - c0 : 0;
const s1 = pid ? cpuSplitSeconds(pid) : { user: 0, system: 0 };
running = false;
console.log(JSON.stringify({ ackedPerSecond: Math.round(n / secs), serverCpuPct: pid ? Math.round((cpu / secs) * 100) : undefined, serverCpuUsPerPublish: pid ? Number(((cpu * 1e6) / n).toFixed(2)) : undefined, userUs: pid ? Number((((s1.user - s0.user) * 1e6) / n).toFixed(2)) : undefined, systemUs: pid ? Number((((s1.system - s0.system) * 1e6) / n).toFixed(2)) : undefined }));
await new Promise((r) => setTimeout(r, 300));
for (const s of sockets) s.destroy();
process.exit(0);
