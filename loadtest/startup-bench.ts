/**
 * Question: what does a user wait for, and what does an idle server hold, when sluice runs
 * from its compiled JavaScript (`node bin/sluice.js`, what `npm start` and the Docker image
 * run) compared with running the TypeScript sources through tsx: with `--import tsx` (the
 * development loop, `npm run dev`) and with tsx's register() API (what bin/sluice.js did
 * before the build step)?
 *
 *   npm run bench:startup                  both ways, 7 runs each
 *   npm run bench:startup -- --runs 11
 *
 * The ways take turns run by run. Three figures per way, each the median of the runs (min
 * and max beside it):
 * - `--help`: from spawn to exit of `sluice --help`;
 * - start to listening: from spawn of `sluice serve --port 0 --replay-port 0` on an empty
 *   data directory to its `listening` line on stdout;
 * - idle RSS: VmRSS of that server 2 s after it listened, with no client.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { loadAverage, machine, sleep } from './lib/machine.ts';
import { repoRoot } from './lib/spawn.ts';
import { formatTable, num } from './lib/table.ts';

const argv = process.argv.slice(2);
const runsArg = argv.includes('--runs') ? Number(argv[argv.indexOf('--runs') + 1]) : 7;
const runs = Number.isInteger(runsArg) && runsArg > 0 ? runsArg : 7;
/** A run that takes longer than this is a hang, not a figure. */
const runTimeoutMs = 60_000;

interface Way {
  name: string;
  /** The arguments to node before sluice's own. */
  node: string[];
}

const compiledBin = path.join(repoRoot, 'bin/sluice.js');
/** What bin/sluice.js did before the build step: tsx's register() API, then the sources. */
const registerBootstrap = `import { register } from 'tsx/esm/api'; register(); const { main } = await import(${JSON.stringify(path.join(repoRoot, 'src/cli/main.ts'))}); await main(process.argv);`;
const ways: Way[] = [
  { name: 'compiled (node bin/sluice.js)', node: [compiledBin] },
  { name: 'sources, node --import tsx (npm run dev)', node: ['--import', 'tsx', path.join(repoRoot, 'src/cli/bin.ts')] },
  // `node -e code a b` gives process.argv [node, a, b]: `sluice` stands where a script path would be.
  { name: 'sources, tsx register() (the bin before)', node: ['--input-type=module', '-e', registerBootstrap, 'sluice'] },
];

function timeHelp(way: Way): Promise<number> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [...way.node, '--help'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), runTimeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(performance.now() - t0);
      else reject(new Error(`${way.name} --help exited with ${code}`));
    });
  });
}

async function timeServe(way: Way): Promise<{ listenMs: number; rssBytes: number }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-startup-'));
  const t0 = performance.now();
  const child = spawn(process.execPath, [...way.node, 'serve', '--port', '0', '--replay-port', '0', '--kafka-port', '0', '--data-dir', dataDir, '--log-level', 'warn'], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), runTimeoutMs);
  try {
    const listenMs = await new Promise<number>((resolve, reject) => {
      readline.createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line.includes('"listening"')) resolve(performance.now() - t0);
      });
      child.once('exit', (code) => reject(new Error(`${way.name} serve exited with ${code} before listening`)));
    });
    await sleep(2000);
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
    return { listenMs, rssBytes: m ? Number(m[1]) * 1024 : NaN };
  } finally {
    clearTimeout(timer);
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs: number[], digits: number, scale = 1): string => `${num(median(xs) / scale, digits)} (${num(Math.min(...xs) / scale, digits)}–${num(Math.max(...xs) / scale, digits)})`;

if (!fs.existsSync(compiledBin) || !fs.existsSync(path.join(repoRoot, 'dist/src/cli/main.js'))) {
  console.error('startup-bench: no compiled build: run `npm run build` first');
  process.exit(1);
}
// The ways take turns, run by run, so that a change in the machine's load falls on all alike.
const figures = ways.map(() => ({ help: [] as number[], listen: [] as number[], rss: [] as number[] }));
for (let i = 0; i < runs; i++) {
  for (const [w, way] of ways.entries()) {
    figures[w].help.push(await timeHelp(way));
    const s = await timeServe(way);
    figures[w].listen.push(s.listenMs);
    figures[w].rss.push(s.rssBytes);
  }
}
const rows = ways.map((way, w) => [way.name, spread(figures[w].help, 2, 1000), spread(figures[w].listen, 2, 1000), spread(figures[w].rss, 0, 2 ** 20)]);
console.log(`machine: ${machine()}; load average ${loadAverage()}; ${runs} runs each, median (min–max)\n`);
console.log(formatTable(['way', '--help s', 'start to listening s', 'idle RSS MiB'], rows));
