/**
 * Question: how fast does one WebSocket subscriber catch up from earliest, and what does it
 * cost the server? Drives the catch-up scenario of the side-by-side bench against a server
 * that is already running (so that it can be profiled), over a partition built with
 * `--build DIR` (1 GiB of 64 x 1 KiB-record batches, as the bench builds it). The reader is
 * the python3 one of the bench (loadtest/lib/ws-catchup-reader.ts).
 *
 *   node --import tsx loadtest/catchup-load.ts --build /tmp/catchup [--gib 1]
 *   node --import tsx loadtest/catchup-load.ts --port P [--pid PID] [--topic bench]
 */
import { installNativeCodecs } from '../engine/index.ts';
import { cpuSplitSeconds } from './lib/proc.ts';
import { buildPartition } from './lib/replay-core.ts';
import { readCatchup } from './lib/ws-catchup-reader.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : dflt);
if (argv.includes('--build')) {
  installNativeCodecs();
  console.log(await buildPartition(opt('build', ''), Number(opt('gib', '1')) * 1024 ** 3));
  process.exit(0);
}
const port = Number(opt('port', '8080'));
const pid = Number(opt('pid', '0'));
const topic = opt('topic', 'bench');
const info = (await (await fetch(`http://127.0.0.1:${port}/v1/topics/${topic}`)).json()) as { partitions: { bytes: number }[] };
const want = info.partitions[0].bytes;
const c0 = pid ? cpuSplitSeconds(pid) : { user: 0, system: 0 };
const r = await readCatchup(port, topic, want);
const c1 = pid ? cpuSplitSeconds(pid) : { user: 0, system: 0 };
const gb = r.batchBytes / 1e9;
console.log(
  JSON.stringify({
    MBps: Math.round(r.batchBytes / r.seconds / 1e6),
    seconds: Number(r.seconds.toFixed(2)),
    messages: r.messages,
    fragments: r.fragments,
    serverUserSPerGB: Number(((c1.user - c0.user) / gb).toFixed(3)),
    serverSysSPerGB: Number(((c1.system - c0.system) / gb).toFixed(3)),
  }),
);
process.exit(0);
