/**
 * The data directory: topics, their partitions, and their metadata.
 *
 *   <dataDir>/.lock                      the pid of the process that owns the directory
 *   <dataDir>/meta/<topic>.json          {name, partitions, epochs, retentionMs, retentionBytes, createdAt}
 *   <dataDir>/<topic>-<partition>/       one PartitionLog each
 *   <dataDir>/lost+found/                partition directories no metadata accounts for
 *
 * Metadata is written to a temp file, fsynced and renamed, so a crash leaves the old or the
 * new file, never half of one. A topic's metadata is written before its directories; a
 * create that fails half-way takes both back. A delete removes the metadata, then renames
 * each partition directory to `<topic>-<p>.<epoch>.deleted`, then removes it: a directory
 * so marked is what a delete cut short left, and is removed on open.
 *
 * A partition directory that no metadata accounts for (the metadata file was lost, or a
 * delete stopped between its two steps) is never deleted: it is moved to lost+found/ with
 * a loud log line, for someone to look at, re-create the topic and copy the data back.
 *
 * File descriptors: every segment holds three, and the engine keeps a reserve of them free
 * (fd-reserve.ts). A create, and a segment roll, that would eat into it is refused with
 * UNAVAILABLE (TOO_MANY_OPEN_FILES); an open whose data needs more than the limit allows
 * refuses to start, naming the numbers, instead of failing later with EMFILE.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { BadRequestError, SluiceError, TopicExistsError, UnavailableError, UnknownTopicError, storageError } from './errors.ts';
import { FdReserve, readFdLimit } from './fd-reserve.ts';
import type { FlushPolicy } from './flush.ts';
import { partitionsMax, segmentFds, topicsDefault } from './limits.ts';
import type { CreateTopicOptions, Log, OffsetStore, TopicInfo, TopicListener } from './log.ts';
import { lockDataDir, unlockDataDir } from './data-dir-lock.ts';
import type { Logger } from './logger.ts';
import { installNativeCodecs } from './native-codecs.ts';
import { LocalOffsetStore } from './offset-store.ts';
import { PartitionLog, syncDir } from './partition-log.ts';
import { assertTopicName, isValidTopicName } from './topic-name.ts';

export interface LogManagerOptions {
  dataDir: string;
  flush?: FlushPolicy;
  flushMs?: number;
  segmentBytes?: number;
  segmentMs?: number;
  /** Defaults for topics created without their own. -1 keeps everything. */
  retentionMs?: number;
  retentionBytes?: number;
  /** How often retention runs, in ms (0 disables the timer; `enforceRetention` still works). */
  retentionCheckMs?: number;
  /** Topics held at once; one more create is BAD_REQUEST (TOO_MANY_TOPICS). */
  topicsMax?: number;
  /** How far record timestamps may be ahead of the clock (retention caps segment times with it). */
  timestampAheadMs?: number;
  /** The descriptor reserve; the process's own (RLIMIT_NOFILE) when absent. */
  fds?: FdReserve;
  logger?: Logger;
}

const TopicMeta = z.object({
  name: z.string(),
  partitions: z.number().int().min(1).max(partitionsMax),
  epochs: z.array(z.string()),
  retentionMs: z.number().int().min(-1),
  retentionBytes: z.number().int().min(-1),
  createdAt: z.number(),
});
type TopicMeta = z.infer<typeof TopicMeta>;

interface Topic {
  meta: TopicMeta;
  logs: PartitionLog[];
}

/** One more topic past `topicsMax` (--max-topics) is BAD_REQUEST (TOO_MANY_TOPICS), whichever log holds them. */
export function checkTopicRoom(held: number, topicsMax: number): void {
  if (held >= topicsMax) {
    throw new BadRequestError(`the server holds ${held} topics, as many as --max-topics ${topicsMax} allows: delete one first`, 'TOO_MANY_TOPICS');
  }
}

export class LogManager implements Log {
  private readonly topics = new Map<string, Topic>();
  /**
   * Topics whose metadata file exists but could not be read: not served, and their data is
   * neither removed as a leftover nor overwritten by a create, so someone can repair it.
   */
  private readonly unreadable = new Set<string>();
  private readonly topicListeners = new Set<TopicListener>();
  /** Deletes under way, by topic name (settled when done, failed or not). */
  private readonly deleting = new Map<string, Promise<void>>();
  private retentionTimer: NodeJS.Timeout | null = null;
  private closed = false;
  readonly offsets: OffsetStore;
  readonly fds: FdReserve;

  private constructor(
    readonly opts: LogManagerOptions,
    private readonly lockKey: string,
  ) {
    this.offsets = new LocalOffsetStore(path.join(opts.dataDir, 'groups'));
    this.fds = opts.fds ?? FdReserve.forProcess();
  }

  static async open(opts: LogManagerOptions): Promise<LogManager> {
    installNativeCodecs();
    const dataDir = path.resolve(opts.dataDir);
    fs.mkdirSync(path.join(dataDir, 'meta'), { recursive: true });
    const lockKey = lockDataDir(dataDir);
    const mgr = new LogManager({ ...opts, dataDir }, lockKey);
    mgr.logFdLimit();
    try {
      mgr.load();
    } catch (err) {
      mgr.unlock();
      throw err;
    }
    const every = opts.retentionCheckMs ?? 30_000;
    if (every > 0) {
      mgr.retentionTimer = setInterval(() => mgr.enforceRetention(), every);
      mgr.retentionTimer.unref();
    }
    return mgr;
  }

  get dataDir(): string {
    return this.opts.dataDir;
  }

  private metaPath(topic: string): string {
    return path.join(this.dataDir, 'meta', `${topic}.json`);
  }

  private partitionDir(topic: string, partition: number): string {
    return path.join(this.dataDir, `${topic}-${partition}`);
  }

  /** Says at start what RLIMIT_NOFILE allows, and what the engine leaves to connections. */
  private logFdLimit(): void {
    const log = this.opts.logger;
    const soft = this.fds.limit;
    if (soft === null) {
      log?.warn({}, 'the file descriptor limit (RLIMIT_NOFILE) is unknown here: no descriptor reserve is kept');
      return;
    }
    const hard = readFdLimit()?.hard ?? soft;
    const info = { softLimit: soft, hardLimit: hard, reserve: this.fds.reserve, inUse: this.fds.inUse(), perSegment: segmentFds };
    log?.info(info, `file descriptors: RLIMIT_NOFILE ${soft}; up to ${soft - this.fds.reserve} for segments (${segmentFds} each), ${this.fds.reserve} kept free for connections`);
    if (soft < hard) log?.info(info, `the soft descriptor limit is below the hard one: ulimit -n ${hard} before starting allows more`);
  }

  private load(): void {
    const metaDir = path.join(this.dataDir, 'meta');
    const metas: TopicMeta[] = [];
    for (const f of fs.readdirSync(metaDir)) {
      if (f.endsWith('.tmp')) {
        fs.rmSync(path.join(metaDir, f), { force: true });
        continue;
      }
      if (!f.endsWith('.json')) continue;
      const name = f.slice(0, -5);
      let meta: TopicMeta;
      try {
        meta = TopicMeta.parse(JSON.parse(fs.readFileSync(path.join(metaDir, f), 'utf8')));
        if (meta.name !== name || !isValidTopicName(name) || meta.epochs.length !== meta.partitions) throw new Error('inconsistent');
      } catch (err) {
        this.opts.logger?.error({ err, file: f }, 'skipping unreadable topic metadata');
        this.unreadable.add(name);
        continue;
      }
      metas.push(meta);
    }
    this.assertDescriptorsFor(metas);
    try {
      for (const meta of metas) this.topics.set(meta.name, { meta, logs: this.openLogs(meta) });
    } catch (err) {
      for (const t of this.topics.values()) for (const l of t.logs) l.release();
      this.topics.clear();
      throw err;
    }
    for (const d of fs.readdirSync(this.dataDir, { withFileTypes: true })) {
      if (!d.isDirectory() || d.name === 'meta') continue;
      // What a delete marked and did not get to remove.
      if (d.name.endsWith('.deleted')) {
        fs.rmSync(path.join(this.dataDir, d.name), { recursive: true, force: true });
        continue;
      }
      const m = /^(.+)-(\d+)$/.exec(d.name);
      if (!m) continue;
      const t = this.topics.get(m[1]);
      // A topic whose metadata could not be read keeps its data in place for someone to look at.
      if (t ? Number(m[2]) < t.meta.partitions : this.unreadable.has(m[1])) continue;
      this.setAside(d.name, t ? 'a partition beyond its topic\'s count' : 'no topic metadata names it');
    }
  }

  /**
   * Moves a partition directory nobody accounts for to lost+found/, never deleting it: the
   * metadata may have been lost while the data is fine. Said loudly, with where it went.
   */
  private setAside(name: string, why: string): void {
    const lostFound = path.join(this.dataDir, 'lost+found');
    fs.mkdirSync(lostFound, { recursive: true });
    let dest = path.join(lostFound, name);
    if (fs.existsSync(dest)) dest = `${dest}.${Date.now()}`;
    fs.renameSync(path.join(this.dataDir, name), dest);
    syncDir(lostFound);
    syncDir(this.dataDir);
    this.opts.logger?.error(
      { dir: name, movedTo: dest, why },
      'a partition directory that no topic accounts for was moved to lost+found/ (not deleted): re-create its topic and copy the segments back to keep the data',
    );
  }

  /**
   * Refuses to open a data directory whose segments need more descriptors than the limit
   * leaves after the reserve: failing here names the numbers; failing later is EMFILE on
   * some socket or file, and a server that cannot accept connections.
   */
  private assertDescriptorsFor(metas: TopicMeta[]): void {
    if (this.fds.limit === null) return;
    let segments = 0;
    for (const meta of metas) {
      for (let p = 0; p < meta.partitions; p++) {
        let n = 0;
        try {
          for (const f of fs.readdirSync(this.partitionDir(meta.name, p))) if (f.endsWith('.log')) n++;
        } catch {
          // not there yet: opened as one new segment
        }
        segments += Math.max(1, n);
      }
    }
    if (!this.fds.hasRoomFor(segments * segmentFds)) {
      throw new UnavailableError(
        `the data directory holds ${segments} segments (${segments * segmentFds} file descriptors), more than RLIMIT_NOFILE ${this.fds.limit} allows with ${this.fds.reserve} kept free for connections: raise ulimit -n, or lower retention`,
        'TOO_MANY_OPEN_FILES',
      );
    }
  }

  /** Opens every partition of a topic; on a failure, releases those already open. */
  private openLogs(meta: TopicMeta): PartitionLog[] {
    const logs: PartitionLog[] = [];
    try {
      for (let p = 0; p < meta.partitions; p++) {
        logs.push(
          PartitionLog.open(this.partitionDir(meta.name, p), meta.name, p, meta.epochs[p], {
            flush: this.opts.flush,
            flushMs: this.opts.flushMs,
            segmentBytes: this.opts.segmentBytes,
            segmentMs: this.opts.segmentMs,
            retentionMs: meta.retentionMs,
            retentionBytes: meta.retentionBytes,
            timestampAheadMs: this.opts.timestampAheadMs,
            fds: this.fds,
            logger: this.opts.logger,
          }),
        );
      }
    } catch (err) {
      for (const l of logs) l.release();
      throw err;
    }
    return logs;
  }

  private writeMeta(meta: TopicMeta): void {
    const file = this.metaPath(meta.name);
    // `<name>.tmp`, not `<name>.json.tmp`: with a 249-byte name the latter is 258 bytes,
    // over the 255-byte file name limit (ENAMETOOLONG).
    const tmp = path.join(this.dataDir, 'meta', `${meta.name}.tmp`);
    const fd = fs.openSync(tmp, 'w', 0o644);
    try {
      fs.writeSync(fd, JSON.stringify(meta));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    syncDir(path.dirname(file));
  }

  /**
   * The local engine has created the topic (metadata and directories synced) when this
   * resolves. `identity` gives the epochs and creation time instead of drawing new ones: a
   * cluster node's mirror takes them from the cluster's metadata, so that a partition has
   * the same epoch on every node.
   */
  async createTopic(name: string, opts: CreateTopicOptions, identity?: { epochs: string[]; createdAt: number }): Promise<TopicInfo> {
    this.assertOpen();
    assertTopicName(name);
    if (!Number.isInteger(opts.partitions) || opts.partitions < 1 || opts.partitions > partitionsMax) {
      throw new BadRequestError(`partitions must be an integer from 1 to ${partitionsMax}`, 'BAD_PARTITIONS');
    }
    for (const [k, v] of [['retentionMs', opts.retentionMs], ['retentionBytes', opts.retentionBytes]] as const) {
      if (v !== undefined && (!Number.isSafeInteger(v) || v < -1)) throw new BadRequestError(`${k} must be an integer >= -1`, 'BAD_RETENTION');
    }
    // A delete of this name still under way (it awaits the offset store) holds its metadata
    // and directories: the create waits for it, then finds the place free.
    for (let pending = this.deleting.get(name); pending; pending = this.deleting.get(name)) await pending;
    this.assertOpen();
    if (this.topics.has(name)) throw new TopicExistsError(name);
    if (this.unreadable.has(name)) {
      throw new SluiceError('UNAVAILABLE', `topic ${JSON.stringify(name)} has unreadable metadata; repair or remove ${this.metaPath(name)}`, 'TOPIC_METADATA_UNREADABLE');
    }
    checkTopicRoom(this.topics.size, this.opts.topicsMax ?? topicsDefault);
    // Its segments, the metadata's temp file and the directory fsyncs.
    this.fds.assertRoomFor(opts.partitions * segmentFds + 2, `create topic ${JSON.stringify(name)}`);
    if (identity && identity.epochs.length !== opts.partitions) throw new BadRequestError(`${identity.epochs.length} epochs for ${opts.partitions} partitions`, 'BAD_PARTITIONS');
    const meta: TopicMeta = {
      name,
      partitions: opts.partitions,
      epochs: identity ? [...identity.epochs] : Array.from({ length: opts.partitions }, () => crypto.randomBytes(8).toString('hex')),
      retentionMs: opts.retentionMs ?? this.opts.retentionMs ?? -1,
      retentionBytes: opts.retentionBytes ?? this.opts.retentionBytes ?? -1,
      createdAt: identity?.createdAt ?? Date.now(),
    };
    // A directory of this name without a topic: kept aside, never overwritten.
    for (let p = 0; p < meta.partitions; p++) {
      if (fs.existsSync(this.partitionDir(name, p))) this.setAside(`${name}-${p}`, 'in the way of a new topic of that name');
    }
    let logs: PartitionLog[];
    try {
      this.writeMeta(meta);
      logs = this.openLogs(meta);
      syncDir(this.dataDir);
    } catch (err) {
      this.undoCreate(meta);
      throw storageError(err, `cannot create topic ${JSON.stringify(name)}`);
    }
    this.topics.set(name, { meta, logs });
    this.emit({ type: 'created', topic: name });
    return this.describe(name);
  }

  /**
   * Takes back a create that failed half-way (out of descriptors, disk full), so that no
   * metadata without its data, nor data without metadata, is left: what is removed here
   * was made by this create a moment ago and holds nothing.
   */
  private undoCreate(meta: TopicMeta): void {
    try {
      fs.rmSync(this.metaPath(meta.name), { force: true });
      fs.rmSync(path.join(this.dataDir, 'meta', `${meta.name}.tmp`), { force: true });
      for (let p = 0; p < meta.partitions; p++) fs.rmSync(this.partitionDir(meta.name, p), { recursive: true, force: true });
    } catch (err) {
      this.opts.logger?.error({ err, topic: meta.name }, 'could not take back a failed topic create; the next start sets its directories aside');
    }
  }

  async deleteTopic(name: string): Promise<void> {
    this.assertOpen();
    const t = this.topics.get(name);
    if (!t) throw new UnknownTopicError(name);
    this.topics.delete(name);
    const done = this.removeTopic(name, t);
    const settled = done.then(
      () => {},
      () => {},
    );
    this.deleting.set(name, settled);
    try {
      await done;
    } finally {
      if (this.deleting.get(name) === settled) this.deleting.delete(name);
    }
  }

  /** deleteTopic's work, once the topic is out of `topics`. */
  private async removeTopic(name: string, t: Topic): Promise<void> {
    // Offsets first: a crash before the topic's files go leaves the topic with no committed
    // positions (its groups start over), never a topic created again later that inherits them.
    // Commits arriving meanwhile find the topic gone.
    try {
      await this.offsets.forgetTopic(name);
    } catch (err) {
      this.topics.set(name, t);
      throw err;
    }
    fs.rmSync(this.metaPath(name), { force: true });
    syncDir(path.join(this.dataDir, 'meta'));
    // Marked before anyone is told (a listener may create the topic again at once: its new
    // directories must find the place free), and so that a stop between here and the
    // removal leaves directories the next open knows to remove, not ones it must set aside.
    const marked: string[] = [];
    for (const log of t.logs) {
      const doomed = `${log.dir}.${log.epoch}.deleted`;
      try {
        fs.renameSync(log.dir, doomed);
        marked.push(doomed);
      } catch (err) {
        this.opts.logger?.warn({ err, dir: log.dir }, 'could not mark a deleted partition directory; removing it in place');
      }
    }
    if (marked.length > 0) syncDir(this.dataDir);
    this.emit({ type: 'deleted', topic: name });
    for (const log of t.logs) await log.destroy();
    for (const dir of marked) fs.rmSync(dir, { recursive: true, force: true });
  }

  onTopicEvent(listener: TopicListener): () => void {
    this.topicListeners.add(listener);
    return () => this.topicListeners.delete(listener);
  }

  private emit(event: Parameters<TopicListener>[0]): void {
    for (const l of this.topicListeners) {
      try {
        l(event);
      } catch (err) {
        this.opts.logger?.error({ err, event }, 'topic listener threw');
      }
    }
  }

  hasTopic(name: string): boolean {
    return this.topics.has(name);
  }

  listTopics(): string[] {
    return [...this.topics.keys()].sort();
  }

  partitionCount(name: string): number {
    const t = this.topics.get(name);
    if (!t) throw new UnknownTopicError(name);
    return t.meta.partitions;
  }

  /** The partition's log; UnknownTopicError or OFFSET-free BadRequest for a bad partition. */
  partition(name: string, partition: number): PartitionLog {
    const t = this.topics.get(name);
    if (!t) throw new UnknownTopicError(name);
    if (!Number.isInteger(partition) || partition < 0 || partition >= t.meta.partitions) {
      throw new BadRequestError(`partition ${partition} does not exist in ${name} (0..${t.meta.partitions - 1})`, 'BAD_PARTITION');
    }
    return t.logs[partition];
  }

  describe(name: string): TopicInfo {
    const t = this.topics.get(name);
    if (!t) throw new UnknownTopicError(name);
    return {
      name,
      retentionMs: t.meta.retentionMs,
      retentionBytes: t.meta.retentionBytes,
      createdAt: t.meta.createdAt,
      partitions: t.logs.map((l) => ({
        partition: l.partition,
        epoch: l.epoch,
        start: l.startOffset,
        hw: l.hw,
        bytes: l.bytes,
        segments: l.segmentCount,
      })),
    };
  }

  enforceRetention(now = Date.now()): number {
    let n = 0;
    for (const t of this.topics.values()) {
      for (const l of t.logs) {
        try {
          n += l.enforceRetention(now);
        } catch (err) {
          this.opts.logger?.error({ err, topic: l.topic, partition: l.partition }, 'retention failed');
        }
      }
    }
    return n;
  }

  private assertOpen(): void {
    if (this.closed) throw new SluiceError('UNAVAILABLE', 'the log is closed', 'CLOSED');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    for (const t of this.topics.values()) for (const l of t.logs) await l.close();
    this.topics.clear();
    this.topicListeners.clear();
    this.unlock();
  }

  private unlock(): void {
    unlockDataDir(this.dataDir, this.lockKey);
  }
}
