/**
 * Many records, few round trips: the SDK's producer gathers records per topic-partition
 * (up to `lingerMs` or `batchBytes`), builds one LZ4 RecordBatch v2 on the client and sends
 * it as one binary PRODUCE frame; the server validates and stores it as it is. Keyed
 * records land on the partition a Kafka client would choose (murmur2).
 *
 *   node --import tsx examples/batching-producer.ts [--url ws://127.0.0.1:8080] [--topic events]
 *        [--records 10000]
 *
 * Prints how many records were acked, on which partitions, and at what rate.
 */
import { parseArgs } from 'node:util';
import { connect } from 'sluice/client';

const { values: args } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.SLUICE_URL ?? 'ws://127.0.0.1:8080' },
    topic: { type: 'string', default: 'events' },
    records: { type: 'string', default: '10000' },
  },
});

const n = Number(args.records);
const client = await connect(args.url);
const producer = client.producer({ lingerMs: 5, batchBytes: 256 * 1024, compression: 'lz4' });
const started = performance.now();
const acks = await Promise.all(
  Array.from({ length: n }, (_, i) =>
    producer.send(args.topic, JSON.stringify({ event: 'click', seq: i, at: Date.now() }), { key: `user-${i % 100}` }),
  ),
);
await producer.flush();
const seconds = (performance.now() - started) / 1000;

const partitions = [...new Set(acks.map((a) => a.partition))].sort((a, b) => a - b);
console.log(JSON.stringify({ acked: acks.length, partitions, seconds: Number(seconds.toFixed(3)), recordsPerSecond: Math.round(acks.length / seconds) }));
client.close();
