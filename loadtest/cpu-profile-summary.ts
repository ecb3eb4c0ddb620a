/**
 * Question: where does the server's CPU go? Summarises a V8 `.cpuprofile` (from
 * `node --cpu-prof`, or `npm run bench -- <scenario> --cpu-prof DIR`, one file per thread) as
 * text: the functions with the most self time, and the heaviest call paths as an indented
 * tree (a flame graph read top-down), each with its share of the thread's busy time (idle
 * samples left out). Calls into native code (uWS's send, a write(2)) count in the
 * JavaScript frame that made them.
 *
 *   npm run bench:profile -- FILE.cpuprofile [--top 25] [--depth 14] [--min 1.5]
 */
import fs from 'node:fs';
import path from 'node:path';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => (argv.includes(`--${name}`) ? argv[argv.indexOf(`--${name}`) + 1] : dflt);
const file = argv.find((a) => a.endsWith('.cpuprofile'));
if (!file) throw new Error('give a .cpuprofile file');
const top = Number(opt('top', '25'));
const depth = Number(opt('depth', '14'));
const minPct = Number(opt('min', '1.5'));

const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const selfUs = new Map<number, number>();
prof.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0)));
const sampledUs = [...selfUs.values()].reduce((a, b) => a + b, 0);
const isIdle = (n: Node): boolean => n.callFrame.functionName === '(idle)';
const idleUs = prof.nodes.filter(isIdle).reduce((a, n) => a + (selfUs.get(n.id) ?? 0), 0);
const totalUs = sampledUs - idleUs;

function label(n: Node): string {
  const f = n.callFrame;
  const name = f.functionName || '(anonymous)';
  if (!f.url) return name;
  const u = f.url.replace(/^file:\/\//, '');
  const rel = u.includes('/node_modules/') ? u.slice(u.lastIndexOf('/node_modules/') + 14) : path.relative(process.cwd(), u);
  return `${name} ${rel}:${f.lineNumber + 1}`;
}

// Inclusive time per node.
const incl = new Map<number, number>();
function inclusive(id: number): number {
  const n = byId.get(id)!;
  let t = selfUs.get(id) ?? 0;
  for (const c of n.children ?? []) t += inclusive(c);
  incl.set(id, t);
  return t;
}
const root = prof.nodes[0].id;
inclusive(root);

const pct = (us: number): string => `${((us / totalUs) * 100).toFixed(1).padStart(5)} %`;
console.log(`${file}: ${(sampledUs / 1e6).toFixed(2)} s sampled, ${(totalUs / 1e6).toFixed(2)} s busy\n`);
console.log(`self time by function (top ${top}):`);
const selfByLabel = new Map<string, number>();
for (const [id, us] of selfUs) {
  if (isIdle(byId.get(id)!)) continue;
  const l = label(byId.get(id)!);
  selfByLabel.set(l, (selfByLabel.get(l) ?? 0) + us);
}
for (const [l, us] of [...selfByLabel].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(us)}  ${l}`);

console.log(`\nheaviest paths (inclusive, >= ${minPct} %, ${depth} levels):`);
function walk(id: number, level: number): void {
  const n = byId.get(id)!;
  const t = incl.get(id)!;
  if (isIdle(n) || (t / totalUs) * 100 < minPct || level > depth) return;
  console.log(`  ${pct(t)}  ${'  '.repeat(level)}${label(n)}`);
  for (const c of [...(n.children ?? [])].sort((a, b) => incl.get(b)! - incl.get(a)!)) walk(c, level + 1);
}
for (const c of byId.get(root)!.children ?? []) walk(c, 0);
