/**
 * `sluice produce`: each line of stdin (or --file) becomes one record, sent through the SDK's
 * batching producer (LZ4 batches over binary PRODUCE frames). Nothing on stdout unless
 * --json, which prints one `{"partition","offset"}` line per record, in input order.
 * Exit 1 if any record was refused (the first error on stderr).
 */
import fs from 'node:fs';
import readline from 'node:readline';
import type { Command } from 'commander';
import { type PublishAck, connect } from '../client/index.ts';
import { type CommonFlags, EXIT_FAILED, action, addTopic, addUrl, int, out, parseUrls, warn } from './common.ts';

interface Flags extends CommonFlags {
  key?: string;
  file?: string;
  lingerMs: string;
  compression: 'lz4' | 'none';
}

/** Records sent and not yet acked at most, so a large input streams in constant memory. */
const inFlightMax = 5000;

export function registerProduce(program: Command): void {
  const cmd = program.command('produce').description('publish each line of stdin (or --file) as one record');
  addUrl(cmd);
  addTopic(cmd, 'partition to write to (default: by key, else the server chooses)');
  cmd
    .option('--key <key>', 'key of every record')
    .option('--file <path>', 'read lines from this file instead of stdin')
    .option('--linger-ms <ms>', 'how long a record waits for others to share its batch', '5')
    .option('--compression <codec>', 'lz4 or none', 'lz4')
    .option('--json', 'print {"partition","offset"} per record')
    .action(
      action(async (flags: Flags) => {
        const partition = int(flags.partition, 'partition');
        const lingerMs = int(flags.lingerMs, 'linger-ms')!;
        const client = await connect(parseUrls(flags.url), { token: flags.token, retryFirstConnect: false });
        const producer = client.producer({ lingerMs, compression: flags.compression === 'none' ? 'none' : 'lz4' });
        const input = flags.file ? fs.createReadStream(flags.file) : process.stdin;
        const rl = readline.createInterface({ input, crlfDelay: Infinity });
        const window: Promise<PublishAck | Error>[] = [];
        let failed: Error | null = null;
        let sent = 0;
        const settleOne = async (): Promise<void> => {
          const r = await window.shift()!;
          if (r instanceof Error) failed ??= r;
          else if (flags.json) await out(`${JSON.stringify(r)}\n`);
        };
        for await (const line of rl) {
          window.push(producer.send(flags.topic!, line, { key: flags.key, partition }).catch((e: Error) => e));
          sent++;
          if (window.length >= inFlightMax) await settleOne();
          if (failed) break;
        }
        await producer.flush();
        while (window.length > 0) await settleOne();
        client.close();
        if (failed) {
          warn(`${sent} records read, stopped at the first refused one`);
          throw failed;
        }
        return failed ? EXIT_FAILED : 0;
      }),
    );
}
