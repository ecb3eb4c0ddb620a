/**
 * `sluice consume`: prints the records of a topic (all partitions, or --partition), one value
 * per line, or one JSON object per line with --json. Without --follow it stops at the high
 * watermark each partition had when the subscription started; --limit stops after N records.
 */
import type { Command } from 'commander';
import { type Message, type Subscription, connect } from '../client/index.ts';
import { type CommonFlags, action, addTopic, addUrl, int, out, parseUrls, parseFrom, recordJson, recordText, stdoutGone, warn } from './common.ts';

export function registerConsume(program: Command): void {
  const cmd = program.command('consume').description('print the records of a topic');
  addUrl(cmd);
  addTopic(cmd);
  cmd
    .option('--from <where>', 'earliest, latest, an offset, time:MS or an ISO date', 'earliest')
    .option('--limit <n>', 'stop after this many records')
    .option('--follow', 'keep printing new records (Ctrl-C to stop)')
    .option('--json', 'one JSON object per record')
    .action(
      action(async (flags: CommonFlags) => {
        const partition = int(flags.partition, 'partition');
        const limit = int(flags.limit, 'limit', 1);
        const from = parseFrom(flags.from, 'earliest');
        const client = await connect(parseUrls(flags.url), { token: flags.token, retryFirstConnect: false });
        let printed = 0;
        /** Per partition: the hw to reach before stopping (without --follow). */
        const targets = new Map<number, number>();
        let finish!: (code: number) => void;
        const finished = new Promise<number>((resolve) => (finish = resolve));
        const reached = (sub: Subscription): boolean => sub.positions().every((p) => p.offset >= (targets.get(p.partition) ?? 0));
        let sub: Subscription | null = null;
        const onRecords = (recs: Message[], s: Subscription): void => {
          if (stdoutGone()) return;
          let text = '';
          for (const r of recs) {
            if (limit !== undefined && printed >= limit) break;
            text += `${flags.json ? recordJson(r) : recordText(r)}\n`;
            printed++;
          }
          if (text) void out(text);
          if (limit !== undefined && printed >= limit) finish(0);
          else if (!flags.follow && targets.size > 0 && reached(s)) finish(0);
        };
        sub = await client.subscribe(
          flags.topic!,
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
