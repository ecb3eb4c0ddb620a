/**
 * One Kafka client connection: framing, request headers, the auth gate, dispatch, and
 * answers written in request order.
 *
 *   request   size int32 | header (v1, or v2 for flexible versions) | body
 *   response  size int32 | header (v0, or v1 for flexible versions) | body
 *
 * Requests are handled as they arrive, several at once (a producer pipelines its batches,
 * and appends in flight share one fsync), but "the server guarantees that on a single TCP
 * connection, requests will be processed in the order they are sent and responses will return
 * in that order as well" (Kafka protocol guide): each request takes a slot when it is read,
 * and a slot is written only once every earlier one has been. Appends are started in arrival
 * order because a handler starts them before its first await.
 *
 * Hostile input: a size over --max-frame-bytes or below a header's, an unknown API key, an
 * unsupported version (other than ApiVersions, which is answered with UNSUPPORTED_VERSION
 * as the protocol says), a body that cannot be decoded, or any request but ApiVersions and
 * SASL before authentication (with auth on) closes the connection, as a Kafka broker does.
 * Pipelining is bounded (limits.inFlightRequestsMax / inFlightRequestBytesMax): past it the
 * socket is not read until answers go out.
 *
 * Writing: a response is a list of parts (../protocol/wire.ts). Bytes are written through
 * Node; a file range is sent with sendfile(2) (../../common/sendfile.ts), which first waits
 * until Node has written everything before it. Nothing else writes to the socket meanwhile:
 * the writer is the only one, and it awaits each range.
 */
import type net from 'node:net';
import { SluiceError, asSluiceError } from '../../engine/errors.ts';
import { type ExpiryTimer, type Principal, onExpiry } from '../common/auth.ts';
import type { Logger } from '../common/logger.ts';
import { sendFileRange } from '../common/sendfile.ts';
import * as limits from './limits.ts';
import { API } from './protocol/messages.ts';
import { API_TABLE, advertisedApis, readHeaderRest, readHeaderStart, writeResponseHeader } from './protocol/header.ts';
import { KafkaError } from './protocol/errors.ts';
import { KafkaDecodeError, type Part, Reader, Writer } from './protocol/wire.ts';
import type { KafkaShared } from './shared.ts';
import type { HandlerResult, Reply, Session } from './session.ts';

interface Slot {
  done: boolean;
  parts: Part[] | null;
  release?: () => void;
  closeAfter?: boolean;
  bytes: number;
}

let nextId = 1;

export class KafkaConnection implements Session {
  readonly id = nextId++;
  clientId: string | null = null;
  readonly remote: string;
  principal: Principal | null = null;
  mechanism: string | null = null;
  rawSasl = false;
  private authenticated: boolean;
  private readonly abort = new AbortController();
  private expiry: ExpiryTimer | null = null;

  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly slots: Slot[] = [];
  private inFlightBytes = 0;
  private writing = false;
  private paused = false;
  private idleTimer: NodeJS.Timeout | null = null;
  private shuttingDown = false;
  /** --publish-rate bucket: records that may be produced now; negative is a debt being waited off. */
  private tokens: number;
  private refilledAt = performance.now();

  constructor(
    readonly socket: net.Socket,
    private readonly shared: KafkaShared,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.authenticated = shared.auth === null;
    this.tokens = shared.ctx.limits.publishRecordsPerSecond;
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (err) => {
      this.logger.debug({ err, conn: this.id }, 'kafka connection error');
      this.destroy();
    });
    socket.on('end', () => this.endInput());
    socket.on('close', () => this.onClose());
    this.armIdle();
  }

  get signal(): AbortSignal {
    return this.abort.signal;
  }

  get closed(): boolean {
    return this.abort.signal.aborted;
  }

  private get logger(): Logger {
    return this.shared.ctx.logger;
  }

  authenticate(principal: Principal): void {
    this.principal = principal;
    this.authenticated = true;
    this.expiry?.cancel();
    // The token's lifetime is the session's: past it the connection closes, unless the client
    // authenticated again on it (KIP-368 re-authentication), which arms a new timer.
    this.expiry = onExpiry(principal, () => {
      this.logger.info({ conn: this.id, subject: principal.subject }, 'kafka connection closed: its token expired');
      this.destroy();
    });
  }

  /**
   * A token bucket of --publish-rate records/s with a one-second burst, as on the WebSocket,
   * but with Kafka's answer to a client over its quota: the batch is stored and its answer
   * held (with throttle_time_ms set) until the debt is paid, at most limits.throttleMsMax at a
   * time. Answers go out in order, so everything behind it waits too, and past
   * limits.inFlightRequestsMax the connection is not read: the producer slows to the rate.
   */
  publishDelayMs(records: number): number {
    const rate = this.shared.ctx.limits.publishRecordsPerSecond;
    if (rate === 0) return 0;
    const now = performance.now();
    this.tokens = Math.min(rate, this.tokens + ((now - this.refilledAt) / 1000) * rate);
    this.refilledAt = now;
    this.tokens -= records;
    return this.tokens >= 0 ? 0 : Math.min(limits.throttleMsMax, Math.ceil((-this.tokens / rate) * 1000));
  }

  /** Server shutdown: stop reading, answer what is in flight, then close. */
  shutdown(): void {
    this.shuttingDown = true;
    this.socket.pause();
    this.paused = true;
    if (this.slots.length === 0) this.socket.end();
  }

  destroy(): void {
    if (!this.socket.destroyed) this.socket.destroy();
    this.onClose();
  }

  private onClose(): void {
    if (this.closed) return;
    this.abort.abort();
    this.expiry?.cancel();
    this.clearIdle();
    // Answers that will never be written still hold descriptors and group members.
    for (const s of this.slots) s.release?.();
    this.slots.length = 0;
    this.chunks = [];
    this.shared.onConnectionClosed(this);
  }

  private armIdle(): void {
    this.clearIdle();
    this.idleTimer = setTimeout(() => {
      this.logger.debug({ conn: this.id }, 'kafka connection idle: closed');
      this.destroy();
    }, limits.idleTimeoutMs);
    this.idleTimer.unref();
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private endInput(): void {
    // The client half-closed: answer what it asked, then close our side.
    this.shuttingDown = true;
    if (this.slots.length === 0 && !this.closed) this.socket.end();
  }

  /** Closes the connection because of what the client sent. */
  private refuse(why: string, extra: Record<string, unknown> = {}): void {
    this.logger.debug({ conn: this.id, remote: this.remote, clientId: this.clientId, ...extra }, `kafka connection closed: ${why}`);
    this.shared.metrics.refused.inc();
    this.destroy();
  }

  private onData(data: Buffer): void {
    if (this.closed || this.shuttingDown) return;
    this.armIdle();
    this.chunks.push(data);
    this.buffered += data.length;
    this.drainFrames();
  }

  private drainFrames(): void {
    const frameBytesMax = this.shared.ctx.limits.frameBytesMax;
    while (!this.closed && this.buffered >= 4) {
      if (this.chunks[0].length < 4) this.chunks = [Buffer.concat(this.chunks)];
      const size = this.chunks[0].readInt32BE(0);
      // A request is at least a header: api key, version, correlation id, client id length.
      if (size < 10) return this.refuse(`request size ${size} is below a header's`);
      if (size > frameBytesMax) return this.refuse(`request of ${size} bytes is over --max-frame-bytes ${frameBytesMax}`, { size });
      if (this.buffered < 4 + size) return;
      const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
      const frame = all.subarray(4, 4 + size);
      const rest = all.subarray(4 + size);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      this.onFrame(frame);
      if (this.slots.length >= limits.inFlightRequestsMax || this.inFlightBytes >= limits.inFlightRequestBytesMax) {
        // Stop reading until answers go out; what is already buffered waits here too.
        if (!this.paused) {
          this.paused = true;
          this.socket.pause();
        }
        return;
      }
    }
  }

  private maybeResume(): void {
    if (!this.paused || this.closed || this.shuttingDown) return;
    if (this.slots.length >= limits.inFlightRequestsMax || this.inFlightBytes >= limits.inFlightRequestBytesMax) return;
    this.paused = false;
    this.socket.resume();
    this.drainFrames();
  }

  private onFrame(frame: Buffer): void {
    if (this.rawSasl) return this.onRawSasl(frame);
    const r = new Reader(frame);
    let apiKey: number;
    let apiVersion: number;
    let correlationId: number;
    try {
      ({ apiKey, apiVersion, correlationId } = readHeaderStart(r));
    } catch {
      return this.refuse('request header truncated');
    }
    const entry = API_TABLE.get(apiKey);
    const saslApi = apiKey === API.SaslHandshake || apiKey === API.SaslAuthenticate;
    if (!entry || (saslApi && this.shared.auth === null)) return this.refuse(`unknown API key ${apiKey}`, { apiKey });
    if (apiVersion < entry.minVersion || apiVersion > entry.maxVersion) {
      // "If the broker does not support the version of ApiVersionsRequest, it responds with
      // a version 0 response with the UNSUPPORTED_VERSION error and its supported versions",
      // so that the client can retry with one it shares. Other APIs cannot be answered in a
      // version the server does not know: the connection closes.
      if (apiKey === API.ApiVersions) return this.answerUnsupportedApiVersions(correlationId);
      return this.refuse(`API ${apiKey} version ${apiVersion} is not supported (${entry.minVersion}-${entry.maxVersion})`, { apiKey, apiVersion });
    }
    let body: Record<string, unknown>;
    try {
      this.clientId = readHeaderRest(r, entry.requestFlexible(apiVersion));
      body = entry.requests.get(apiVersion)!.read(r);
    } catch (err) {
      if (err instanceof KafkaDecodeError) return this.refuse(`malformed request: ${err.message}`, { apiKey, apiVersion });
      throw err;
    }
    if (!this.authenticated && apiKey !== API.ApiVersions && !saslApi) {
      return this.refuse(`API ${apiKey} before authentication`, { apiKey });
    }
    const handler = this.shared.handlers.get(apiKey);
    if (!handler) return this.refuse(`no handler for API ${apiKey}`);
    this.shared.metrics.requests.inc({ api: String(apiKey) });
    const slot: Slot = { done: false, parts: null, bytes: frame.length };
    this.slots.push(slot);
    this.inFlightBytes += frame.length;
    let result: HandlerResult;
    try {
      result = handler(body, apiVersion, this);
    } catch (err) {
      result = Promise.reject(err);
    }
    if (result instanceof Promise) {
      result.then(
        (reply) => this.settle(slot, reply, apiKey, apiVersion, correlationId),
        (err) => this.failed(slot, err, apiKey, apiVersion),
      );
    } else {
      this.settle(slot, result, apiKey, apiVersion, correlationId);
    }
  }

  private failed(slot: Slot, err: unknown, apiKey: number, apiVersion: number): void {
    // A handler answers every error it can name in its response; what reaches here is a bug
    // or a broken invariant, and an answer cannot be built: the connection closes.
    const e = asSluiceError(err);
    if (e.code === 'INTERNAL') this.logger.error({ err, conn: this.id, apiKey, apiVersion }, 'kafka request failed');
    else this.logger.debug({ err, conn: this.id, apiKey, apiVersion }, 'kafka request failed');
    slot.done = true;
    this.destroy();
  }

  private settle(slot: Slot, reply: Reply | null, apiKey: number, apiVersion: number, correlationId: number): void {
    if (this.closed) {
      reply?.release?.();
      return;
    }
    slot.done = true;
    if (reply !== null) {
      const w = new Writer();
      writeResponseHeader(w, apiKey, apiVersion, correlationId);
      try {
        API_TABLE.get(apiKey)!.responses.get(apiVersion)!.write(w, reply.body);
      } catch (err) {
        reply.release?.();
        return this.failed(slot, err, apiKey, apiVersion);
      }
      slot.parts = w.finish();
      slot.release = reply.release;
      slot.closeAfter = reply.closeAfter;
    }
    void this.pump();
  }

  /** Writes every answered slot at the head of the queue, in order. */
  private async pump(): Promise<void> {
    if (this.writing) return;
    this.writing = true;
    try {
      while (!this.closed && this.slots.length > 0 && this.slots[0].done) {
        const slot = this.slots[0];
        try {
          if (slot.parts !== null) await this.writeParts(slot.parts);
        } catch (err) {
          this.logger.debug({ err, conn: this.id }, 'kafka response not delivered');
          slot.release?.();
          this.destroy();
          return;
        }
        slot.release?.();
        this.slots.shift();
        this.inFlightBytes -= slot.bytes;
        if (slot.closeAfter) {
          this.socket.end();
          this.shuttingDown = true;
          return;
        }
      }
    } finally {
      this.writing = false;
    }
    if (this.closed) return;
    if (this.shuttingDown && this.slots.length === 0) {
      this.socket.end();
      return;
    }
    this.maybeResume();
  }

  private async writeParts(parts: Part[]): Promise<void> {
    let total = 0;
    for (const p of parts) total += p.length;
    const size = Buffer.allocUnsafe(4);
    size.writeInt32BE(total, 0);
    let pending: Buffer[] = [size];
    for (const p of parts) {
      if (Buffer.isBuffer(p)) {
        pending.push(p);
        continue;
      }
      this.writeBuffers(pending);
      pending = [];
      await sendFileRange(this.socket, p.fd, p.position, p.length, { signal: this.abort.signal, onStats: this.shared.onSendfileStats });
    }
    this.writeBuffers(pending);
    // Back-pressure: the next response waits until this one is with the kernel.
    if (this.socket.writableNeedDrain) await new Promise<void>((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  private writeBuffers(bufs: Buffer[]): void {
    if (bufs.length === 0) return;
    if (this.socket.destroyed) throw new SluiceError('UNAVAILABLE', 'connection closed', 'CLOSED');
    if (bufs.length === 1) {
      this.socket.write(bufs[0]);
      return;
    }
    this.socket.cork();
    for (const b of bufs) this.socket.write(b);
    this.socket.uncork();
  }

  private answerUnsupportedApiVersions(correlationId: number): void {
    const slot: Slot = { done: true, parts: null, bytes: 0 };
    const w = new Writer();
    w.int32(correlationId);
    API_TABLE.get(API.ApiVersions)!.responses.get(0)!.write(w, {
      errorCode: KafkaError.UNSUPPORTED_VERSION,
      apiKeys: advertisedApis(this.shared.auth !== null),
    });
    slot.parts = w.finish();
    this.slots.push(slot);
    void this.pump();
  }

  /** SaslHandshake v0: the SASL token comes as a bare size-prefixed frame, answered the same way. */
  private onRawSasl(frame: Buffer): void {
    this.rawSasl = false;
    const slot: Slot = { done: false, parts: null, bytes: frame.length };
    this.slots.push(slot);
    this.inFlightBytes += frame.length;
    this.shared.sasl(this, Buffer.from(frame)).then(
      (result) => {
        if (this.closed) return;
        slot.done = true;
        if (result.ok) slot.parts = [Buffer.alloc(0)];
        else {
          // A raw exchange has no error field: a failure closes the connection.
          this.logger.info({ conn: this.id, remote: this.remote, reason: result.error.reason }, `kafka SASL authentication failed: ${result.error.message}`);
          slot.closeAfter = true;
          slot.parts = null;
          this.destroy();
          return;
        }
        void this.pump();
      },
      (err) => this.failed(slot, err, API.SaslAuthenticate, 0),
    );
  }
}
