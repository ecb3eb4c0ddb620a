/**
 * `sluice replay`: bulk read of one partition over the TCP replay port (wire contract §4,
 * src/client/replay.ts). Records go to stdout (or --out FILE) as text lines, JSON lines, or
 * with --raw the stored RecordBatch v2 bytes unchanged (a file `sluice dump` reads back).
 * A progress line is drawn on stderr when stderr is a terminal.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { decodeBatches } from '../../engine/codec/index.ts';
import { replay } from '../client/replay.ts';
import { type CommonFlags, UsageError, action, httpBase, int, out, parseUrls } from './common.ts';
import { type RecordOutputFlags, addRecordOutput, recordPrinter } from './format.ts';

interface Flags extends CommonFlags, RecordOutputFlags {
  to?: string;
  out?: string;
  raw?: boolean;
  progress?: boolean;
}

export function registerReplay(program: Command): void {
  const cmd = program
    .command('replay')
    .description('read one partition in bulk from the replay port')
    .option('--replay-url <url>', 'replay address ($SLUICE_REPLAY_URL)', process.env.SLUICE_REPLAY_URL ?? 'tcp://127.0.0.1:8081')
    .option('--url <url>', 'server HTTP address, used for the progress total only', process.env.SLUICE_URL ?? 'ws://127.0.0.1:8080')
    .option('--token <jwt>', 'token, when the server has auth on ($SLUICE_TOKEN)', process.env.SLUICE_TOKEN)
    .requiredOption('-t, --topic <topic>', 'topic name')
    .option('-p, --partition <n>', 'partition', '0')
    .option('-o, --from <where>', 'earliest, latest or an offset', 'earliest')
    .option('--to <offset>', 'stop before this offset')
    .option('-c, --limit <n>', 'stop after this many records')
    .option('--follow', 'keep streaming new records')
    .option('--out <file>', 'write to this file instead of stdout')
    .option('--raw', 'write the stored batches unchanged (readable by `sluice dump`)')
    .option('--no-progress', 'no progress line on stderr, even on a terminal');
  addRecordOutput(cmd).action(
    action(async (flags: Flags) => {
      const partition = int(flags.partition, 'partition')!;
      const limit = int(flags.limit, 'limit', 1);
      let to = int(flags.to, 'to');
      const from = flags.from === 'earliest' || flags.from === 'latest' ? flags.from : int(flags.from, 'from');
      if (from === undefined) throw new UsageError('--from must be earliest, latest or an offset');
      if (flags.raw && (flags.json || flags.format !== undefined || flags.keyDelimiter !== undefined)) throw new UsageError('--raw writes batches, not records: it excludes --json, --format and --key-delimiter');
      const print = recordPrinter(flags);
      const topic = flags.topic!;
      if (limit !== undefined && typeof from === 'number') to = Math.min(to ?? Infinity, from + limit);
      const sink = flags.out ? fs.createWriteStream(flags.out) : null;
      const write = (b: string | Uint8Array): Promise<void> | void => {
        if (!sink) return out(b);
        if (!sink.write(b)) return new Promise((r) => sink.once('drain', r));
      };
      const progress = flags.progress !== false && process.stderr.isTTY ? new Progress(await totalHint(flags, partition, from, to)) : null;
      const stream = replay({ url: flags.replayUrl, topic: flags.topic!, partition, from, to, follow: flags.follow, token: flags.token });
      let records = 0;
      let bytes = 0;
      let min = typeof from === 'number' ? from : -Infinity;
      try {
        outer: for await (const chunk of stream) {
          bytes += chunk.bytes.length;
          if (flags.raw) {
            await write(chunk.bytes);
            records = chunk.first; // position shown as an offset
          } else {
            let text = '';
            for (const r of decodeBatches(chunk.bytes, min)) {
              if (to !== undefined && r.offset >= to) break;
              text += print({ ...r, topic, partition });
              records++;
              min = r.offset + 1;
              if (limit !== undefined && records >= limit) {
                await write(text);
                break outer;
              }
            }
            await write(text);
          }
          progress?.update(records, bytes, flags.raw);
        }
      } finally {
        stream.close();
        progress?.done(records, bytes, flags.raw);
        if (sink) await new Promise<void>((r) => sink.end(r));
      }
    }),
  );
}

/** How many records the replay should cover, from the HTTP API; null when unknown. */
async function totalHint(flags: Flags, partition: number, from: number | 'earliest' | 'latest', to: number | undefined): Promise<number | null> {
  try {
    const res = await fetch(`${httpBase(parseUrls(flags.url)[0])}/v1/topics/${encodeURIComponent(flags.topic!)}`, { signal: AbortSignal.timeout(2000) });
    if (!res.ok) return null;
    const info = (await res.json()) as { partitions: { partition: number; start: number; hw: number }[] };
    const p = info.partitions.find((x) => x.partition === partition);
    if (!p || from === 'latest') return null;
    const start = from === 'earliest' ? p.start : Math.max(from, p.start);
    return Math.max(0, Math.min(to ?? p.hw, p.hw) - start);
  } catch {
    return null;
  }
}

class Progress {
  private last = 0;
  private readonly t0 = Date.now();
  constructor(private readonly total: number | null) {}

  update(records: number, bytes: number, raw?: boolean): void {
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    this.draw(records, bytes, raw);
  }

  done(records: number, bytes: number, raw?: boolean): void {
    this.draw(records, bytes, raw);
    process.stderr.write('\n');
  }

  private draw(records: number, bytes: number, raw?: boolean): void {
    const s = Math.max(0.001, (Date.now() - this.t0) / 1000);
    const mb = bytes / 1e6;
    const width = 30;
    let bar = '';
    if (this.total && !raw) {
      const f = Math.min(1, records / this.total);
      bar = `[${'#'.repeat(Math.round(f * width)).padEnd(width, '.')}] ${(f * 100).toFixed(0).padStart(3)}% `;
    }
    const what = raw ? `at offset ${records}` : `${records} records`;
    process.stderr.write(`\r${bar}${what}, ${mb.toFixed(1)} MB, ${(mb / s).toFixed(1)} MB/s   `);
  }
}
