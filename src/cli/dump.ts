/**
 * `sluice dump FILE`: decodes a segment file (or any file of whole RecordBatch v2, such as
 * `sluice replay --raw` output) with the shared codec. Every batch is checked the way
 * recovery checks it (length bounded, magic, CRC-32C); the dump stops at the first bad batch
 * with its byte position on stderr and exit code 1. Zero bytes after the last batch (a
 * segment still preallocated) end the dump quietly.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { LOG_OVERHEAD, checkBatch, decodeBatchRecords } from '../../engine/codec/index.ts';
import { SluiceError } from '../../engine/errors.ts';
import { type CommonFlags, EXIT_FAILED, action, int, out, recordJson, warn } from './common.ts';

interface Flags extends CommonFlags {
  batches?: boolean;
}

/** A batch larger than this is taken for garbage rather than read into memory. */
const batchBytesMax = 256 * 1024 * 1024;

export function registerDump(program: Command): void {
  program
    .command('dump')
    .description('decode a segment file (whole RecordBatch v2) and print its records')
    .argument('<file>', 'segment file, e.g. data/orders-0/00000000000000000000.log')
    .option('--batches', 'print one line per batch instead of per record')
    .option('--from <offset>', 'skip records below this offset')
    .option('--limit <n>', 'stop after this many records (or batches)')
    .option('--json', 'one JSON object per line')
    .action(
      action(async (file: string, flags: Flags) => {
        const from = int(flags.from, 'from') ?? 0;
        const limit = int(flags.limit, 'limit', 1) ?? Infinity;
        const fd = fs.openSync(file, 'r');
        const size = fs.fstatSync(fd).size;
        const head = Buffer.alloc(LOG_OVERHEAD);
        let pos = 0;
        let printed = 0;
        try {
          while (pos < size && printed < limit) {
            if (fs.readSync(fd, head, 0, LOG_OVERHEAD, pos) < LOG_OVERHEAD) {
              warn(`${size - pos} bytes after the last batch at position ${pos} (a torn write?)`);
              return EXIT_FAILED;
            }
            const length = head.readInt32BE(8);
            if (length === 0 && head.every((b) => b === 0)) break; // preallocated tail
            const total = length + LOG_OVERHEAD;
            if (length < 49 || total > batchBytesMax || pos + total > size) {
              warn(`bad batch at position ${pos}: length ${length} does not fit in the file`);
              return EXIT_FAILED;
            }
            const buf = Buffer.alloc(total);
            fs.readSync(fd, buf, 0, total, pos);
            let h;
            try {
              h = checkBatch(buf, 0, total);
            } catch (err) {
              warn(`bad batch at position ${pos}: ${(err as Error).message}`);
              return EXIT_FAILED;
            }
            if (flags.batches) {
              if (h.baseOffset + h.lastOffsetDelta >= from) {
                const b = { position: pos, baseOffset: h.baseOffset, lastOffset: h.baseOffset + h.lastOffsetDelta, count: h.recordCount, codec: h.codec === 3 ? 'lz4' : 'none', bytes: h.size, baseTimestamp: h.baseTimestamp, maxTimestamp: h.maxTimestamp, crc: h.crc };
                await out(flags.json ? `${JSON.stringify(b)}\n` : `position=${b.position} offsets=${b.baseOffset}..${b.lastOffset} count=${b.count} codec=${b.codec} bytes=${b.bytes} time=${new Date(b.baseTimestamp).toISOString()}\n`);
                printed++;
              }
            } else if (h.baseOffset + h.lastOffsetDelta >= from) {
              let text = '';
              for (const r of decodeBatchRecords(buf, 0, h)) {
                if (r.offset < from) continue;
                if (printed >= limit) break;
                if (flags.json) text += `${recordJson(r)}\n`;
                else {
                  const key = r.key === null ? '' : ` key=${JSON.stringify(Buffer.from(r.key).toString())}`;
                  const hs = r.headers.length ? ` headers=${JSON.stringify(Object.fromEntries(r.headers.map((x) => [x.key, x.value === null ? null : Buffer.from(x.value).toString()])))}` : '';
                  const value = r.value === null ? 'null' : JSON.stringify(Buffer.from(r.value).toString());
                  text += `offset=${r.offset} time=${new Date(r.timestamp).toISOString()}${key}${hs} value=${value}\n`;
                }
                printed++;
              }
              await out(text);
            }
            pos += total;
          }
        } catch (err) {
          if (err instanceof SluiceError) warn(`bad batch at position ${pos}: ${err.message}`);
          else throw err;
          return EXIT_FAILED;
        } finally {
          fs.closeSync(fd);
        }
        return 0;
      }),
    );
}
