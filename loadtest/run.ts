/**
 * Question: how does sluice compare with the systems a web team would otherwise put in front
 * of its browsers, on the same machine and in the same run? Peers: NATS (core, and JetStream
 * for the persisted variant) over its WebSocket listener, Redis 7 pub/sub over TCP, a plain
 * `ws` broadcast server (the naive Node baseline) and uWebSockets.js topic pub/sub (the
 * fan-out ceiling on this runtime). See docs/benchmarks.md for the method.
 *
 *   npm run bench                         every scenario, every peer it can start (< 10 min)
 *   npm run bench -- fanout latency       some scenarios (names below)
 *   npm run bench -- --seconds 2 --targets sluice,nats
 *   npm run bench -- ingest --targets sluice-1t --cpu-prof /tmp/prof
 *                                         sluice servers write a V8 CPU profile each into the
 *                                         directory; `npm run bench:profile -- FILE` prints it
 *
 * Scenarios: ingest, produce, fanout (= fanout-100 + fanout-1000), latency, idle, catchup,
 * replay. Each target runs as its own fresh process per scenario; this process generates the
 * load over 127.0.0.1. A peer that cannot be found or installed is reported and skipped; the
 * run goes on. A full run writes docs/benchmarks.json and docs/benchmarks.svg (loadtest/chart.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { installNativeCodecs } from '../engine/index.ts';
import { defaultThreads } from '../src/common/config.ts';
import { loadAverage, machine } from './lib/machine.ts';
import { profileSluiceInto, repoRoot, startSluice } from './lib/spawn.ts';
import { formatTable, num } from './lib/table.ts';
import { TARGETS, type Target, type TargetName, Unavailable, sluiceTarget, startTarget } from './peers/targets.ts';
import { type Row, type Settings, catchupAndReplay, fanout, idle, ingest, latency, produce } from './scenarios.ts';
import { writeChart } from './chart.ts';

installNativeCodecs();

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : undefined);
/** Positional arguments: scenario names (the values of --seconds and --targets are not). */
const positional = argv.filter((a, i) => !a.startsWith('--') && !(i > 0 && ['--seconds', '--targets', '--cpu-prof'].includes(argv[i - 1])));
const SCENARIOS = ['ingest', 'produce', 'fanout-100', 'fanout-1000', 'latency', 'idle', 'catchup', 'replay'] as const;
type Scenario = (typeof SCENARIOS)[number];
const asked = positional.flatMap((a) => (a === 'fanout' ? ['fanout-100', 'fanout-1000'] : [a]));
for (const a of asked) if (!(SCENARIOS as readonly string[]).includes(a)) throw new Error(`unknown scenario ${a}; known: ${SCENARIOS.join(', ')}, fanout`);
const scenarios: Scenario[] = asked.length ? (asked as Scenario[]) : [...SCENARIOS];
const onlyTargets = opt('targets')?.split(',');
const cpuProfileDir = opt('cpu-prof');
if (cpuProfileDir !== undefined) profileSluiceInto(path.resolve(cpuProfileDir));
const settings: Settings = {
  seconds: Number(opt('seconds') ?? 3),
  ingestConns: 100,
  fanoutSubs: [100, 1000],
  latencyRates: [1000, 10_000],
  latencySubs: 10,
  idleConns: 10_000,
  catchupGiB: 1,
};

/**
 * Which targets run which scenario. sluice runs its WebSocket front on one thread per core
 * (its default); sluice (1 thread) is the same on one thread, for the scaling from 1 to N;
 * sluice (flush=always) is sluice with fsync before ack.
 */
type Runner = TargetName | 'sluice-always' | 'sluice-1t';
const plan: Record<Scenario, Runner[]> = {
  ingest: ['sluice', 'sluice-1t', 'sluice-always', 'nats', 'nats-jetstream', 'redis', 'ws-broadcast', 'uws-topic'],
  produce: ['sluice', 'sluice-1t', 'sluice-always'],
  'fanout-100': ['sluice', 'sluice-1t', 'nats', 'redis', 'ws-broadcast', 'uws-topic'],
  'fanout-1000': ['sluice', 'sluice-1t', 'nats', 'redis', 'ws-broadcast', 'uws-topic'],
  latency: ['sluice', 'sluice-1t', 'sluice-always', 'nats', 'redis', 'ws-broadcast', 'uws-topic'],
  idle: ['sluice', 'sluice-1t', 'nats', 'redis', 'ws-broadcast', 'uws-topic'],
  catchup: ['sluice'],
  replay: ['sluice'],
};
/** Peers left out of a scenario on purpose, and why (printed with the results). */
const notApplicable: Partial<Record<Scenario, string[]>> = {
  produce: ['peers: no batch producer wire path comparable with PRODUCE (their figures are in ingest)'],
  'fanout-100': ['nats-jetstream: live fan-out in NATS is core NATS whether or not a stream also stores the subject'],
  'fanout-1000': ['nats-jetstream: as for fanout-100'],
  latency: ['nats-jetstream: core subscribers get a message before or while the stream stores it, so it measures core NATS again'],
  catchup: ['nats-jetstream: not run, the minimal NATS client here has no JetStream consumer (pull/flow control); redis, ws-broadcast, uws-topic: no history to catch up from'],
  replay: ['peers: python3 socket.sendfile of the same segment file is the yardstick; NATS/Redis have no raw log replay'],
};

const titles: Record<Scenario, string> = {
  ingest: `${settings.ingestConns} connections publish 100 B messages, each keeping 200 unacknowledged; throughput = acks/s`,
  produce: 'ingest, SDK binary producer (sluice only): PRODUCE frames of 1000 x 100 B records, 1 connection',
  'fanout-100': 'fan-out: 1 publisher -> 100 subscribers, 100 B messages, as fast as delivery keeps up',
  'fanout-1000': 'fan-out: 1 publisher -> 1,000 subscribers, 100 B messages, as fast as delivery keeps up',
  latency: `latency: publish-to-deliver at fixed publish rates, 1 publisher -> ${settings.latencySubs} subscribers, measured from the intended send time (coordinated-omission corrected)`,
  idle: `idle: ${settings.idleConns.toLocaleString('en')} subscribed connections that receive nothing; server RSS with them connected`,
  catchup: `catch-up: a WebSocket subscriber from earliest over a ${settings.catchupGiB} GiB partition (1 KiB records, served from disk/page cache)`,
  replay: `TCP replay of the same ${settings.catchupGiB} GiB partition to a python3 reader: sluice's replay port (sendfile) vs python3 socket.sendfile`,
};

/** The figure sluice is compared on: throughput (higher is better), p99 (lower), RSS (lower). */
function metric(row: Row): number | undefined {
  if (row.scenario.startsWith('latency')) return row.p99;
  if (row.scenario === 'idle') return row.rssMiB;
  return row.rate;
}
function ratioLabel(scenario: string): string {
  if (scenario.startsWith('latency')) return 'p99: sluice / peer (< 1 = sluice faster)';
  if (scenario === 'idle') return 'RSS: sluice / peer (< 1 = sluice smaller)';
  return 'throughput: sluice / peer (> 1 = sluice faster)';
}

async function startRunner(r: Runner): Promise<Target> {
  if (r === 'sluice-always') return sluiceTarget('always');
  if (r === 'sluice-1t') return sluiceTarget('never', 1);
  return startTarget(r);
}

const rows: Row[] = [];
const skipped: string[] = [];
const loadStart = loadAverage();
const t0 = performance.now();

function printScenario(sc: string, title: string): void {
  const mine = rows.filter((r) => r.scenario === sc);
  if (!mine.length) return;
  const base = mine.find((r) => r.target === 'sluice');
  const cols = ['target', 'transport', 'throughput', 'unit', 'p50 ms', 'p99 ms', 'p99.9 ms', 'server CPU %', 'server RSS MiB', 'sluice / peer', 'note'];
  const body = mine.map((r) => {
    const b = base && metric(base);
    const m = metric(r);
    const ratio = r.target === 'sluice' || b === undefined || m === undefined || !m ? '' : `${(b / m).toFixed(2)}`;
    return [r.target, r.transport, num(r.rate), r.unit, num(r.p50, 2), num(r.p99, 2), num(r.p999, 2), num(r.cpuPct), num(r.rssMiB), ratio, r.note];
  });
  console.log(`\n### ${sc}: ${title}\n${ratioLabel(sc)}; machine ${machine()}; load average ${loadAverage()}\n`);
  console.log(formatTable(cols, body));
}

console.log(`sluice side-by-side benchmark — ${machine()}`);
console.log(`server, peers and load generator share these ${os.cpus().length} cores; ${settings.seconds} s per measurement; load average at start ${loadStart}`);

for (const sc of scenarios) {
  if (sc === 'replay' && scenarios.includes('catchup')) {
    // Done together with catch-up, on the same partition.
    for (const n of notApplicable.replay ?? []) skipped.push(`replay: ${n}`);
    continue;
  }
  process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(0)} s] ${sc}\n`);
  if (sc === 'catchup' || sc === 'replay') {
    try {
      rows.push(...(await catchupAndReplay(settings, { catchup: scenarios.includes('catchup'), replay: scenarios.includes('replay') })));
    } catch (e) {
      skipped.push(`${sc}: failed: ${(e as Error).message}`);
    }
  } else {
    for (const r of plan[sc]) {
      if (onlyTargets && !onlyTargets.includes(r)) continue;
      process.stderr.write(`  ${r}\n`);
      if (sc === 'produce') {
        const threads = r === 'sluice-1t' ? 1 : defaultThreads();
        const srv = await startSluice({ args: ['--flush', r === 'sluice-always' ? 'always' : 'never', '--threads', String(threads)] });
        try {
          rows.push(await produce(srv, r === 'sluice-always' ? 'always' : 'never', settings, threads));
        } finally {
          await srv.stop();
          fs.rmSync(srv.dataDir, { recursive: true, force: true });
        }
        continue;
      }
      let t: Target;
      try {
        t = await startRunner(r);
      } catch (e) {
        skipped.push(`${r} in ${sc}: ${e instanceof Unavailable ? '' : 'failed to start: '}${(e as Error).message}`);
        continue;
      }
      try {
        if (sc === 'ingest') rows.push(await ingest(t, settings));
        else if (sc === 'fanout-100') rows.push(await fanout(t, 100, settings));
        else if (sc === 'fanout-1000') rows.push(await fanout(t, 1000, settings));
        else if (sc === 'latency') rows.push(...(await latency(t, settings)));
        else if (sc === 'idle') rows.push(await idle(t, settings));
      } catch (e) {
        skipped.push(`${r} in ${sc}: failed: ${(e as Error).message}`);
      } finally {
        await t.stop();
      }
    }
  }
  for (const n of notApplicable[sc] ?? []) skipped.push(`${sc}: ${n}`);
  const shown = sc === 'latency' ? settings.latencyRates.map((x) => `latency-${x}`) : sc === 'catchup' && scenarios.includes('replay') ? ['catchup', 'replay'] : [sc];
  for (const s of shown) printScenario(s, s.startsWith('latency') ? `${titles.latency}, ${s.slice(8)} msg/s published` : s === 'replay' ? titles.replay : titles[sc]);
}

console.log(`\nnot run, or run only in part:\n${skipped.map((s) => `- ${s}`).join('\n') || '- nothing'}`);
console.log(`\ntotal ${((performance.now() - t0) / 1000).toFixed(0)} s; load average at start ${loadStart}, at end ${loadAverage()} (above ${os.cpus().length} means other processes wanted the CPU too)`);

if (cpuProfileDir !== undefined) console.log(`CPU profiles of the sluice servers (one per thread) in ${path.resolve(cpuProfileDir)}: npm run bench:profile -- <file>`);

const result = { when: new Date().toISOString(), machine: machine(), loadStart, loadEnd: loadAverage(), settings, rows, skipped };
if (!asked.length && !onlyTargets) {
  fs.writeFileSync(path.join(repoRoot, 'docs/benchmarks.json'), `${JSON.stringify(result, null, 1)}\n`);
  writeChart(result, path.join(repoRoot, 'docs/benchmarks.svg'));
  console.log('wrote docs/benchmarks.json and docs/benchmarks.svg');
}
process.exit(0);
