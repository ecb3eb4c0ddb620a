/**
 * The chunk loop of one replay (wire contract §4): from the request's start offset, ask the
 * partition for whole batches (`LogPartition.read`, sized by limits.chunkBytesMax and
 * chunkBatchesMax), write the chunk header through Node, then hand the byte range to
 * sendFileRange, which waits until Node has nothing queued and sends from a file descriptor
 * opened on `segment.logPath` (../common/segment-fd.ts, shared with the Kafka front). The log's
 * own descriptor is never used: retention may close it mid-transfer. Our own descriptor keeps
 * a deleted file's inode alive, so a chunk in flight when retention deletes its segment
 * completes; the next chunk then finds its offset below the log start and the replay ends
 * with OFFSET_OUT_OF_RANGE.
 *
 * Whole batches only: a batch that straddles `to` is sent whole, the client skips the rest.
 * Fairness: the loop yields to the event loop after every chunk, and the sendfile addon
 * returns to the loop after a bounded burst. Follow: at the high watermark it waits for a
 * commit of the partition (the listener only wakes it), then reads on at the client's pace.
 * A token that expires ends the replay at the next chunk boundary.
 */
import type net from 'node:net';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import {
  type Log,
  type LogPartition,
  OffsetOutOfRangeError,
  SluiceError,
  UnavailableError,
  batchSizeAt,
  encodeChunkHeader,
  readBatchHeader,
} from '../../engine/index.ts';
import { type Principal, msUntilExpiry } from '../common/auth.ts';
import type { Logger } from '../common/logger.ts';
import { SegmentFd } from '../common/segment-fd.ts';
import { type SendfileError, type SendfileStats, sendFileRange } from '../common/sendfile.ts';
import * as limits from './limits.ts';
import type { ReplayRequest } from './request.ts';

/** The connection is gone or its byte stream is no longer in step: nothing more can be said. */
export class ConnectionLost extends Error {}

/** What the chunk loop needs of the connection it writes to. */
export interface ReplayOutput {
  readonly socket: net.Socket;
  /** Aborts a transfer in flight (the connection closed). */
  readonly signal: AbortSignal;
  /** The connection is gone: stop at once. */
  readonly closed: boolean;
  /** The server is shutting down: end with UNAVAILABLE at the next chunk boundary. */
  readonly shuttingDown: boolean;
  /** A new request line arrived: a follow replay ends at the next chunk boundary. */
  readonly stopFollow: boolean;
  /** Writes through Node; throws ConnectionLost once the connection is gone. */
  write(bytes: Uint8Array): void;
  /** Writes an error header for `err` (INTERNAL, logged, for anything but a SluiceError). */
  writeError(err: unknown): void;
  /** Resolves on wakeUp(), a new request line, shutdown, close, or after `ms`. */
  waitForWake(ms: number): Promise<void>;
  wakeUp(): void;
}

export interface StreamDeps {
  logger: Logger;
  /** Told how each transfer went (bytes by path), for the metrics. */
  onStats: (stats: SendfileStats) => void;
}

/** Batches in the first `length` bytes of a run of whole batches (their length fields only). */
function countBatches(bytes: Uint8Array, length: number): number {
  let n = 0;
  for (let pos = 0; pos < length; n++) {
    const size = batchSizeAt(bytes, pos, length);
    if (size <= 0) break; // cannot happen for bytes the log returned; never loop on it
    pos += size;
  }
  return Math.max(1, n);
}

/** Streams one replay to `out`; ends with an end header, or an error header, or throws ConnectionLost. */
export async function streamReplay(manager: Log, req: ReplayRequest, principal: Principal | null, out: ReplayOutput, deps: StreamDeps): Promise<void> {
  let log: LogPartition;
  const file = new SegmentFd();
  let unsubscribe: (() => void) | null = null;
  try {
    log = manager.partition(req.topic, req.partition);
    let offset: number;
    if (req.from === 'earliest') offset = log.startOffset;
    else if (req.from === 'latest') offset = log.hw;
    else {
      offset = req.from;
      if (offset < log.startOffset || offset > log.hw) {
        throw new OffsetOutOfRangeError(`offset ${offset} is outside the partition's range ${log.startOffset}..${log.hw}`);
      }
    }
    if (req.to !== undefined && typeof req.from === 'number' && req.to < req.from) {
      throw new SluiceError('BAD_REQUEST', `to (${req.to}) is below from (${req.from})`, 'BAD_RANGE');
    }
    let remaining = req.maxBytes ?? Infinity;
    let chunkBytes = limits.chunkBytesFirst;
    let sentAny = false;
    let enoentRetries = 0;
    if (req.follow) {
      unsubscribe = log.onCommit(() => out.wakeUp());
    }
    for (;;) {
      if (out.closed) throw new ConnectionLost();
      if (out.shuttingDown) throw new UnavailableError('the server is shutting down', 'SHUTTING_DOWN');
      // A token that expires during a long or follow replay ends it (checked per chunk and
      // per followCheckMs while waiting); a new request with a fresh token goes on.
      if (msUntilExpiry(principal) === 0) throw new SluiceError('UNAUTHORIZED', `token expired during the replay; resume from ${offset} with a fresh token`, 'TOKEN_EXPIRED');
      if (req.to !== undefined && offset >= req.to) break;
      if (remaining <= 0) break;
      // The topic may have been deleted (and created again) since the last chunk.
      const current = manager.partition(req.topic, req.partition);
      if (current !== log) throw new SluiceError('UNKNOWN_TOPIC', `topic ${JSON.stringify(req.topic)} was deleted during the replay`, 'TOPIC_DELETED');
      let r;
      try {
        r = log.read(offset, Math.min(chunkBytes, remaining));
      } catch (err) {
        if (err instanceof OffsetOutOfRangeError && offset < log.startOffset) {
          throw new OffsetOutOfRangeError(`retention deleted offsets ${offset}..${log.startOffset - 1} during the replay; the partition now starts at ${log.startOffset}`);
        }
        throw err;
      }
      if (r === null) {
        if (!req.follow || out.stopFollow) break;
        await out.waitForWake(limits.followCheckMs);
        continue;
      }
      let length = r.bytes.length;
      let next = r.nextOffset;
      if (sentAny && length > remaining) break; // the next batch alone is over maxBytes
      if (req.to !== undefined && next > req.to) {
        // Whole batches only: keep those that start below `to` (the last may straddle it).
        let pos = 0;
        while (pos < length) {
          const h = readBatchHeader(r.bytes, pos);
          if (h.baseOffset >= req.to) break;
          pos += h.size;
          next = h.baseOffset + h.lastOffsetDelta + 1;
        }
        length = pos;
      }
      const fd = file.open(r.segment);
      // Deleted since the read: the next read sees the new log start.
      if (fd === null) {
        if (++enoentRetries <= 3) continue;
        throw new UnavailableError('cannot open segment: ENOENT', 'IO_ERROR');
      }
      out.write(encodeChunkHeader(r.gap ? { ok: true, bytes: length, first: r.firstOffset, gap: r.gap } : { ok: true, bytes: length, first: r.firstOffset }));
      try {
        await sendFileRange(out.socket, fd, r.position, length, { signal: out.signal, onStats: deps.onStats });
      } catch (err) {
        // The header promised `length` bytes: whatever went wrong, the stream cannot be
        // repaired, so the connection ends. A file shorter than the log says is a bug
        // worth a log line; a peer that went away is not.
        const reason = (err as SendfileError).reason;
        if (reason === 'SENDFILE_SHORT_FILE' || reason === 'SENDFILE_RANGE' || reason === 'SENDFILE_BUSY') {
          deps.logger.error({ err, topic: req.topic, partition: req.partition, position: r.position, length }, 'replay transfer failed');
        } else {
          deps.logger.debug({ err }, 'replay transfer ended by the connection');
        }
        throw new ConnectionLost();
      }
      sentAny = true;
      remaining -= length;
      // Size the next chunk from this one's bytes per batch (see chunkBatchesMax).
      const perBatch = length / countBatches(r.bytes, length);
      chunkBytes = Math.max(limits.chunkBytesFirst, Math.min(limits.chunkBytesMax, Math.floor(perBatch * limits.chunkBatchesMax)));
      offset = next;
      if (out.stopFollow && req.follow) break;
      await yieldToLoop();
    }
    out.write(encodeChunkHeader({ ok: true, end: true, bytes: 0, next: offset, hw: log.hw }));
  } catch (err) {
    if (err instanceof ConnectionLost) throw err;
    out.writeError(err);
  } finally {
    unsubscribe?.();
    file.close();
  }
}

