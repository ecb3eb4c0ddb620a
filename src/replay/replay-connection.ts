/**
 * One connection of the replay port: request lines in, chunks out (wire contract §4).
 *
 * - Line framing: a request is one line of JSON ending in `\n`, at most
 *   limits.requestLineBytesMax bytes. A line that is not JSON, or too long, gets an error
 *   header and the connection is closed (the stream cannot be trusted to be in step any
 *   more); a JSON line that is not a valid request gets BAD_REQUEST and the connection stays.
 * - Pipelining: lines that arrive during a replay wait for it (reading pauses so that they
 *   cannot pile up), and a follow replay ends at its next chunk boundary to serve them.
 * - Idle: a connection with no replay running and no request for limits.idleTimeoutMs closes.
 * - Auth: with a key configured, each request's `token` must verify and its acl.sub cover
 *   the topic (UNAUTHORIZED / FORBIDDEN otherwise), checked before the topic is looked up.
 * - At most limits.replaysInFlightMax replays run at once over all connections.
 *
 * Memory: nothing is buffered for a replay; a client that stops reading parks its transfer
 * on a full socket buffer (see replay-stream.ts for the chunk loop).
 */
import type net from 'node:net';
import { SluiceError, UnavailableError, encodeChunkHeader } from '../../engine/index.ts';
import { type Auth, type Principal, authenticate, authorize } from '../common/auth.ts';
import type { FrontContext } from '../common/front.ts';
import type { Logger } from '../common/logger.ts';
import type { SendfileStats } from '../common/sendfile.ts';
import * as limits from './limits.ts';
import { type ReplayRequest, parseReplayRequest } from './request.ts';
import { ConnectionLost, type ReplayOutput, streamReplay } from './replay-stream.ts';

/** What every connection of one replay server shares. */
export interface Shared {
  readonly ctx: FrontContext;
  readonly logger: Logger;
  /** Counts each transfer's bytes by path (sendfile or fallback) in the metrics. */
  readonly onStats: (stats: SendfileStats) => void;
  readonly auth: Auth | null;
  inFlight: number;
  closing: boolean;
}

function encodeErrorHeader(code: string, message: string): Uint8Array {
  return encodeChunkHeader({ ok: false, code, message });
}

export class ReplayConnection implements ReplayOutput {
  /** Bytes of a line not yet ended by `\n`. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** Complete lines waiting for the running replay to end. */
  private readonly lines: Buffer[] = [];
  private busy = false;
  private inputEnded = false;
  closed = false;
  shuttingDown = false;
  /** Set when a line arrives during a follow replay: the follow ends at its next chunk boundary. */
  stopFollow = false;
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

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  wakeUp(): void {
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
    this.report(code, code, message);
    this.socket.end(encodeErrorHeader(code, message));
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
    if (this.shuttingDown || this.shared.closing) return this.writeError(new UnavailableError('the server is shutting down', 'SHUTTING_DOWN'));
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
      await streamReplay(this.shared.ctx.log, req, principal, this, this.shared);
    } finally {
      this.shared.inFlight--;
      this.shared.ctx.metrics.replayTransfers.dec();
    }
  }

  write(buf: Uint8Array): void {
    if (this.closed || this.socket.destroyed) throw new ConnectionLost();
    this.socket.write(buf);
  }

  writeError(err: unknown): void {
    if (err instanceof SluiceError) {
      this.report(err.code, err.reason, err.message);
      this.write(encodeErrorHeader(err.code, err.message));
    } else {
      this.logger.error({ err }, 'replay failed');
      this.report('INTERNAL', 'INTERNAL', 'internal error');
      this.write(encodeErrorHeader('INTERNAL', 'internal error'));
    }
  }

  /** An error header sent: counted and logged (refused tokens with their reason). */
  private report(code: string, reason: string, message: string): void {
    const fields = { remote: `${this.socket.remoteAddress}:${this.socket.remotePort}` };
    if (code === 'UNAUTHORIZED' || code === 'FORBIDDEN') this.shared.ctx.activity.authRefused('replay', code, reason, message, fields);
    else this.shared.ctx.activity.clientError('replay', code, message, fields);
  }

  waitForWake(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wakeUp(), ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

