/**
 * How the HTTP API answers (wire contract §5): one request's response as a `Reply` that
 * knows whether the client went away, the status of each error code, and the message of a
 * refused body. uWS rules it keeps: a response is written once, inside `cork`, never after
 * `onAborted` fired; body chunks are copied out of uWS's buffers (valid only during the
 * call) and capped, over the cap 413 and the connection closed.
 *
 * HTTP backpressure: a body is written with `tryEnd`, which hands the kernel what it takes
 * and keeps nothing; the rest goes out from `onWritable` as the client reads. `end` would
 * instead copy all of it into uWS's own buffer, outside the JS heap and any limit: a client
 * that pipelined thousands of requests for the 90 KB SDK bundle and never read held GBs
 * that way. With a response still pending, uWS reads no further request from that
 * connection, and closes it when more arrive pipelined behind: memory per connection is
 * one response.
 */
import type { HttpResponse } from 'uWebSockets.js';
import type { z } from 'zod';
import { type ErrorCode, type SluiceError, asSluiceError } from '../../engine/index.ts';
import type { Logger } from '../common/logger.ts';

const STATUS: Record<number, string> = {
  200: '200 OK',
  201: '201 Created',
  204: '204 No Content',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
  409: '409 Conflict',
  413: '413 Payload Too Large',
  429: '429 Too Many Requests',
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

const STATUS_OF_CODE: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  UNKNOWN_TOPIC: 404,
  OFFSET_OUT_OF_RANGE: 400,
  TOO_LARGE: 413,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
  INTERNAL: 500,
};

export function statusOf(err: SluiceError): number {
  if (err.reason === 'TOPIC_EXISTS') return 409;
  return STATUS_OF_CODE[err.code];
}

/** The CORS answer headers: the allowed origin, and `Vary: Origin` when it names one (caches must key on it). */
export function writeCorsHeaders(res: HttpResponse, allowOrigin: string | null): void {
  if (allowOrigin === null) return;
  res.writeHeader('access-control-allow-origin', allowOrigin);
  if (allowOrigin !== '*') res.writeHeader('vary', 'Origin');
}

/** One request's response, which knows whether the client went away. */
export class Reply {
  aborted = false;
  done = false;

  constructor(
    private readonly res: HttpResponse,
    /** `Access-Control-Allow-Origin` for this request (src/gateway/cors.ts), or null for none. */
    private readonly allowOrigin: string | null = null,
    /** Told of every error answer (code, reason, message): the operator's counters and log. */
    private readonly report: ((code: string, reason: string, message: string) => void) | null = null,
  ) {
    res.onAborted(() => {
      this.aborted = true;
    });
  }

  send(status: number, body: string | Uint8Array, contentType = 'application/json', close = false, headers: Record<string, string> = {}): void {
    if (this.aborted || this.done) return;
    this.done = true;
    const res = this.res;
    res.cork(() => {
      res.writeStatus(STATUS[status] ?? `${status} Status`).writeHeader('content-type', contentType);
      writeCorsHeaders(res, this.allowOrigin);
      for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
      // A refusal that closes the connection is short: uWS may buffer it whole.
      if (close) {
        res.end(body, true);
        return;
      }
      const bytes = typeof body === 'string' ? Buffer.from(body) : body;
      const start = res.getWriteOffset();
      const [, done] = res.tryEnd(bytes, bytes.length);
      if (done) return;
      res.onWritable((offset) => {
        if (this.aborted) return true;
        const [ok] = res.tryEnd(bytes.subarray(offset - start), bytes.length);
        return ok;
      });
    });
  }

  json(status: number, obj: unknown): void {
    if (status >= 400 && !this.done && !this.aborted) {
      const e = obj as { code?: unknown; message?: unknown };
      if (typeof e.code === 'string') this.report?.(e.code, e.code, String(e.message ?? ''));
    }
    this.send(status, JSON.stringify(obj));
  }

  error(err: unknown, logger?: Logger): void {
    const e = asSluiceError(err);
    if (e.code === 'INTERNAL') logger?.error({ err }, 'http request failed');
    if (!this.done && !this.aborted) this.report?.(e.code, e.reason, e.message);
    this.send(statusOf(e), JSON.stringify({ code: e.code, message: e.message }));
  }

  /** Reads the whole body (at most `limit` bytes, else 413 and the connection is closed). */
  body(limit: number, cb: (body: Buffer) => void): void {
    const chunks: Buffer[] = [];
    let size = 0;
    this.res.onData((chunk, isLast) => {
      if (this.done || this.aborted) return;
      size += chunk.byteLength;
      if (size > limit) {
        this.report?.('TOO_LARGE', 'TOO_LARGE', `body over ${limit} bytes`);
        this.send(413, JSON.stringify({ code: 'TOO_LARGE', message: `body over ${limit} bytes` }), 'application/json', true);
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0)));
      if (isLast) cb(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    });
  }

  jsonBody(limit: number, cb: (body: unknown) => void): void {
    this.body(limit, (buf) => {
      let parsed: unknown;
      try {
        parsed = buf.length === 0 ? {} : JSON.parse(buf.toString('utf8'));
      } catch {
        return this.json(400, { code: 'BAD_REQUEST', message: 'body is not JSON' });
      }
      cb(parsed);
    });
  }
}

export function zodMessage(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}

