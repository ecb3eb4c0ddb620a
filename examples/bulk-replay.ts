/**
 * Bulk reads of history: the replay port streams whole stored batches of one partition,
 * sent by the server straight from the segment file with sendfile(2), at the reader's pace.
 * Here the records are decoded and counted; a bulk consumer could as well write the raw
 * batches to a file (`sluice replay --raw`).
 *
 *   node --import tsx examples/bulk-replay.ts [--replay-url tcp://127.0.0.1:8081] [--topic events]
 *        [--partition 0] [--from earliest]
 *
 * Prints the records read, their key and value bytes, and where to resume.
 */
import { parseArgs } from 'node:util';
import { replay } from 'sluice/client/replay';

const { values: args } = parseArgs({
  options: {
    'replay-url': { type: 'string', default: process.env.SLUICE_REPLAY_URL ?? 'tcp://127.0.0.1:8081' },
    topic: { type: 'string', default: 'events' },
    partition: { type: 'string', default: '0' },
    from: { type: 'string', default: 'earliest' },
  },
});

const from = args.from === 'earliest' || args.from === 'latest' ? args.from : Number(args.from);
const stream = replay({ url: args['replay-url'], topic: args.topic, partition: Number(args.partition), from });
let records = 0;
let bytes = 0;
for await (const r of stream.records()) {
  records++;
  bytes += (r.key?.length ?? 0) + (r.value?.length ?? 0);
}
// `end` says where the replay stopped (the offset to resume from) and the hw at that time.
console.log(JSON.stringify({ records, keyAndValueBytes: bytes, next: stream.end?.next ?? null, hw: stream.end?.hw ?? null }));
