/**
 * Fetch (1), versions 4+: the stored batches, byte for byte, from the one that holds the
 * fetch offset (wire contract §8: "clients skip records below the offset they asked for, as
 * with Kafka"). Records are never decoded here.
 *
 * Sizes (KIP-74): the response holds at most max_bytes of batches and each partition at most
 * its partition_max_bytes, except that the first partition with data always gets its first
 * whole batch, however large, so that a consumer can never be stuck behind a batch bigger
 * than its limits. A later partition whose next batch does not fit gets no data this time.
 * A partition's data comes from one segment per fetch, and at most limits.fetchPartitionBytesMax
 * of it (the next fetch continues).
 *
 * Waiting: when the batches found are fewer than min_bytes (usually 1: "any data"), the fetch
 * waits up to max_wait_ms (capped by limits.fetchWaitMsMax) and is woken by the commits of
 * the partitions it asked for, by a topic being deleted, or by the server shutting down;
 * then it reads again. A fetch at the hw with nothing arriving answers empty at max_wait_ms.
 *
 * Sending: a partition's batches of limits.sendfileBytesMin bytes and more go out with
 * sendfile(2) from a descriptor opened here on the segment file (../../common/segment-fd.ts
 * says why ours); smaller ones are written from the log's mapped view. Descriptors are closed
 * once the response is out (Reply.release).
 *
 * Isolation level is ignored: sluice has no transactions, so READ_COMMITTED and
 * READ_UNCOMMITTED see the same records, and last_stable_offset is the hw. Fetch sessions
 * (KIP-227) are not kept: a request that asks for one gets session id 0, which tells the
 * client to send full fetches; an incremental fetch in a session is FETCH_SESSION_ID_NOT_FOUND.
 */
import { OffsetOutOfRangeError, SluiceError, UnknownTopicError } from '../../../engine/errors.ts';
import type { LogPartition, ReadResult } from '../../../engine/log.ts';
import { SegmentFd } from '../../common/segment-fd.ts';
import type { Handler, Reply, Session } from '../session.ts';
import * as limits from '../limits.ts';
import { KafkaError, kafkaErrorFor } from '../protocol/errors.ts';
import type { RecordsValue } from '../protocol/schema.ts';
import type { KafkaShared } from '../shared.ts';
import { mayRead } from './acl.ts';

interface FetchRequest {
  maxWaitMs: number;
  minBytes: number;
  maxBytes: number;
  isolationLevel: number;
  sessionId: number;
  sessionEpoch: number;
  topics: { topic: string; partitions: { partition: number; fetchOffset: number; partitionMaxBytes: number }[] }[];
}

interface PartitionData {
  partitionIndex: number;
  errorCode: number;
  highWatermark: number;
  lastStableOffset: number;
  logStartOffset: number;
  abortedTransactions: null;
  preferredReadReplica: number;
  records: RecordsValue;
}

const EMPTY = Buffer.alloc(0);

export function fetchHandler(shared: KafkaShared, shutdown: AbortSignal): Handler {
  return (body, version, session) => fetch(shared, shutdown, body as unknown as FetchRequest, version, session);
}

async function fetch(shared: KafkaShared, shutdown: AbortSignal, req: FetchRequest, version: number, session: Session): Promise<Reply | null> {
  const empty = (errorCode: number): Reply => ({ body: { throttleTimeMs: 0, errorCode, sessionId: 0, responses: [] } });
  // Incremental fetches belong to a session this server never created.
  if (req.sessionId !== 0 || req.sessionEpoch > 0) return empty(KafkaError.FETCH_SESSION_ID_NOT_FOUND);
  let count = 0;
  for (const t of req.topics) count += t.partitions.length;
  if (count > limits.partitionsPerRequestMax) return empty(KafkaError.INVALID_REQUEST);

  const deadline = Date.now() + Math.max(0, Math.min(req.maxWaitMs, limits.fetchWaitMsMax));
  const minBytes = Math.max(1, req.minBytes);
  for (;;) {
    const round = collect(shared, req, session);
    const now = Date.now();
    if (round.bytes >= minBytes || round.errors || now >= deadline || session.closed || shutdown.aborted) {
      if (session.closed) return null;
      return round.reply(version);
    }
    await waitForData(shared, round.watched, deadline - now, session.signal, shutdown);
  }
}

interface Round {
  bytes: number;
  errors: boolean;
  watched: LogPartition[];
  reply(version: number): Reply;
}

/** One pass over the requested partitions: what would be sent now. Opens no descriptor yet. */
function collect(shared: KafkaShared, req: FetchRequest, session: Session): Round {
  const { log } = shared.ctx;
  let budget = req.maxBytes > 0 ? req.maxBytes : 0x7fffffff;
  let bytes = 0;
  let errors = false;
  let first = true;
  const watched: LogPartition[] = [];
  const topics: { topic: string; partitions: { data: PartitionData; read: ReadResult | null }[] }[] = [];
  for (const t of req.topics) {
    const partitions: { data: PartitionData; read: ReadResult | null }[] = [];
    topics.push({ topic: t.topic, partitions });
    for (const p of t.partitions) {
      const data: PartitionData = {
        partitionIndex: p.partition,
        errorCode: KafkaError.NONE,
        highWatermark: -1,
        lastStableOffset: -1,
        logStartOffset: -1,
        abortedTransactions: null,
        preferredReadReplica: -1,
        records: EMPTY,
      };
      const entry = { data, read: null as ReadResult | null };
      partitions.push(entry);
      try {
        if (!mayRead(session, t.topic)) {
          data.errorCode = KafkaError.TOPIC_AUTHORIZATION_FAILED;
          errors = true;
          continue;
        }
        if (!log.hasTopic(t.topic) || p.partition < 0) throw new UnknownTopicError(t.topic);
        const plog = log.partition(t.topic, p.partition);
        const hw = plog.hw;
        data.highWatermark = hw;
        data.lastStableOffset = hw;
        data.logStartOffset = plog.startOffset;
        watched.push(plog);
        if (p.fetchOffset < plog.startOffset || p.fetchOffset > hw) throw new OffsetOutOfRangeError(`offset ${p.fetchOffset} is outside ${plog.startOffset}..${hw}`);
        if (p.fetchOffset === hw) continue;
        const limit = Math.min(Math.max(0, p.partitionMaxBytes), budget, limits.fetchPartitionBytesMax);
        if (!first && limit <= 0) continue;
        const r = plog.read(p.fetchOffset, Math.max(1, limit));
        if (r === null) continue;
        // A read past offsets lost to storage damage (`r.gap`) needs nothing more here: Kafka
        // consumers go on from the offsets the batches carry, as over a compacted topic.
        // Only the first partition with data may exceed the limits (by its first batch).
        if (!first && r.bytes.length > limit) continue;
        first = false;
        entry.read = r;
        budget -= r.bytes.length;
        bytes += r.bytes.length;
      } catch (err) {
        if (!(err instanceof SluiceError)) throw err;
        data.errorCode = kafkaErrorFor(err);
        errors = true;
      }
    }
  }
  return {
    bytes,
    errors,
    watched,
    reply: () => {
      const fds: SegmentFd[] = [];
      for (const t of topics) {
        for (const { data, read } of t.partitions) {
          if (read === null) continue;
          data.records = recordsOf(shared, read, fds);
        }
      }
      return {
        body: {
          throttleTimeMs: 0,
          errorCode: KafkaError.NONE,
          sessionId: 0,
          responses: topics.map((t) => ({ topic: t.topic, partitions: t.partitions.map((p) => p.data) })),
        },
        release: () => {
          for (const f of fds) f.close();
        },
      };
    },
  };
}

function recordsOf(shared: KafkaShared, read: ReadResult, fds: SegmentFd[]): RecordsValue {
  const length = read.bytes.length;
  if (length >= limits.sendfileBytesMin) {
    const file = new SegmentFd();
    const fd = file.open(read.segment);
    if (fd !== null) {
      fds.push(file);
      return { kind: 'file', fd, position: read.position, length };
    }
    // Deleted by retention since the read: the mapped view is still valid while referenced.
  }
  shared.metrics.fetchBytes.inc({ path: 'mapped' }, length);
  return read.bytes;
}

/** Resolves on a commit to any watched partition, a topic deletion, close, shutdown, or after `ms`. */
function waitForData(shared: KafkaShared, watched: LogPartition[], ms: number, closed: AbortSignal, shutdown: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const stops: (() => void)[] = [];
    let timer: NodeJS.Timeout | null = null;
    let fired = false;
    const done = (): void => {
      if (fired) return;
      fired = true;
      if (timer) clearTimeout(timer);
      for (const s of stops) s();
      closed.removeEventListener('abort', done);
      shutdown.removeEventListener('abort', done);
      resolve();
    };
    timer = setTimeout(done, ms);
    for (const p of watched) stops.push(p.onCommit(done));
    stops.push(shared.ctx.log.onTopicEvent((e) => e.type === 'deleted' && done()));
    closed.addEventListener('abort', done, { once: true });
    shutdown.addEventListener('abort', done, { once: true });
  });
}
