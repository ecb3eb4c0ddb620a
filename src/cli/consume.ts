/**
 * `sluice consume`: prints the records of a topic (all partitions, or --partition): one value
 * per line by default, or `--json`, a kcat-style `--format` template, or key + value with
 * `--key-delimiter` (common.ts, format.ts). Without --follow it stops at the high watermark
 * each partition had when the subscription started; --limit stops after N records.
 *
 * A topic that does not exist: without --follow that is UNKNOWN_TOPIC (exit 1), as there is
 * nothing to print up to; with --follow it waits for the topic to be created (the server's
 * `sub` waits: docs/protocol.md), saying so on stderr.
 */
import type { Command } from 'commander';
import { type Message, SluiceError, type Subscription, connect } from '../client/index.ts';
import { type CommonFlags, action, addTopic, addUrl, int, out, parseFrom, parseUrls, stdoutGone, warn } from './common.ts';
import { type RecordOutputFlags, addRecordOutput, recordPrinter } from './format.ts';

type Flags = CommonFlags & RecordOutputFlags;

export function registerConsume(program: Command): void {
  const cmd = program.command('consume').description('print the records of a topic (stops at the end unless --follow)');
  addUrl(cmd);
  addTopic(cmd);
  cmd
    .option('-o, --from <where>', 'earliest, latest, an offset, time:MS or an ISO date', 'earliest')
    .option('-c, --limit <n>', 'stop after this many records')
    .option('--follow', 'keep printing new records (Ctrl-C to stop); waits for a topic that does not exist yet');
  addRecordOutput(cmd).action(
    action(async (flags: Flags) => {
      const partition = int(flags.partition, 'partition');
      const limit = int(flags.limit, 'limit', 1);
      const from = parseFrom(flags.from, 'earliest');
      const print = recordPrinter(flags);
      const topic = flags.topic!;
      const client = await connect(parseUrls(flags.url), { token: flags.token, retryFirstConnect: false });
      try {
        await client.meta(topic);
      } catch (err) {
        if (!(err instanceof SluiceError && err.code === 'UNKNOWN_TOPIC') || !flags.follow) {
          client.close();
          throw err;
        }
        warn(`topic ${topic} does not exist yet: waiting for it to be created`);
      }
      let printed = 0;
      /** Per partition: the hw to reach before stopping (without --follow). */
      const targets = new Map<number, number>();
      let finish!: (code: number) => void;
      const finished = new Promise<number>((resolve) => (finish = resolve));
      const reached = (sub: Subscription): boolean => sub.positions().every((p) => p.offset >= (targets.get(p.partition) ?? 0));
      const onRecords = (recs: Message[], s: Subscription): void => {
        if (stdoutGone()) return;
        let text = '';
        for (const r of recs) {
          if (limit !== undefined && printed >= limit) break;
          text += print(r);
          printed++;
        }
        if (text) void out(text);
        if (limit !== undefined && printed >= limit) finish(0);
        else if (!flags.follow && targets.size > 0 && reached(s)) finish(0);
      };
      const sub = await client.subscribe(
        topic,
        {
          partition,
          from,
          onSubscribed: (e) => {
            if (e.reason !== 'initial' && e.reason !== 'resumed') warn(`subscription to ${e.topic} ${e.reason}: resumed ${e.resumed ? 'exactly' : 'not exactly'}`);
            if (targets.size === 0) for (const p of e.partitions) targets.set(p.partition, p.hw);
          },
          onGap: (g) => warn(`records ${g.from}..${g.to - 1} of ${g.topic}/${g.partition} were deleted before they were read`),
        },
        onRecords,
      );
      sub.on('error', (err) => {
        warn(err.message);
        finish(1);
      });
      if (!flags.follow && reached(sub)) finish(0);
      const code = await finished;
      client.close();
      return code;
    }),
  );
}
