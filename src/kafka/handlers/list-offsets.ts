/**
 * ListOffsets (2), versions 1+: earliest (-2: the partition's start), latest (-1: the hw),
 * or the first offset whose record has a timestamp at or after the one given (through the
 * time index, LogPartition.offsetForTime), with that record's timestamp. When no record is
 * that recent the answer is offset -1 and timestamp -1, as Kafka answers. Isolation level is
 * ignored (no transactions: the hw is the last stable offset).
 */
import { SluiceError, UnknownTopicError } from '../../../engine/errors.ts';
import { decodeBatchRecords, readBatchHeader } from '../../../engine/codec/record-batch.ts';
import type { LogPartition } from '../../../engine/log.ts';
import type { Handler } from '../session.ts';
import * as limits from '../limits.ts';
import { KafkaError, kafkaErrorFor } from '../protocol/errors.ts';
import type { KafkaShared } from '../shared.ts';
import { mayRead } from './acl.ts';

const LATEST = -1;
const EARLIEST = -2;

interface ListOffsetsRequest {
  topics: { name: string; partitions: { partitionIndex: number; timestamp: number }[] }[];
}

export function listOffsetsHandler(shared: KafkaShared): Handler {
  const { log } = shared.ctx;
  return (body, _version, session) => {
    const req = body as unknown as ListOffsetsRequest;
    let count = 0;
    for (const t of req.topics) count += t.partitions.length;
    const tooMany = count > limits.partitionsPerRequestMax;
    const topics = req.topics.map((t) => ({
      name: t.name,
      partitions: t.partitions.map((p) => {
        const a = { partitionIndex: p.partitionIndex, errorCode: KafkaError.NONE as number, timestamp: -1, offset: -1, leaderEpoch: 0, oldStyleOffsets: [] as number[] };
        try {
          if (tooMany) {
            a.errorCode = KafkaError.INVALID_REQUEST;
          } else if (!mayRead(session, t.name)) {
            a.errorCode = KafkaError.TOPIC_AUTHORIZATION_FAILED;
          } else {
            if (!log.hasTopic(t.name) || p.partitionIndex < 0) throw new UnknownTopicError(t.name);
            const plog = log.partition(t.name, p.partitionIndex);
            if (p.timestamp === EARLIEST) a.offset = plog.startOffset;
            else if (p.timestamp === LATEST) a.offset = plog.hw;
            else if (p.timestamp < 0) a.errorCode = KafkaError.INVALID_REQUEST;
            else Object.assign(a, byTime(plog, p.timestamp));
          }
        } catch (err) {
          if (!(err instanceof SluiceError)) throw err;
          a.errorCode = kafkaErrorFor(err);
        }
        return a;
      }),
    }));
    return { body: { throttleTimeMs: 0, topics } };
  };
}

function byTime(plog: LogPartition, timestamp: number): { offset: number; timestamp: number } {
  const offset = plog.offsetForTime(timestamp);
  if (offset >= plog.hw) return { offset: -1, timestamp: -1 };
  // The record's own timestamp: read the batch that holds it (one batch, from the mapping).
  const r = plog.read(offset, 1);
  if (r !== null) {
    const h = readBatchHeader(r.bytes, 0);
    for (const rec of decodeBatchRecords(r.bytes, 0, h)) if (rec.offset === offset) return { offset, timestamp: rec.timestamp };
  }
  return { offset, timestamp };
}
