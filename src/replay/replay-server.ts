/**
 * The TCP bulk replay front (wire contract §4): a client sends one JSON request line and
 * gets the stored batches of one partition back as chunks, straight from the segment files
 * with sendfile(2).
 *
 *   request   one line of JSON ending in `\n`, at most requestLineBytesMax bytes
 *   chunk     u32 headerLength | header JSON | body
 *             {"ok":true,"bytes":N,"first":baseOffsetOfFirstBatch} + N bytes of whole batches
 *   end       {"ok":true,"end":true,"bytes":0,"next":offset,"hw":offset}
 *   error     {"ok":false,"code","message"}
 *
 * After an end or an error the connection takes the next request line. A line that is not
 * JSON, or longer than the limit, gets an error header and the connection is closed (the
 * stream cannot be trusted to be in step any more); a JSON line that is not a valid request
 * gets BAD_REQUEST and the connection stays.
 *
 * How a replay runs: a loop of chunks. Each chunk asks the partition log for whole batches
 * (`PartitionLog.read`, sized by limits.chunkBytesMax and chunkBatchesMax), writes the
 * header through Node, then hands the byte range to sendFileRange, which waits until Node has nothing queued and sends from a file
 * descriptor this server opened on `segment.logPath` itself. The engine's descriptor is never
 * used: retention may close it mid-transfer. Our own descriptor keeps a deleted file's inode
 * alive, so a chunk in flight when retention deletes its segment completes; the next chunk
 * then finds its offset below the log start and the replay ends with OFFSET_OUT_OF_RANGE.
 *
 * Memory: nothing is buffered for a replay. A client that stops reading parks its transfer
 * on a full socket buffer; it holds a socket, one descriptor and this loop's state. Fairness:
 * a replay yields to the event loop after every chunk, and the addon itself returns to the
 * loop after a bounded burst.
 *
 * Auth: with a key configured, each request's `token` must verify and its acl.sub cover the
 * topic (UNAUTHORIZED / FORBIDDEN otherwise), checked before the topic is looked up; a token
 * that expires ends its replay at the next chunk boundary. Without a key it is ignored.
 *
 * Follow: when a replay reaches the high watermark it waits for PartitionLog.onCommit, whose
 * listener only wakes it; the loop then reads from the log at the client's pace.
 */
import fs from 'node:fs';
import net from 'node:net';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import {
  type LogPartition,
  OffsetOutOfRangeError,
  batchSizeAt,
  readBatchHeader,
  type SegmentFile,
  SluiceError,
  UnavailableError,
} from '../../engine/index.ts';
import { type Auth, type Principal, authenticate, authorize, msUntilExpiry } from '../common/auth.ts';
import type { Front, FrontContext } from '../common/front.ts';
import type { Logger } from '../common/logger.ts';
import * as limits from './limits.ts';
import { type ReplayRequest, parseReplayRequest } from './request.ts';
import { type SendfileError, type SendfileStats, loadSendfile, sendFileRange } from '../common/sendfile.ts';

/** The replay front, with what its tests and benchmarks look at. */
export interface ReplayFront extends Front {
  /** Replays running now (follow replays included). */
  readonly inFlight: number;
  readonly connections: number;
  /** Whether chunks go out through the sendfile addon (false: the read + write fallback). */
  readonly sendfile: boolean;
}

/** Builds one frame header: u32 length | JSON. */
export function chunkHeader(header: object): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.allocUnsafe(4 + json.length);
  out.writeUInt32BE(json.length, 0);
  json.copy(out, 4);
  return out;
}

function errorHeader(code: string, message: string): Buffer {
  return chunkHeader({ ok: false, code, message });
}

/** Batches in the first `length` bytes of a run of whole batches (their length fields only). */
function countBatches(bytes: Buffer, length: number): number {
  let n = 0;
  for (let pos = 0; pos < length; n++) {
    const size = batchSizeAt(bytes, pos, length);
    if (size <= 0) break; // cannot happen for bytes the log returned; never loop on it
    pos += size;
  }
  return Math.max(1, n);
}

/** The connection is gone or its byte stream is no longer in step: nothing more can be said. */
class ConnectionLost extends Error {}

interface Shared {
  readonly ctx: FrontContext;
  /** Counts each transfer's bytes by path (sendfile or fallback) in the metrics. */
  readonly onStats: (stats: SendfileStats) => void;
  readonly auth: Auth | null;
  inFlight: number;
  closing: boolean;
}

export async function startReplayServer(ctx: FrontContext): Promise<ReplayFront> {
  // loadSendfile tells the logger once why the addon did not load.
  const native = process.env.SLUICE_SENDFILE !== 'off' && loadSendfile(ctx.logger) !== null;
  if (!native) ctx.logger.warn({ SLUICE_SENDFILE: process.env.SLUICE_SENDFILE }, 'replay sends through the read + write fallback, not sendfile(2)');
  const shared: Shared = {
    ctx,
    auth: ctx.auth,
    onStats: (stats) => ctx.metrics.replayBytes.inc({ path: stats.path === 'native' ? 'sendfile' : 'fallback' }, stats.bytesSent),
    inFlight: 0,
    closing: false,
  };
  const connections = new Set<ReplayConnection>();
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    if (shared.closing) {
      socket.destroy();
      return;
    }
    const conn = new ReplayConnection(socket, shared);
    connections.add(conn);
    ctx.metrics.replayConnections.inc();
    socket.once('close', () => {
      connections.delete(conn);
      ctx.metrics.replayConnections.dec();
    });
  });
  server.on('error', (err) => ctx.logger.error({ err }, 'replay server error'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(ctx.config.replayPort, ctx.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  let closing: Promise<void> | null = null;
  return {
    name: 'replay',
    port,
    sendfile: native,
    get inFlight() {
      return shared.inFlight;
    },
    get connections() {
      return connections.size;
    },
    close() {
      closing ??= (async () => {
        shared.closing = true;
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const c of connections) c.shutdown();
        if (connections.size > 0) {
          // Replays end at their next chunk boundary with UNAVAILABLE; a client that stopped
          // reading would hold us forever, so the grace period is bounded.
          await new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              for (const c of connections) c.destroy();
              resolve();
            }, limits.shutdownGraceMs);
            const check = (): void => {
              if (connections.size === 0) {
                clearTimeout(timer);
                resolve();
              }
            };
            for (const c of connections) c.socket.once('close', () => setImmediate(check));
            check();
          });
        }
        await stopped;
      })();
      return closing;
    },
  };
}

class ReplayConnection {
  /** Bytes of a line not yet ended by `\n`. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** Complete lines waiting for the running replay to end. */
  private readonly lines: Buffer[] = [];
  private busy = false;
  private inputEnded = false;
  private closed = false;
  private shuttingDown = false;
  /** Set when a line arrives during a follow replay: the follow ends at its next chunk boundary. */
  private stopFollow = false;
  /** Wakes a follow replay waiting for appends (or for shutdown, close, a new line). */
  private wake: (() => void) | null = null;
  private readonly abort = new AbortController();
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly socket: net.Socket,
    private readonly shared: Shared,
  ) {
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('end', () => {
      this.inputEnded = true;
      this.pump();
    });
    socket.on('error', () => this.destroy());
    socket.on('close', () => {
      this.closed = true;
      this.clearIdle();
      this.abort.abort();
      this.wakeUp();
    });
    this.armIdle();
  }

  private get logger(): Logger {
    return this.shared.ctx.logger;
  }

  destroy(): void {
    this.closed = true;
    this.abort.abort();
    this.socket.destroy();
    this.wakeUp();
  }

  /** Server shutdown: idle connections close now, replays at their next chunk boundary. */
  shutdown(): void {
    this.shuttingDown = true;
    this.lines.length = 0;
    if (!this.busy) this.socket.end();
    this.wakeUp();
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private armIdle(): void {
    this.clearIdle();
    this.idleTimer = setTimeout(() => this.destroy(), limits.idleTimeoutMs);
    this.idleTimer.unref();
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private onData(data: Buffer): void {
    if (this.closed || this.shuttingDown) return;
    let start = 0;
    for (;;) {
      const nl = data.indexOf(0x0a, start);
      if (nl < 0) break;
      const piece = data.subarray(start, nl);
      const line = this.partialBytes > 0 ? Buffer.concat([...this.partial, piece]) : piece;
      this.partial = [];
      this.partialBytes = 0;
      start = nl + 1;
      if (line.length > limits.requestLineBytesMax) return this.refuseLine('TOO_LARGE', `request line longer than ${limits.requestLineBytesMax} bytes`);
      this.lines.push(Buffer.from(line));
    }
    if (start < data.length) {
      this.partial.push(Buffer.from(data.subarray(start)));
      this.partialBytes += data.length - start;
      if (this.partialBytes > limits.requestLineBytesMax) return this.refuseLine('TOO_LARGE', `request line longer than ${limits.requestLineBytesMax} bytes`);
    }
    if (this.lines.length > 0) {
      // Pipelined lines wait for the running replay; stop reading so they cannot pile up.
      if (this.busy) {
        this.socket.pause();
        this.stopFollow = true;
        this.wakeUp();
      }
      this.pump();
    }
  }

  /**
   * A line that cannot be a request ends the connection: after an error header when no
   * replay is writing (bytes of a transfer may be in flight otherwise), at once if one is.
   */
  private refuseLine(code: string, message: string, transferRunning = this.busy): void {
    this.lines.length = 0;
    this.partial = [];
    this.partialBytes = 0;
    this.shuttingDown = true;
    if (transferRunning) {
      this.destroy();
      return;
    }
    // Keep reading (and dropping) what the client still sends, so that unread input does
    // not turn our close into a reset that could discard the error header; a client that
    // never closes its side is cut off after the grace period.
    this.socket.resume();
    this.socket.end(errorHeader(code, message));
    this.closed = true;
    setTimeout(() => this.socket.destroy(), limits.shutdownGraceMs).unref();
  }

  private pump(): void {
    if (this.busy || this.closed) return;
    const line = this.lines.shift();
    if (line === undefined) {
      if (this.inputEnded || this.shuttingDown) this.socket.end();
      else {
        this.socket.resume();
        this.armIdle();
      }
      return;
    }
    this.busy = true;
    this.stopFollow = this.lines.length > 0;
    this.clearIdle();
    this.handle(line)
      .catch((err) => {
        if (!(err instanceof ConnectionLost)) this.logger.error({ err }, 'replay failed');
        this.destroy();
      })
      .finally(() => {
        this.busy = false;
        this.pump();
      });
  }

  private async handle(line: Buffer): Promise<void> {
    const text = line.toString('utf8').trim();
    if (text === '') return; // blank lines (a stray `\r\n`) are not requests
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.refuseLine('BAD_REQUEST', 'the request line is not JSON', false);
      return;
    }
    let req: ReplayRequest;
    try {
      req = parseReplayRequest(json);
    } catch (err) {
      this.writeError(err);
      return;
    }
    if (this.shuttingDown || this.shared.closing) return this.writeError(new UnavailableError('the server is shutting down', 'SHUTDOWN'));
    // Wire contract §4: the token is "checked against acl.sub". Before anything about the
    // topic is looked up, so that a client without rights cannot learn which topics exist.
    // With auth off `authenticate` gives null and every topic may be replayed.
    let principal: Principal | null;
    try {
      principal = await authenticate(this.shared.auth, req.token);
      authorize(principal, 'sub', req.topic);
    } catch (err) {
      return this.writeError(err);
    }
    if (this.shared.inFlight >= limits.replaysInFlightMax) {
      return this.writeError(new UnavailableError(`${limits.replaysInFlightMax} replays are in flight, the most this server runs at once`, 'REPLAYS_IN_FLIGHT'));
    }
    this.shared.inFlight++;
    this.shared.ctx.metrics.replayTransfers.inc();
    try {
      await this.replay(req, principal);
    } finally {
      this.shared.inFlight--;
      this.shared.ctx.metrics.replayTransfers.dec();
    }
  }

  private write(buf: Buffer): void {
    if (this.closed || this.socket.destroyed) throw new ConnectionLost();
    this.socket.write(buf);
  }

  private writeError(err: unknown): void {
    if (err instanceof SluiceError) {
      this.write(errorHeader(err.code, err.message));
    } else {
      this.logger.error({ err }, 'replay failed');
      this.write(errorHeader('INTERNAL', 'internal error'));
    }
  }

  private async replay(req: ReplayRequest, principal: Principal | null): Promise<void> {
    const { log: manager } = this.shared.ctx;
    let log: LogPartition;
    let file: { segment: SegmentFile; fd: number } | null = null;
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
        unsubscribe = log.onCommit(() => this.wakeUp());
      }
      for (;;) {
        if (this.closed) throw new ConnectionLost();
        if (this.shuttingDown) throw new UnavailableError('the server is shutting down', 'SHUTDOWN');
        // A token that expires during a long or follow replay ends it (checked per chunk and
        // per followCheckMs while waiting); a new request with a fresh token goes on.
        if (msUntilExpiry(principal) === 0) throw new SluiceError('UNAUTHORIZED', `token expired during the replay; resume from ${offset} with a fresh token`, 'TOKEN_EXPIRED');
        if (req.to !== undefined && offset >= req.to) break;
        if (remaining <= 0) break;
        // The topic may have been deleted (and created again) since the last chunk.
        const current = manager.partition(req.topic, req.partition);
        if (current !== log) throw new SluiceError('UNKNOWN_TOPIC', `topic ${JSON.stringify(req.topic)} was deleted during the replay`);
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
          if (!req.follow || this.stopFollow) break;
          await this.waitForAppend();
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
        if (file === null || file.segment !== r.segment) {
          if (file) fs.closeSync(file.fd);
          file = null;
          try {
            file = { segment: r.segment, fd: fs.openSync(r.segment.logPath, 'r') };
          } catch (err) {
            // Deleted since the read: the next read sees the new log start.
            if ((err as NodeJS.ErrnoException).code === 'ENOENT' && ++enoentRetries <= 3) continue;
            throw new UnavailableError(`cannot open segment: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'IO_ERROR');
          }
        }
        this.write(chunkHeader({ ok: true, bytes: length, first: r.firstOffset }));
        try {
          await sendFileRange(this.socket, file.fd, r.position, length, { signal: this.abort.signal, onStats: this.shared.onStats });
        } catch (err) {
          // The header promised `length` bytes: whatever went wrong, the stream cannot be
          // repaired, so the connection ends. A file shorter than the log says is a bug
          // worth a log line; a peer that went away is not.
          const code = (err as SendfileError).code;
          if (code === 'SLUICE_ERR_SENDFILE_SHORT_FILE' || code === 'SLUICE_ERR_SENDFILE_RANGE' || code === 'SLUICE_ERR_SENDFILE_BUSY') {
            this.logger.error({ err, topic: req.topic, partition: req.partition, position: r.position, length }, 'replay transfer failed');
          } else {
            this.logger.debug({ err }, 'replay transfer ended by the connection');
          }
          throw new ConnectionLost();
        }
        sentAny = true;
        remaining -= length;
        // Size the next chunk from this one's bytes per batch (see chunkBatchesMax).
        const perBatch = length / countBatches(r.bytes, length);
        chunkBytes = Math.max(limits.chunkBytesFirst, Math.min(limits.chunkBytesMax, Math.floor(perBatch * limits.chunkBatchesMax)));
        offset = next;
        if (this.stopFollow && req.follow) break;
        await yieldToLoop();
      }
      this.write(chunkHeader({ ok: true, end: true, bytes: 0, next: offset, hw: log.hw }));
    } catch (err) {
      if (err instanceof ConnectionLost) throw err;
      this.writeError(err);
    } finally {
      unsubscribe?.();
      if (file) fs.closeSync(file.fd);
    }
  }

  /** Resolves on an append, a new request line, shutdown, close, or after followCheckMs. */
  private waitForAppend(): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wakeUp(), limits.followCheckMs);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
