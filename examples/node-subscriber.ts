/**
 * A Node service that follows a topic and survives restarts without losing or repeating a
 * record: it keeps its resume point `{epoch, offset}` in a checkpoint file after each run
 * of records, and starts from it the next time. The epoch tells a resumed history from a
 * new one (a topic deleted and created again restarts from its earliest record).
 *
 *   node --import tsx examples/node-subscriber.ts [--url ws://127.0.0.1:8080] [--topic demo]
 *        [--checkpoint ./demo.checkpoint.json] [--count N]
 *
 * Prints one line per record (`offset value`); with --count it stops after N records.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { connect } from 'sluice/client';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.SLUICE_URL ?? 'ws://127.0.0.1:8080' },
    topic: { type: 'string', default: 'demo' },
    checkpoint: { type: 'string', default: './demo.checkpoint.json' },
    count: { type: 'string' },
  },
});

interface Checkpoint {
  epoch: string;
  offset: number;
}

function load(): Checkpoint | null {
  try {
    return JSON.parse(fs.readFileSync(args.checkpoint, 'utf8')) as Checkpoint;
  } catch {
    return null;
  }
}

/** Written whole then renamed, so a crash leaves the old checkpoint or the new one. */
function save(c: Checkpoint): void {
  fs.writeFileSync(`${args.checkpoint}.tmp`, JSON.stringify(c));
  fs.renameSync(`${args.checkpoint}.tmp`, args.checkpoint);
}

const limit = args.count === undefined ? Infinity : Number(args.count);
let seen = 0;
const client = await connect(args.url);
const saved = load();
let finish!: () => void;
const done = new Promise<void>((resolve) => (finish = resolve));

const sub = await client.subscribe(args.topic, { partition: 0, from: saved ?? 'earliest' }, (records, s) => {
  for (const r of records) {
    if (seen >= limit) break;
    process.stdout.write(`${r.offset} ${r.text()}\n`);
    seen++;
    save({ epoch: s.positions()[0].epoch, offset: r.offset + 1 });
  }
  if (seen >= limit) finish();
});
// How this run started (`initial`, `resumed`, or `epoch-changed` for a re-created topic),
// and again after every reconnection.
const tell = (e: { reason: string; resumed: boolean }): void => void process.stderr.write(`subscribed: ${e.reason}${e.resumed ? ' (resumed exactly)' : ''}\n`);
if (sub.lastSubscribed) tell(sub.lastSubscribed);
sub.on('subscribed', tell);
sub.on('gap', (g) => process.stderr.write(`gap: records ${g.from}..${g.to - 1} were deleted by retention before they were read\n`));

if (limit === Infinity) {
  process.once('SIGINT', finish);
  process.once('SIGTERM', finish);
}
await done;
client.close();
