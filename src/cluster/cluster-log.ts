/**
 * The cluster log: the `Log` interface (engine/log.ts) over a NATS JetStream cluster, for
 * `sluice serve --cluster URLS`. Several sluice nodes share one JetStream, which is the
 * source of truth; each node serves every topic from a local mirror in its data directory.
 *
 * - Each partition is one JetStream stream (names.ts) of RecordBatch v2 messages, one batch
 *   per message, byte for byte as stored. A stream per partition, not a subject per partition
 *   in a stream per topic: the write path pipelines publishes with expectations on the
 *   stream's last message (appender.ts), which only means "this partition's last batch" when
 *   the stream holds one partition; it also gives each partition its own Raft group, limits
 *   (retention.bytes is exactly max_bytes) and leader.
 * - Writes: `LogPartition.append` publishes (PartitionAppender) and resolves after the PubAck
 *   and once the mirror holds the batch. Reads: a consumer per partition feeds the mirror
 *   (MirrorFeed), a LogManager in the engine's own format, which every front reads unchanged.
 * - Topics (partitions, retention, epochs) live in a key-value bucket; every node watches it,
 *   so a topic created or deleted on one node is so on all within milliseconds, with the
 *   Log's topic events raised on each. Epochs come from the bucket: the same on every node.
 * - Consumer-group offsets live in another bucket (offset-store.ts).
 *
 * The mirror never fsyncs on every batch (`interval`): it is a copy, and what a crash takes
 * from it comes back from JetStream. Acks mean JetStream (a quorum of replicas) has it.
 */
import crypto from 'node:crypto';
import {
  type CreateTopicOptions,
  type Log,
  LogManager,
  type LogPartition,
  type OffsetStore,
  BadRequestError,
  SluiceError,
  type TopicInfo,
  type TopicListener,
  TopicExistsError,
  UnavailableError,
  UnknownTopicError,
  assertTopicName,
  checkTopicRoom,
  isValidTopicName,
  limits,
} from '../../engine/index.ts';
import type { Logger } from '../common/logger.ts';
import type { NatsConnection } from '@nats-io/nats-core';
import { DiscardPolicy, type JetStreamClient, type JetStreamManager, RetentionPolicy, StorageType, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type KV, type KvWatchEntry, Kvm } from '@nats-io/kv';
import { PartitionAppender } from './appender.ts';
import { ClusterPartition } from './cluster-partition.ts';
import { claimForCluster, resolveNodeId } from './data-dir.ts';
import { adminTimeoutMs, apiTimeoutMs, appendDeadlineMs, catchUpWaitMs, contentionYieldMs, duplicateWindowMs, publishHeaderBytesMax, retentionCheckMs, retryDelayMaxMs } from './limits.ts';
import { STREAM_NOT_FOUND, WRONG_LAST_SEQUENCE, clusterUnavailable, connectWithRetry, openBucket, sleep } from './jetstream.ts';
import { MirrorFeed } from './mirror-feed.ts';
import { epochOfStream, offsetsBucket, streamName, subjectName, topicKey, topicOfKey, topicsBucket, yieldSubject } from './names.ts';
import { KvOffsetStore } from './offset-store.ts';
import { purgeExpired } from './retention.ts';
import { type ClusterTopicMeta, encodeTopicMeta, parseTopicMeta } from './topic-meta.ts';

export interface ClusterLogOptions {
  /** NATS server URLs (`nats://host:port`), any of which may be down. */
  servers: string[];
  /** JetStream replicas of every stream and bucket sluice creates. */
  replicas: number;
  /** Prefix of every stream, subject and bucket (names.ts). */
  clusterName: string;
  /** --node-id; absent: the one kept in the data directory. */
  nodeId?: string;
  dataDir: string;
  /** The mirror's layout: as a single node's log. */
  segmentBytes?: number;
  segmentMs?: number;
  flushMs?: number;
  /** Defaults for topics created without their own. -1 keeps everything. */
  retentionMs?: number;
  retentionBytes?: number;
  /**
   * The largest batch the fronts may hand to `append` (frame and batch limits): a warning at
   * start when NATS's max_payload is smaller, as such batches will be refused TOO_LARGE.
   */
  largestBatchBytes?: number;
  /** --max-topics: topics in the cluster at once, checked by the node a create comes through. */
  topicsMax?: number;
  logger: Logger;
}

interface ClusterTopic {
  meta: ClusterTopicMeta;
  partitions: ClusterPartition[];
}

export class ClusterLog implements Log {
  private readonly topics = new Map<string, ClusterTopic>();
  /** Partitions by epoch, for the requests to yield (appender.ts). */
  private readonly byEpoch = new Map<string, ClusterPartition>();
  /** The last bucket revision applied per topic name (deletions included), so that nothing is applied twice or out of order. */
  private readonly revisions = new Map<string, number>();
  private readonly listeners = new Set<TopicListener>();
  private applying: Promise<void> = Promise.resolve();
  private watchStop: (() => void) | null = null;
  private watching: Promise<void> | null = null;
  private retentionTimer: NodeJS.Timeout | null = null;
  private closed = false;
  readonly offsets: OffsetStore;
  /** Unique to this process: message ids, consumer names. */
  readonly session: string;

  private constructor(
    private readonly opts: ClusterLogOptions,
    readonly nodeId: string,
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    /** For stream creation and deletion: a longer timeout. */
    private readonly admin: JetStreamManager,
    private readonly topicsKv: KV,
    offsetsKv: KV,
    private readonly mirror: LogManager,
    /** The largest message NATS takes. */
    readonly maxPayloadBytes: number,
  ) {
    this.offsets = new KvOffsetStore(offsetsKv);
    this.session = `${nodeId}-${crypto.randomBytes(4).toString('hex')}`;
  }

  private get logger(): Logger {
    return this.opts.logger;
  }

  /**
   * Connects to NATS, opens (or creates) the buckets and the mirror, brings the mirror's
   * topics in line with the cluster's and waits (up to catchUpWaitMs) for every partition's
   * mirror to hold what JetStream held when this started.
   */
  static async open(opts: ClusterLogOptions): Promise<ClusterLog> {
    claimForCluster(opts.dataDir, opts.clusterName);
    const nodeId = resolveNodeId(opts.dataDir, opts.nodeId);
    const logger = opts.logger;
    const nc = await connectWithRetry(opts.servers, `sluice ${nodeId}`, logger);
    let mirror: LogManager | null = null;
    let log: ClusterLog | null = null;
    try {
      const jsm = await jetstreamManager(nc, { timeout: apiTimeoutMs });
      const js = jetstream(nc, { timeout: apiTimeoutMs });
      const admin = await jetstreamManager(nc, { timeout: adminTimeoutMs });
      // Buckets are streams too (their creation needs the meta leader): the longer timeout.
      const kvm = new Kvm(jetstream(nc, { timeout: adminTimeoutMs }));
      const topicsKv = await openBucket(kvm, topicsBucket(opts.clusterName), opts.replicas);
      const offsetsKv = await openBucket(kvm, offsetsBucket(opts.clusterName), opts.replicas);
      const maxPayloadBytes = nc.info?.max_payload ?? 1024 * 1024;
      if (opts.largestBatchBytes !== undefined && maxPayloadBytes - publishHeaderBytesMax < opts.largestBatchBytes) {
        logger.warn(
          { maxPayloadBytes, largestBatchBytes: opts.largestBatchBytes },
          'NATS max_payload is below the largest batch sluice may build: such batches are refused TOO_LARGE; raise max_payload in the nats-server config (e.g. 8MB) or lower --batch-bytes / --max-frame-bytes',
        );
      }
      mirror = await LogManager.open({
        dataDir: opts.dataDir,
        flush: 'interval',
        flushMs: opts.flushMs,
        segmentBytes: opts.segmentBytes,
        segmentMs: opts.segmentMs,
        retentionMs: opts.retentionMs,
        retentionBytes: opts.retentionBytes,
        // A copy holds whatever the cluster holds: the limit is the cluster's (createTopic).
        topicsMax: Number.MAX_SAFE_INTEGER,
        logger,
      });
      log = new ClusterLog(opts, nodeId, nc, js, jsm, admin, topicsKv, offsetsKv, mirror, maxPayloadBytes);
      logger.info({ nodeId, session: log.session, servers: opts.servers, cluster: opts.clusterName, replicas: opts.replicas, maxPayloadBytes }, 'cluster mode: JetStream is the source of truth');
      await log.start();
      return log;
    } catch (err) {
      if (log) await log.close().catch(() => {});
      else await mirror?.close().catch(() => {});
      await nc.close().catch(() => {});
      throw err instanceof SluiceError ? err : clusterUnavailable('cannot start the cluster log', err);
    }
  }

  private async start(): Promise<void> {
    this.nc.subscribe(yieldSubject(this.opts.clusterName, '*'), {
      callback: (err, msg) => {
        if (err) return;
        const epoch = msg.subject.slice(msg.subject.lastIndexOf('.') + 1);
        if (msg.string() !== this.session) this.byEpoch.get(epoch)?.appender.yieldFor(contentionYieldMs);
      },
    });
    const status = await this.topicsKv.status();
    const initialRevision = status.streamInfo.state.last_seq;
    let loaded!: () => void;
    const initialLoad = new Promise<void>((r) => (loaded = r));
    if (initialRevision === 0) loaded();
    this.watching = this.watchTopics(initialRevision, loaded);
    await within(initialLoad, catchUpWaitMs);
    await this.applying;
    // The mirror's topics the cluster does not have (deleted while this node was down).
    for (const name of this.mirror.listTopics()) {
      if (!this.topics.has(name)) await this.mirror.deleteTopic(name).catch((err) => this.logger.error({ err, topic: name }, 'cannot remove a deleted topic from the mirror'));
    }
    const parts = [...this.topics.values()].flatMap((t) => t.partitions);
    const caughtUp = Promise.allSettled(parts.map((p) => p.feed.caughtUp()));
    const done = await within(caughtUp, catchUpWaitMs);
    if (!done) this.logger.warn({ waitedMs: catchUpWaitMs }, 'some mirrors have not caught up with JetStream yet; serving what they hold');
    else if (parts.length > 0) this.logger.info({ partitions: parts.length }, 'mirrors caught up with JetStream');
    this.retentionTimer = setInterval(() => void this.enforceRetention(), retentionCheckMs + Math.floor(Math.random() * 5000));
    this.retentionTimer.unref();
    void this.sweepOrphanStreams();
  }

  /** Follows the topics bucket from the start, applying each change in order; restarts after a failure. */
  private async watchTopics(initialRevision: number, loaded: () => void): Promise<void> {
    let from = 1;
    let delay = 100;
    while (!this.closed) {
      try {
        const w = await this.topicsKv.watch({ resumeFromRevision: from });
        this.watchStop = () => w.stop();
        if (this.closed) w.stop();
        for await (const e of w) {
          from = e.revision + 1;
          this.enqueue(() => this.apply(e));
          if (e.revision >= initialRevision) loaded();
          delay = 100;
        }
      } catch (err) {
        if (!this.closed) this.logger.warn({ err: (err as Error).message }, 'topic metadata watch interrupted; resuming');
      }
      if (this.closed) return;
      await sleep(delay);
      delay = Math.min(delay * 2, retryDelayMaxMs);
    }
  }

  /** Runs topic changes one at a time, in the order they were seen. */
  private enqueue(fn: () => Promise<void>): Promise<void> {
    const run = this.applying.then(fn);
    this.applying = run.catch((err) => this.logger.error({ err }, 'applying a topic change failed'));
    return run;
  }

  private async apply(e: Pick<KvWatchEntry, 'key' | 'revision' | 'operation' | 'value'>): Promise<void> {
    if (this.closed) return;
    const name = topicOfKey(e.key);
    if (!isValidTopicName(name)) return void this.logger.warn({ key: e.key }, 'ignoring a topics bucket key that names no valid topic');
    if (e.revision <= (this.revisions.get(name) ?? 0)) return;
    this.revisions.set(name, e.revision);
    if (e.operation !== 'PUT') return this.removeTopic(name);
    const parsed = parseTopicMeta(e.value);
    if ('error' in parsed || parsed.meta.name !== name) {
      this.logger.error({ topic: name, error: 'error' in parsed ? parsed.error : 'name differs from key' }, 'ignoring unreadable topic metadata in the cluster');
      return this.removeTopic(name);
    }
    const current = this.topics.get(name);
    if (current && sameEpochs(current.meta.epochs, parsed.meta.epochs)) return;
    if (current) await this.removeTopic(name);
    await this.addTopic(parsed.meta);
  }

  private async addTopic(meta: ClusterTopicMeta): Promise<void> {
    const { clusterName } = this.opts;
    const name = meta.name;
    if (this.mirror.hasTopic(name)) {
      const local = this.mirror.describe(name).partitions.map((p) => p.epoch);
      // Another incarnation of the topic (deleted and created again while this node was down).
      if (!sameEpochs(local, meta.epochs)) await this.mirror.deleteTopic(name);
    }
    if (!this.mirror.hasTopic(name)) {
      await this.mirror.createTopic(name, { partitions: meta.partitions, retentionMs: meta.retentionMs, retentionBytes: meta.retentionBytes }, { epochs: meta.epochs, createdAt: meta.createdAt });
    }
    const partitions: ClusterPartition[] = [];
    for (let p = 0; p < meta.partitions; p++) {
      const epoch = meta.epochs[p];
      const stream = streamName(clusterName, epoch);
      const mirror = this.mirror.partition(name, p);
      const feed = new MirrorFeed({
        js: this.js,
        jsm: this.jsm,
        stream,
        mirror,
        logger: this.logger,
        consumerPrefix: this.session,
        maxPayloadBytes: this.maxPayloadBytes,
        onDiverged: () => this.reannounce(name),
      });
      const appender = new PartitionAppender({
        js: this.js,
        jsm: this.jsm,
        topic: name,
        partition: p,
        stream,
        subject: subjectName(clusterName, epoch),
        mirror,
        feed,
        session: this.session,
        askToYield: () => this.nc.publish(yieldSubject(clusterName, epoch), this.session),
        batchBytesMax: this.maxPayloadBytes - publishHeaderBytesMax,
        logger: this.logger,
      });
      partitions.push(new ClusterPartition(name, p, epoch, mirror, feed, appender, stream));
    }
    this.topics.set(name, { meta, partitions });
    for (const p of partitions) this.byEpoch.set(p.epoch, p);
    for (const p of partitions) p.feed.start();
    this.emit({ type: 'created', topic: name });
  }

  private async removeTopic(name: string): Promise<void> {
    const t = this.topics.get(name);
    if (!t) return;
    this.topics.delete(name);
    for (const p of t.partitions) this.byEpoch.delete(p.epoch);
    this.emit({ type: 'deleted', topic: name });
    for (const p of t.partitions) p.appender.close(new SluiceError('UNKNOWN_TOPIC', `topic ${JSON.stringify(name)} was deleted`, 'TOPIC_DELETED'));
    await Promise.all(t.partitions.map((p) => p.feed.stop()));
    if (this.mirror.hasTopic(name)) await this.mirror.deleteTopic(name);
  }

  /**
   * A mirror was cut back because it disagreed with JetStream (mirror-feed.ts): what its
   * subscribers were sent may differ from what JetStream holds, so they are ended as if the
   * topic had been deleted, and may subscribe again; the topic itself stays.
   */
  private reannounce(name: string): void {
    const t = this.topics.get(name);
    if (!t) return;
    this.topics.delete(name);
    this.emit({ type: 'deleted', topic: name });
    this.topics.set(name, t);
    this.emit({ type: 'created', topic: name });
  }

  private emit(event: Parameters<TopicListener>[0]): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.logger.error({ err, event }, 'topic listener threw');
      }
    }
  }

  onTopicEvent(listener: TopicListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  hasTopic(topic: string): boolean {
    return this.topics.has(topic);
  }

  listTopics(): string[] {
    return [...this.topics.keys()].sort();
  }

  partitionCount(topic: string): number {
    const t = this.topics.get(topic);
    if (!t) throw new UnknownTopicError(topic);
    return t.meta.partitions;
  }

  partition(topic: string, partition: number): LogPartition {
    const t = this.topics.get(topic);
    if (!t) throw new UnknownTopicError(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= t.meta.partitions) {
      throw new BadRequestError(`partition ${partition} does not exist in ${topic} (0..${t.meta.partitions - 1})`, 'BAD_PARTITION');
    }
    return t.partitions[partition];
  }

  describe(topic: string): TopicInfo {
    if (!this.topics.has(topic)) throw new UnknownTopicError(topic);
    return this.mirror.describe(topic);
  }

  /**
   * Creates the partitions' streams, then the topic's key in the bucket (the step that makes
   * the topic exist, atomically: a create of a key that exists fails), then applies it here.
   * Resolves once the bucket holds it (every node will see it) and this node serves it.
   */
  async createTopic(topic: string, opts: CreateTopicOptions): Promise<TopicInfo> {
    this.assertOpen();
    assertTopicName(topic);
    if (!Number.isInteger(opts.partitions) || opts.partitions < 1 || opts.partitions > limits.partitionsMax) {
      throw new BadRequestError(`partitions must be an integer from 1 to ${limits.partitionsMax}`, 'BAD_PARTITIONS');
    }
    for (const [k, v] of [['retentionMs', opts.retentionMs], ['retentionBytes', opts.retentionBytes]] as const) {
      if (v !== undefined && (!Number.isSafeInteger(v) || v < -1)) throw new BadRequestError(`${k} must be an integer >= -1`, 'BAD_RETENTION');
    }
    if (this.topics.has(topic)) throw new TopicExistsError(topic);
    checkTopicRoom(this.topics.size, this.opts.topicsMax ?? limits.topicsDefault);
    const meta: ClusterTopicMeta = {
      name: topic,
      partitions: opts.partitions,
      epochs: Array.from({ length: opts.partitions }, () => crypto.randomBytes(8).toString('hex')),
      retentionMs: opts.retentionMs ?? this.opts.retentionMs ?? -1,
      retentionBytes: opts.retentionBytes ?? this.opts.retentionBytes ?? -1,
      createdAt: Date.now(),
      replicas: this.opts.replicas,
    };
    const created: string[] = [];
    try {
      await inBatches(meta.epochs, 16, async (epoch) => {
        const name = streamName(this.opts.clusterName, epoch);
        await this.admin.streams.add({
          name,
          subjects: [subjectName(this.opts.clusterName, epoch)],
          description: `sluice topic ${topic} partition ${meta.epochs.indexOf(epoch)}`,
          num_replicas: meta.replicas,
          storage: StorageType.File,
          retention: RetentionPolicy.Limits,
          discard: DiscardPolicy.Old,
          // Never below two of the largest message, so that the last one always stays (retention.ts).
          max_bytes: meta.retentionBytes < 0 ? -1 : Math.max(meta.retentionBytes, 2 * this.maxPayloadBytes),
          max_msg_size: -1,
          duplicate_window: duplicateWindowMs * 1_000_000,
        });
        created.push(name);
      });
    } catch (err) {
      await this.deleteStreams(created);
      throw clusterUnavailable(`cannot create the streams of ${JSON.stringify(topic)}`, err);
    }
    let revision: number;
    try {
      revision = await this.topicsKv.create(topicKey(topic), encodeTopicMeta(meta));
    } catch (err) {
      await this.deleteStreams(created);
      if ((err as { code?: number }).code === WRONG_LAST_SEQUENCE) throw new TopicExistsError(topic);
      throw clusterUnavailable(`cannot record topic ${JSON.stringify(topic)}`, err);
    }
    await this.enqueue(() => this.apply({ key: topicKey(topic), revision, operation: 'PUT', value: encodeTopicMeta(meta) }));
    if (!this.topics.has(topic)) throw new UnavailableError(`topic ${JSON.stringify(topic)} was created and deleted again at once`, 'CLUSTER_UNAVAILABLE');
    return this.describe(topic);
  }

  /** Deletes the topic's key (only the incarnation this node knows), applies it here, then removes the streams. */
  async deleteTopic(topic: string): Promise<void> {
    this.assertOpen();
    const t = this.topics.get(topic);
    if (!t) throw new UnknownTopicError(topic);
    const revision = this.revisions.get(topic) ?? 0;
    // Offsets first, as the local engine does: a failure here leaves the topic as it was.
    await this.offsets.forgetTopic(topic);
    try {
      await this.topicsKv.delete(topicKey(topic), { previousSeq: revision });
    } catch (err) {
      // Changed meanwhile by another node: the incarnation this node knew is gone already.
      if ((err as { code?: number }).code === WRONG_LAST_SEQUENCE) throw new UnknownTopicError(topic);
      throw clusterUnavailable(`cannot delete topic ${JSON.stringify(topic)}`, err);
    }
    await this.enqueue(async () => {
      if (this.topics.get(topic) === t) await this.removeTopic(topic);
    });
    await this.deleteStreams(t.meta.epochs.map((e) => streamName(this.opts.clusterName, e)));
    // Commits another node made between the first forget and the delete.
    await this.offsets.forgetTopic(topic).catch((err) => this.logger.warn({ err: (err as Error).message, topic }, 'cannot forget the offsets of a deleted topic'));
  }

  private async deleteStreams(names: string[]): Promise<void> {
    await inBatches(names, 16, async (name) => {
      try {
        await this.admin.streams.delete(name);
      } catch (err) {
        if ((err as { code?: number }).code !== STREAM_NOT_FOUND) this.logger.warn({ err: (err as Error).message, stream: name }, 'cannot delete a stream; it is swept at a later start');
      }
    });
  }

  /**
   * Streams of this cluster that no topic names: left by a create or delete cut short. Only
   * those older than a few minutes go, so that a create in progress elsewhere keeps its own.
   */
  private async sweepOrphanStreams(): Promise<void> {
    try {
      const known = new Set([...this.topics.values()].flatMap((t) => t.meta.epochs));
      const orphans: string[] = [];
      for await (const si of this.jsm.streams.list()) {
        const epoch = epochOfStream(this.opts.clusterName, si.config.name);
        if (epoch === null || known.has(epoch)) continue;
        if (Date.now() - new Date(si.created).getTime() < 5 * 60_000) continue;
        orphans.push(si.config.name);
      }
      if (orphans.length === 0) return;
      // Seen from this node's watch, which may lag: look at the bucket itself before deleting.
      for (const key of await collect(await this.topicsKv.keys())) {
        const e = await this.topicsKv.get(key);
        if (e?.operation !== 'PUT') continue;
        const parsed = parseTopicMeta(e.value);
        if ('meta' in parsed) for (const ep of parsed.meta.epochs) known.add(ep);
      }
      const gone = orphans.filter((n) => !known.has(epochOfStream(this.opts.clusterName, n)!));
      if (gone.length > 0) this.logger.info({ streams: gone }, 'removing streams no topic names');
      await this.deleteStreams(gone);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'cannot sweep orphan streams');
    }
  }

  /** Drops expired messages from JetStream (retention.ts); the mirror's own retention runs in its LogManager. */
  private async enforceRetention(): Promise<void> {
    for (const t of [...this.topics.values()]) {
      if (t.meta.retentionMs < 0) continue;
      for (const p of t.partitions) {
        if (this.closed) return;
        try {
          const n = await purgeExpired(this.jsm, p.stream, t.meta.retentionMs);
          if (n > 0) this.logger.info({ topic: t.meta.name, partition: p.partition, purged: n }, 'retention dropped messages from JetStream');
        } catch (err) {
          this.logger.warn({ err: (err as Error).message, stream: p.stream }, 'retention could not purge');
        }
      }
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new UnavailableError('the log is closed', 'CLOSED');
  }

  /** Answers what is in flight (bounded by the append deadline), stops the feeds, closes NATS and the mirror. */
  async close(): Promise<void> {
    if (this.closed) return;
    const parts = [...this.topics.values()].flatMap((t) => t.partitions);
    await within(Promise.all(parts.map((p) => p.appender.drain())), appendDeadlineMs);
    this.closed = true;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    this.watchStop?.();
    const closedErr = new UnavailableError('the log is closed', 'CLOSED');
    for (const p of parts) p.appender.close(closedErr);
    await Promise.all(parts.map((p) => p.feed.stop()));
    await this.applying.catch(() => {});
    await this.nc.close().catch(() => {});
    await this.watching?.catch(() => {});
    this.topics.clear();
    this.listeners.clear();
    await this.mirror.close();
  }
}

function sameEpochs(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((e, i) => e === b[i]);
}

async function inBatches<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(fn));
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Waits for `p` at most `ms`; true when it settled in time. The timer never outlives the wait. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(
      () => true,
      () => true,
    ), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
