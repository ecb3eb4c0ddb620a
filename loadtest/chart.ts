/**
 * Draws docs/benchmarks.svg from the numbers of a run (docs/benchmarks.json), so that the chart
 * in docs/benchmarks.md is generated, never drawn by hand: one panel per scenario, a bar per
 * target, on a log scale: throughput panels (higher is better), p99 latency and RSS panels
 * (lower is better).
 *
 *   node --import tsx loadtest/chart.ts      (redraws from docs/benchmarks.json)
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ChartRow {
  scenario: string;
  target: string;
  rate?: number;
  p99?: number;
  rssMiB?: number;
}
interface ChartInput {
  when: string;
  machine: string;
  loadStart: string;
  rows: ChartRow[];
}

const COLORS: Record<string, string> = {
  sluice: '#d62728',
  'sluice (flush=always)': '#ff9896',
  nats: '#1f77b4',
  'nats-jetstream': '#aec7e8',
  redis: '#8c564b',
  'ws-broadcast': '#7f7f7f',
  'uws-topic': '#2ca02c',
  'python-sendfile': '#9467bd',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
const fmt = (x: number) => (x >= 100 ? Math.round(x).toLocaleString('en') : x >= 10 ? x.toFixed(1) : x.toFixed(2));

export function renderChart(input: ChartInput): string {
  const panels: { title: string; unit: string; pick: (r: ChartRow) => number | undefined; scenario: string }[] = [
    { scenario: 'ingest', title: 'ingest, 100 conns (msg/s acked)', unit: 'msg/s', pick: (r) => r.rate },
    { scenario: 'fanout-100', title: 'fan-out 1 -> 100 (msg/s delivered)', unit: 'msg/s', pick: (r) => r.rate },
    { scenario: 'fanout-1000', title: 'fan-out 1 -> 1,000 (msg/s delivered)', unit: 'msg/s', pick: (r) => r.rate },
    { scenario: 'latency-1000', title: 'p99 latency at 1,000 msg/s -> 10 subs (ms, lower is better)', unit: 'ms', pick: (r) => r.p99 },
    { scenario: 'latency-10000', title: 'p99 latency at 10,000 msg/s -> 10 subs (ms, lower is better)', unit: 'ms', pick: (r) => r.p99 },
    { scenario: 'idle', title: 'server RSS with 10,000 idle subscribers (MiB, lower is better)', unit: 'MiB', pick: (r) => r.rssMiB },
    { scenario: 'replay', title: 'TCP replay of a 1 GiB partition to a python3 reader (MB/s)', unit: 'MB/s', pick: (r) => r.rate },
  ];
  const W = 760;
  const labelW = 170;
  const barH = 18;
  const out: string[] = [];
  let y = 64;
  for (const p of panels) {
    const rows = input.rows.filter((r) => r.scenario === p.scenario && Number.isFinite(p.pick(r)));
    if (!rows.length) continue;
    // Log scale: the values of one panel span up to three orders of magnitude (batched
    // fan-out against per-message fan-out, a saturated server against idle ones).
    const max = Math.max(...rows.map((r) => p.pick(r)!));
    const lo = Math.min(...rows.map((r) => p.pick(r)!)) / 3;
    const scale = (v: number) => (Math.log(v / lo) / Math.log(max / lo)) * (W - labelW - 110);
    out.push(`<text x="10" y="${y}" font-weight="bold">${esc(p.title)} <tspan font-weight="normal" fill="#555">(log scale)</tspan></text>`);
    y += 8;
    for (const r of rows) {
      const v = p.pick(r)!;
      const w = Math.max(1, scale(v));
      out.push(`<text x="${labelW - 6}" y="${y + 13}" text-anchor="end">${esc(r.target)}</text>`);
      out.push(`<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH - 4}" fill="${COLORS[r.target] ?? '#bcbd22'}"/>`);
      out.push(`<text x="${(labelW + w + 5).toFixed(1)}" y="${y + 13}">${fmt(v)} ${p.unit}</text>`);
      y += barH;
    }
    y += 22;
  }
  const head = `<text x="10" y="20" font-weight="bold" font-size="14">sluice and peers, same machine, same run (${esc(input.when.slice(0, 16).replace('T', ' '))} UTC)</text><text x="10" y="36" fill="#555">${esc(input.machine)}; load average at start ${esc(input.loadStart)}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" font-family="sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="white"/>\n${head}\n${out.join('\n')}\n</svg>\n`;
}

export function writeChart(input: ChartInput, file: string): void {
  fs.writeFileSync(file, renderChart(input));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  writeChart(JSON.parse(fs.readFileSync(path.join(root, 'docs/benchmarks.json'), 'utf8')) as ChartInput, path.join(root, 'docs/benchmarks.svg'));
  console.log('wrote docs/benchmarks.svg');
}
