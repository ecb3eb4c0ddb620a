/**
 * Produce (0), versions 3+: RecordBatch v2 only, "validated as a WebSocket PRODUCE is"
 * (wire contract §8): one whole batch per partition, its CRC, lengths, magic, codec none or
 * LZ4 (another codec is UNSUPPORTED_COMPRESSION_TYPE), then the checks every front shares
 * (engine/produce-validation.ts): every record walked (lengths, varints, offset deltas
 * 0..n-1, the count), key + value + headers within --max-record-bytes, headers within
 * --max-record-headers, the records decoded within --max-batch-decoded-bytes
 * (MESSAGE_TOO_LARGE), no timestamp further ahead of the clock than --max-timestamp-ahead-ms
 * (INVALID_TIMESTAMP), and maxTimestamp not above the records' (corrected when below). A
 * refused batch stores nothing; other partitions of the request are answered on their own.
 *
 * The batch is stored byte for byte except baseOffset (assigned) and partitionLeaderEpoch,
 * as with the WebSocket. Of the idempotent-producer fields (producerId, producerEpoch,
 * baseSequence), sluice enforces one thing (../producer-state.ts): a batch that repeats one of
 * the producer's last five on the partition is answered with the first copy's offsets and
 * not stored again. A transactional request (transactional_id set) is refused:
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED, as a broker that does not let the client use
 * transactions answers.
 *
 * --publish-rate (records/s per connection, as on the WebSocket) is enforced the Kafka way: a
 * request over the rate is stored and its answer held, with throttle_time_ms saying for how
 * long (Session.publishDelayMs).
 *
 * acks: 1 and -1 are answered once the batch is durable under the flush policy (one node is
 * the whole ISR); 0 is not answered at all. Every append of a request is started before the
 * handler first awaits, so that batches of pipelined requests reach a partition in the order
 * the client sent them.
 */
import { CorruptBatchError, SluiceError, UnknownTopicError } from '../../../engine/errors.ts';
import { checkBatch } from '../../../engine/codec/record-batch.ts';
import { validateProducedRecords } from '../../../engine/produce-validation.ts';
import type { AppendResult } from '../../../engine/log.ts';
import type { Handler } from '../session.ts';
import * as limits from '../limits.ts';
import { KafkaError, kafkaErrorFor } from '../protocol/errors.ts';
import type { KafkaShared } from '../shared.ts';
import { mayWrite } from './acl.ts';

const TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53;

interface ProduceRequest {
  transactionalId: string | null;
  acks: number;
  timeoutMs: number;
  topicData: { name: string; partitionData: { index: number; records: Buffer | null }[] }[];
}

interface PartitionAnswer {
  index: number;
  errorCode: number;
  baseOffset: number;
  logAppendTimeMs: number;
  logStartOffset: number;
  errorMessage: string | null;
  recordErrors: never[];
}

export function produceHandler(shared: KafkaShared): Handler {
  const { log, limits: configured, logger } = shared.ctx;
  return (body, _version, session) => {
    const req = body as unknown as ProduceRequest;
    let count = 0;
    for (const t of req.topicData) count += t.partitionData.length;
    const refuseAll = (errorCode: number, message: string) => ({
      body: {
        responses: req.topicData.map((t) => ({
          name: t.name,
          partitionResponses: t.partitionData.map((p) => answer(p.index, errorCode, -1, -1, message)),
        })),
        throttleTimeMs: 0,
      },
    });
    if (req.acks !== 0 && req.acks !== 1 && req.acks !== -1) return refuseAll(KafkaError.INVALID_REQUIRED_ACKS, `acks ${req.acks} is not 0, 1 or -1`);
    if (req.transactionalId !== null) return req.acks === 0 ? null : refuseAll(TRANSACTIONAL_ID_AUTHORIZATION_FAILED, 'sluice has no transactions');
    if (count > limits.partitionsPerRequestMax) return refuseAll(KafkaError.INVALID_REQUEST, `more than ${limits.partitionsPerRequestMax} partitions in one request`);

    const pending: { topic: string; index: number; append: Promise<AppendResult> | null; fail: PartitionAnswer | null }[] = [];
    let records = 0;
    for (const t of req.topicData) {
      for (const p of t.partitionData) {
        const entry = { topic: t.name, index: p.index, append: null as Promise<AppendResult> | null, fail: null as PartitionAnswer | null };
        pending.push(entry);
        try {
          if (!mayWrite(session, t.name)) {
            entry.fail = answer(p.index, KafkaError.TOPIC_AUTHORIZATION_FAILED, -1, -1, `token does not allow pub on topic ${JSON.stringify(t.name)}`);
            continue;
          }
          if (!log.hasTopic(t.name)) throw new UnknownTopicError(t.name);
          if (p.index < 0) throw new SluiceError('BAD_REQUEST', `partition ${p.index}`, 'BAD_PARTITION');
          const plog = log.partition(t.name, p.index);
          const batch = p.records;
          if (batch === null || batch.length === 0) throw new CorruptBatchError('no record batch', 'EMPTY_BATCH');
          const h = checkBatch(batch, 0, batch.length);
          // Kafka: "Produce requests with version 3 and above must contain exactly one record batch" per partition.
          if (h.size !== batch.length) {
            entry.fail = answer(p.index, KafkaError.INVALID_RECORD, -1, -1, 'a partition of a produce request holds exactly one record batch');
            continue;
          }
          validateProducedRecords(batch, h, configured);
          // The batch is a view of this request's own buffer, which nothing else uses: the log may
          // write its baseOffset in place and keep it, with no copy.
          if (h.producerId >= 0) {
            // An idempotent producer's retry of a batch already stored: its first offsets.
            const first = shared.producers.duplicateOf(plog, h.producerId, h.producerEpoch, h.baseSequence, h.recordCount);
            if (first !== null) {
              entry.append = first;
              continue;
            }
          }
          entry.append = plog.append(batch);
          if (h.producerId >= 0) shared.producers.record(plog, h.producerId, h.producerEpoch, h.baseSequence, h.recordCount, entry.append);
          shared.metrics.recordsIn.inc(h.recordCount);
          // The process-wide and per-topic counts (src/common/metrics.ts), once stored.
          const bytes = batch.length;
          entry.append.then(
            () => shared.ctx.metrics.countIn(plog.topic, h.recordCount, bytes),
            () => {},
          );
          records += h.recordCount;
        } catch (err) {
          if (!(err instanceof SluiceError)) throw err;
          entry.fail = answer(p.index, kafkaErrorFor(err), -1, -1, err.message);
        }
      }
    }
    // Over --publish-rate: stored, but answered late (Kafka's quota throttling).
    const throttleTimeMs = session.publishDelayMs(records);
    const held = throttleTimeMs > 0 ? new Promise<void>((resolve) => setTimeout(resolve, throttleTimeMs)) : null;
    if (req.acks === 0) {
      // No answer is sent; a failed append is only logged (the client asked not to know).
      for (const e of pending) e.append?.catch((err) => logger.debug({ err, topic: e.topic, partition: e.index }, 'kafka acks=0 append failed'));
      // A throttled acks=0 request still holds the answers behind it, which slows the client.
      return held === null ? null : held.then(() => null);
    }
    return (async () => {
      if (held !== null) await held;
      const byTopic = new Map<string, PartitionAnswer[]>();
      for (const e of pending) {
        let a = e.fail;
        if (a === null) {
          try {
            const r = await e.append!;
            a = answer(e.index, KafkaError.NONE, r.baseOffset, startOffsetOf(shared, e.topic, e.index), null);
          } catch (err) {
            const s = err instanceof SluiceError ? err : new SluiceError('INTERNAL', (err as Error).message);
            if (s.code === 'INTERNAL') logger.error({ err, topic: e.topic, partition: e.index }, 'kafka produce append failed');
            a = answer(e.index, kafkaErrorFor(s), -1, -1, s.message);
          }
        }
        let list = byTopic.get(e.topic);
        if (!list) byTopic.set(e.topic, (list = []));
        list.push(a);
      }
      return { body: { responses: [...byTopic].map(([name, partitionResponses]) => ({ name, partitionResponses })), throttleTimeMs } };
    })();
  };
}

function answer(index: number, errorCode: number, baseOffset: number, logStartOffset: number, errorMessage: string | null): PartitionAnswer {
  return { index, errorCode, baseOffset, logAppendTimeMs: -1, logStartOffset, errorMessage, recordErrors: [] };
}

function startOffsetOf(shared: KafkaShared, topic: string, partition: number): number {
  try {
    return shared.ctx.log.partition(topic, partition).startOffset;
  } catch {
    return -1;
  }
}
