/**
 * Question: where does a sluice server's CPU go? Prints a V8 CPU profile (`.cpuprofile`, as
 * `npm run bench -- <scenario> --cpu-prof DIR` writes one per server thread) as a top-down
 * call tree — a flame graph in text — with each frame's share of the busy time (idle left
 * out), its own share beside it, and frames under `--min` percent (default 1.5) pruned.
 * Calls into native code (uWS's send, a write(2)) count in the JavaScript frame that made them.
 *
 *   npm run bench:profile -- /tmp/prof/CPU.*.cpuprofile [--min 1]
 */
import fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const argv = process.argv.slice(2);
const minAt = argv.indexOf('--min');
const minPct = minAt >= 0 ? Number(argv[minAt + 1]) : 1.5;
const files = argv.filter((a, i) => a !== '--min' && i !== minAt + 1);
if (files.length === 0) {
  console.error('usage: npm run bench:profile -- <file.cpuprofile> [...] [--min PERCENT]');
  process.exit(2);
}

for (const file of files) {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const total = new Map<number, number>();
  const totalOf = (id: number): number => {
    let t = total.get(id);
    if (t !== undefined) return t;
    t = self.get(id) ?? 0;
    for (const c of byId.get(id)!.children ?? []) t += totalOf(c);
    total.set(id, t);
    return t;
  };
  const root = p.nodes[0];
  const all = totalOf(root.id);
  const idle = p.nodes.filter((n) => n.callFrame.functionName === '(idle)').reduce((a, n) => a + totalOf(n.id), 0);
  const busy = all - idle;
  const name = (n: ProfileNode): string => {
    const f = n.callFrame;
    const where = f.url.replace(/^file:\/\//, '').replace(/^.*\/(dist|node_modules)\//, '').replace(/^node:internal\//, '');
    return `${f.functionName || '(anonymous)'}${where ? ` ${where}:${f.lineNumber + 1}` : ''}`;
  };
  console.log(`${file}: ${(all / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy`);
  // Frames of the same name under one parent are merged, so that a call made from several
  // places of one function shows once.
  const walk = (ids: number[], depth: number): void => {
    const groups = new Map<string, number[]>();
    for (const id of ids) {
      for (const c of byId.get(id)!.children ?? []) {
        const k = name(byId.get(c)!);
        if (k.startsWith('(idle)')) continue;
        groups.set(k, [...(groups.get(k) ?? []), c]);
      }
    }
    const rows = [...groups].map(([k, cs]) => ({ k, cs, t: cs.reduce((a, c) => a + totalOf(c), 0), s: cs.reduce((a, c) => a + (self.get(c) ?? 0), 0) }));
    for (const r of rows.sort((a, b) => b.t - a.t)) {
      const pct = (100 * r.t) / busy;
      if (pct < minPct) continue;
      console.log(`${'  '.repeat(depth)}${pct.toFixed(1)}% (self ${((100 * r.s) / busy).toFixed(1)}%) ${r.k}`);
      walk(r.cs, depth + 1);
    }
  };
  walk([root.id], 0);
}
