/**
 * `--format` for `consume` and `replay`: one output template per record, with the tokens
 * kcat's `-f` uses, so a kcat habit carries over:
 *
 *   %s value   %S value length (-1 for null)   %k key   %K key length (-1 for null)
 *   %t topic   %p partition   %o offset   %T timestamp (ms since the epoch)
 *   %h headers as name=value,name=value   %% a percent sign
 *   \n \r \t \\ and \xNN (a byte in hex) as escapes
 *
 * Nothing is added: give the newline yourself (`--format '%k %s\n'`). A null key or value
 * prints as nothing. Values are written as UTF-8 text (invalid bytes become U+FFFD); `--json`
 * is the lossless form. An unknown token is refused, naming the ones there are.
 *
 * Also here: the choice among the ways to print a record (value per line, `--json`,
 * `--format`, `--key-delimiter`) that `consume` and `replay` share.
 */
import type { Command } from 'commander';
import { UsageError, recordJson, recordText } from './common.ts';

export interface FormattableRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: { key: string; value: Uint8Array | null }[];
}

type Piece = string | ((r: FormattableRecord) => string);

const TOKENS = 's S k K t p o T h %'.split(' ');
const text = new TextDecoder();
const str = (b: Uint8Array | null): string => (b === null ? '' : text.decode(b));

const TOKEN: Record<string, (r: FormattableRecord) => string> = {
  s: (r) => str(r.value),
  S: (r) => String(r.value === null ? -1 : r.value.length),
  k: (r) => str(r.key),
  K: (r) => String(r.key === null ? -1 : r.key.length),
  t: (r) => r.topic,
  p: (r) => String(r.partition),
  o: (r) => String(r.offset),
  T: (r) => String(r.timestamp),
  h: (r) => r.headers.map((h) => `${h.key}=${str(h.value)}`).join(','),
};

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\' };

/** Compiles a template once; the result renders one record. Throws UsageError for a bad template. */
export function compileFormat(template: string): (r: FormattableRecord) => string {
  const pieces: Piece[] = [];
  let lit = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c === '%') {
      const t = template[++i];
      if (t === '%') lit += '%';
      else if (t !== undefined && TOKEN[t]) {
        if (lit) pieces.push(lit);
        lit = '';
        pieces.push(TOKEN[t]);
      } else {
        throw new UsageError(`--format: ${t === undefined ? 'a % at the end' : `unknown token %${t}`}; the tokens are ${TOKENS.map((x) => `%${x}`).join(' ')}`);
      }
    } else if (c === '\\') {
      const e = template[++i];
      if (e !== undefined && ESCAPES[e]) lit += ESCAPES[e];
      else if (e === 'x' && /^[0-9a-fA-F]{2}$/.test(template.slice(i + 1, i + 3))) {
        lit += String.fromCharCode(parseInt(template.slice(i + 1, i + 3), 16));
        i += 2;
      } else throw new UsageError(`--format: unknown escape \\${e ?? ''}; the escapes are \\n \\r \\t \\\\ \\xNN`);
    } else lit += c;
  }
  if (lit) pieces.push(lit);
  return (r) => {
    let out = '';
    for (const p of pieces) out += typeof p === 'string' ? p : p(r);
    return out;
  };
}

/** A delimiter given on the command line (`--key-delimiter`), with the same escapes as --format. */
export function parseDelimiter(value: string, flag: string): string {
  let d: string;
  try {
    d = compileFormat(value.replaceAll('%', '%%'))({ topic: '', partition: 0, offset: 0, timestamp: 0, key: null, value: null, headers: [] });
  } catch (err) {
    throw new UsageError((err as Error).message.replace('--format', flag));
  }
  if (d === '') throw new UsageError(`${flag} must not be empty`);
  if (d.includes('\n')) throw new UsageError(`${flag} must not hold a newline: each line is one record`);
  return d;
}

/** How `consume` and `replay` print records: a value per line, `--json`, `--format`, or key + `--key-delimiter` + value. */
export interface RecordOutputFlags {
  json?: boolean;
  format?: string;
  keyDelimiter?: string;
}

export function addRecordOutput(cmd: Command): Command {
  return cmd
    .option('-J, --json', 'one JSON object per record (lossless: binary as base64)')
    .option('-f, --format <template>', "a line per record from a template, as kcat's -f: %s value, %S value length, %k key, %K key length, %t topic, %p partition, %o offset, %T timestamp ms, %h headers (n=v,...), %% and \\n \\t \\xNN; add \\n yourself")
    .option('-K, --key-delimiter <delim>', 'print each record as key, delimiter, value (as kcat -K)');
}

/** The printer for the chosen output; UsageError for a bad template or a conflicting choice. */
export function recordPrinter(flags: RecordOutputFlags): (r: FormattableRecord) => string {
  const chosen = [flags.json && '--json', flags.format !== undefined && '--format', flags.keyDelimiter !== undefined && '--key-delimiter'].filter(Boolean);
  if (chosen.length > 1) throw new UsageError(`${chosen.join(' and ')} exclude each other: choose one way to print records`);
  if (flags.json) return (r) => `${recordJson(r)}\n`;
  if (flags.format !== undefined) return compileFormat(flags.format);
  if (flags.keyDelimiter !== undefined) {
    const d = parseDelimiter(flags.keyDelimiter, '--key-delimiter');
    return (r) => `${r.key === null ? '' : text.decode(r.key)}${d}${recordText(r)}\n`;
  }
  return (r) => `${recordText(r)}\n`;
}
