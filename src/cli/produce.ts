/**
 * `sluice produce`: each line of stdin (or --file) becomes one record, sent through the SDK's
 * batching producer (LZ4 batches over binary PRODUCE frames). Nothing on stdout unless
 * --json, which prints one `{"partition","offset"}` line per record, in input order.
 * Exit 1 if any record was refused (the first error on stderr).
 *
 * Keys and headers as with kcat's -P: `--key K` gives every record the key K;
 * `--key-delimiter D` splits each line at its first D into key and value (a line without D
 * is all value, with the --key key or none); `--header name=value` (repeatable) adds a header
 * to every record.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import { type Command, Option } from 'commander';
import { type PublishAck, connect } from '../client/index.ts';
import { type CommonFlags, EXIT_FAILED, UsageError, action, addTopic, addUrl, int, out, parseUrls, warn } from './common.ts';
import { parseDelimiter } from './format.ts';

interface Flags extends CommonFlags {
  key?: string;
  keyDelimiter?: string;
  header: string[];
  file?: string;
  lingerMs: string;
  compression: 'lz4' | 'none';
}

/** Records sent and not yet acked at most, so a large input streams in constant memory. */
const inFlightMax = 5000;

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** `name=value` pairs (the value may hold `=`); UsageError for one without `=` or a name. */
export function parseHeaders(pairs: string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--header ${JSON.stringify(pair)}: expected name=value`);
    headers[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return headers;
}

/** The key and value of one input line under --key-delimiter (null delimiter: the whole line is the value). */
export function splitLine(line: string, delimiter: string | null, fixedKey: string | undefined): { key: string | undefined; value: string } {
  if (delimiter !== null) {
    const at = line.indexOf(delimiter);
    if (at >= 0) return { key: line.slice(0, at), value: line.slice(at + delimiter.length) };
  }
  return { key: fixedKey, value: line };
}

export function registerProduce(program: Command): void {
  const cmd = program.command('produce').description('publish each line of stdin (or --file) as one record');
  addUrl(cmd);
  addTopic(cmd, 'partition to write to (default: by key, else the server chooses)');
  cmd
    .option('-k, --key <key>', 'key of every record (a line split by --key-delimiter uses its own)')
    .option('-K, --key-delimiter <delim>', 'split each line at its first <delim> into key and value (as kcat -K); \\t and \\xNN escapes work')
    .option('-H, --header <name=value>', 'a header on every record (repeatable)', collect, [])
    .option('--file <path>', 'read lines from this file instead of stdin')
    .option('--linger-ms <ms>', 'how long a record waits for others to share its batch', '5')
    .addOption(new Option('--compression <codec>', 'codec of the batches this sends').choices(['lz4', 'none']).default('lz4'))
    .option('-J, --json', 'print {"partition","offset"} per record')
    .action(
      action(async (flags: Flags) => {
        const partition = int(flags.partition, 'partition');
        const lingerMs = int(flags.lingerMs, 'linger-ms')!;
        const delimiter = flags.keyDelimiter === undefined ? null : parseDelimiter(flags.keyDelimiter, '--key-delimiter');
        const headers = parseHeaders(flags.header);
        const hasHeaders = flags.header.length > 0;
        const client = await connect(parseUrls(flags.url), { token: flags.token, retryFirstConnect: false });
        const producer = client.producer({ lingerMs, compression: flags.compression });
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
          const { key, value } = splitLine(line, delimiter, flags.key);
          window.push(producer.send(flags.topic!, value, { key, partition, ...(hasHeaders ? { headers } : {}) }).catch((e: Error) => e));
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
