/** Markdown tables padded for the terminal: the same text reads in a shell and in docs/. */

export function formatTable(cols: string[], rows: string[][]): string {
  const w = cols.map((c, i) => Math.max(c.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (vals: string[]) => `| ${vals.map((v, i) => (v ?? '').padEnd(w[i])).join(' | ')} |`;
  return [line(cols), `|${w.map((n) => '-'.repeat(n + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** 1234567 -> "1,234,567"; NaN/undefined -> "-". */
export function num(x: number | undefined, digits = 0): string {
  if (x === undefined || !Number.isFinite(x)) return '-';
  return x.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
