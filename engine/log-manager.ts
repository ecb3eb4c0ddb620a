/**
 * The data directory: topics, their partitions, and their metadata.
 *
 *   <dataDir>/.lock                      the pid of the process that owns the directory
 *   <dataDir>/meta/<topic>.json          {name, partitions, epochs, retentionMs, retentionBytes, createdAt}
 *   <dataDir>/<topic>-<partition>/       one PartitionLog each
 *
 * Metadata is written to a temp file, fsynced and renamed, so a crash leaves the old or the
 * new file, never half of one. A topic's metadata is written before its directories and
 * removed before them, so directories without metadata are leftovers and are removed on open.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { BadRequestError, SluiceError, TopicExistsError, UnknownTopicError } from './errors.ts';
import type { FlushPolicy } from './flush.ts';
import { partitionsMax } from './limits.ts';
import type { CreateTopicOptions, Log, OffsetStore, TopicInfo, TopicListener } from './log.ts';
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

export class LogManager implements Log {
  private readonly topics = new Map<string, Topic>();
  /**
   * Topics whose metadata file exists but could not be read: not served, and their data is
   * neither removed as a leftover nor overwritten by a create, so someone can repair it.
   */
  private readonly unreadable = new Set<string>();
  private readonly topicListeners = new Set<TopicListener>();
  private retentionTimer: NodeJS.Timeout | null = null;
  private closed = false;
  readonly offsets: OffsetStore;

  private constructor(
    readonly opts: LogManagerOptions,
    private readonly lockKey: string,
  ) {
    this.offsets = new LocalOffsetStore(path.join(opts.dataDir, 'groups'));
  }

  static async open(opts: LogManagerOptions): Promise<LogManager> {
    installNativeCodecs();
    const dataDir = path.resolve(opts.dataDir);
    fs.mkdirSync(path.join(dataDir, 'meta'), { recursive: true });
    const lockKey = lockDataDir(dataDir);
    const mgr = new LogManager({ ...opts, dataDir }, lockKey);
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

  private load(): void {
    const metaDir = path.join(this.dataDir, 'meta');
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
      this.topics.set(name, { meta, logs: this.openLogs(meta) });
    }
    // Partition directories of no known topic: a deletion or creation cut short.
    for (const d of fs.readdirSync(this.dataDir, { withFileTypes: true })) {
      if (!d.isDirectory() || d.name === 'meta') continue;
      const m = /^(.+)-(\d+)$/.exec(d.name);
      if (!m) continue;
      const t = this.topics.get(m[1]);
      // A topic whose metadata could not be read keeps its data for someone to look at.
      if (t ? Number(m[2]) < t.meta.partitions : this.unreadable.has(m[1])) continue;
      this.opts.logger?.warn({ dir: d.name }, 'removing a partition directory that belongs to no topic');
      fs.rmSync(path.join(this.dataDir, d.name), { recursive: true, force: true });
    }
  }

  private openLogs(meta: TopicMeta): PartitionLog[] {
    const logs: PartitionLog[] = [];
    for (let p = 0; p < meta.partitions; p++) {
      logs.push(
        PartitionLog.open(this.partitionDir(meta.name, p), meta.name, p, meta.epochs[p], {
          flush: this.opts.flush,
          flushMs: this.opts.flushMs,
          segmentBytes: this.opts.segmentBytes,
          segmentMs: this.opts.segmentMs,
          retentionMs: meta.retentionMs,
          retentionBytes: meta.retentionBytes,
          logger: this.opts.logger,
        }),
      );
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
    if (this.topics.has(name)) throw new TopicExistsError(name);
    if (this.unreadable.has(name)) {
      throw new SluiceError('UNAVAILABLE', `topic ${JSON.stringify(name)} has unreadable metadata; repair or remove ${this.metaPath(name)}`, 'TOPIC_METADATA_UNREADABLE');
    }
    if (identity && identity.epochs.length !== opts.partitions) throw new BadRequestError(`${identity.epochs.length} epochs for ${opts.partitions} partitions`, 'BAD_PARTITIONS');
    const meta: TopicMeta = {
      name,
      partitions: opts.partitions,
      epochs: identity ? [...identity.epochs] : Array.from({ length: opts.partitions }, () => crypto.randomBytes(8).toString('hex')),
      retentionMs: opts.retentionMs ?? this.opts.retentionMs ?? -1,
      retentionBytes: opts.retentionBytes ?? this.opts.retentionBytes ?? -1,
      createdAt: identity?.createdAt ?? Date.now(),
    };
    for (let p = 0; p < meta.partitions; p++) fs.rmSync(this.partitionDir(name, p), { recursive: true, force: true });
    this.writeMeta(meta);
    const topic = { meta, logs: this.openLogs(meta) };
    this.topics.set(name, topic);
    syncDir(this.dataDir);
    this.emit({ type: 'created', topic: name });
    return this.describe(name);
  }

  async deleteTopic(name: string): Promise<void> {
    this.assertOpen();
    const t = this.topics.get(name);
    if (!t) throw new UnknownTopicError(name);
    this.topics.delete(name);
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
    this.emit({ type: 'deleted', topic: name });
    for (const log of t.logs) await log.destroy();
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
    const lock = path.join(this.dataDir, '.lock');
    lockedHere.delete(this.lockKey);
    try {
      if (fs.readFileSync(lock, 'utf8').trim() === String(process.pid)) fs.rmSync(lock);
    } catch {
      // already gone
    }
  }
}

/** Data dirs (real paths) locked by a live LogManager of this process. */
const lockedHere = new Set<string>();

/**
 * Two writers appending to one directory would interleave batches and corrupt it: the
 * lock file holds the owner's pid, and a lock whose pid is no longer alive is taken over.
 * A lock with this process's own pid is held only if a LogManager here still holds it;
 * otherwise it was left by an earlier process that had the same pid (pid 1 in a container).
 */
function lockDataDir(dataDir: string): string {
  const lock = path.join(dataDir, '.lock');
  const key = fs.realpathSync(dataDir);
  if (lockedHere.has(key)) {
    throw new SluiceError('UNAVAILABLE', `data directory ${dataDir} is in use by this process`, 'DATA_DIR_LOCKED');
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      lockedHere.add(key);
      return key;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(fs.readFileSync(lock, 'utf8').trim());
      if (pid !== process.pid && Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
        throw new SluiceError('UNAVAILABLE', `data directory ${dataDir} is in use by process ${pid}`, 'DATA_DIR_LOCKED');
      }
      fs.rmSync(lock, { force: true });
    }
  }
  throw new SluiceError('UNAVAILABLE', `cannot lock data directory ${dataDir}`, 'DATA_DIR_LOCKED');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
