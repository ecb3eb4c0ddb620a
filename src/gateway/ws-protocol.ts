/**
 * The JSON control messages of the WebSocket protocol (wire contract §3), as zod schemas.
 * `parseControl` turns one text frame into a typed request or into the error to answer:
 * "Every client request may carry an `id` (uint32) that the answer echoes" and "An error
 * answering a frame whose id could not be read has no `id`".
 *
 * Unknown fields are ignored (a newer client may send more); a field of the wrong type,
 * an unknown `op`, or `value` together with `value64` is BAD_REQUEST.
 */
import { z } from 'zod';
import type { RecordField, RecordHeaderFields } from '../../engine/codec/record-batch-builder.ts';
import type * as Wire from '../../engine/codec/wire-messages.ts';
import { type ErrorCode, type ErrorReason, type ProduceLimits, type SluiceError, checkRecordBytes, checkRecordHeaderCount, isValidTopicName, limits } from '../../engine/index.ts';

const Id = z.number().int().min(0).max(0xffffffff);
const Topic = z.string().refine(isValidTopicName, { message: 'topic must be 1-249 of [a-zA-Z0-9._-], not "." or ".."' });
const Partition = z.number().int().min(0).max(limits.partitionsMax - 1);
/** "`value64` is standard base64 with padding." */
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const Base64 = z.string().regex(BASE64_RE, { message: 'not standard base64 with padding' });
const Offset = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const From = z.union([
  z.literal('latest'),
  z.literal('earliest'),
  z.object({ offset: Offset }).strict(),
  z.object({ time: z.number().int() }).strict(),
]) satisfies z.ZodType<Wire.WireFrom, Wire.WireFrom>;
export type From = z.infer<typeof From>;

/** One record to publish: the fields `pub` and `POST /v1/topics/{t}/records` share. */
const RecordFields = z.object({
  partition: Partition.optional(),
  key: z.string().optional(),
  value: z.string().optional(),
  value64: Base64.optional(),
  headers: z.record(z.string(), z.string()).optional(),
});
const oneValue = (r: { value?: string; value64?: string }): boolean => r.value === undefined || r.value64 === undefined;
const oneValueMessage = { message: 'give value or value64, not both' };
export const RecordInput = RecordFields.refine(oneValue, oneValueMessage);
export type RecordInput = z.infer<typeof RecordInput>;

// Each schema takes and gives the request type the SDK sends (engine/codec/wire-messages.ts).
const Meta = z.object({ op: z.literal('meta'), id: Id.optional(), topic: Topic }) satisfies z.ZodType<Wire.MetaRequest, Wire.MetaRequest>;
const Sub = z.object({ op: z.literal('sub'), id: Id.optional(), topic: Topic, partition: Partition.optional(), from: From.default('latest') }) satisfies z.ZodType<Wire.SubRequest, Wire.SubRequest>;
const Unsub = z.object({ op: z.literal('unsub'), id: Id.optional(), topic: Topic, partition: Partition.optional() }) satisfies z.ZodType<Wire.UnsubRequest, Wire.UnsubRequest>;
/** Exported for the tests that hold the hand-written `fastPub` and the pub scanner to it. */
export const Pub = RecordFields.extend({ op: z.literal('pub'), id: Id.optional(), topic: Topic }).refine(oneValue, oneValueMessage) satisfies z.ZodType<Wire.PubRequest, Wire.PubRequest>;
const Ping = z.object({ op: z.literal('ping'), id: Id.optional() }) satisfies z.ZodType<Wire.PingRequest, Wire.PingRequest>;
const Auth = z.object({ op: z.literal('auth'), id: Id.optional(), token: z.string() }) satisfies z.ZodType<Wire.AuthRequest, Wire.AuthRequest>;

const schemas = { meta: Meta, sub: Sub, unsub: Unsub, pub: Pub, ping: Ping, auth: Auth } as const;

export type MetaRequest = z.infer<typeof Meta>;
export type SubRequest = z.infer<typeof Sub>;
export type UnsubRequest = z.infer<typeof Unsub>;
export type PubRequest = z.infer<typeof Pub>;
export type PingRequest = z.infer<typeof Ping>;
export type AuthRequest = z.infer<typeof Auth>;
export type ControlRequest = MetaRequest | SubRequest | UnsubRequest | PubRequest | PingRequest | AuthRequest;

export interface ProtocolError {
  id?: number;
  code: ErrorCode;
  message: string;
  /** For the server's log only: reasons are not sent on the wire (docs/errors.md). */
  reason?: ErrorReason;
}

/** On failure `op` is the op the frame named, when it named one (a bad `pub` is answered in publish order). */
export type ControlParse = { ok: true; req: ControlRequest } | ({ ok: false; op?: string } & ProtocolError);

function describe(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}

const isUint = (x: unknown, max: number): boolean => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= max;

/**
 * `pub`, the hottest op, checked by hand instead of through zod (whose parse allocates a
 * copy of every object it passes). It answers only when sure: it returns the parsed object
 * itself when the `Pub` schema would accept it (the schema's output holds the same fields),
 * and undefined for everything else — a bad field, or a `__proto__` header, which the
 * schema's record type drops — which then goes to zod, which decides and words the error.
 * test/gateway/pub-fast-path.test.ts checks this against the schema on generated input.
 */
export function fastPub(obj: Record<string, unknown>): PubRequest | undefined {
  if (obj.op !== 'pub') return undefined;
  if (obj.id !== undefined && !isUint(obj.id, 0xffffffff)) return undefined;
  if (!isValidTopicName(obj.topic)) return undefined;
  if (obj.partition !== undefined && !isUint(obj.partition, limits.partitionsMax - 1)) return undefined;
  if (obj.key !== undefined && typeof obj.key !== 'string') return undefined;
  const value = obj.value;
  const value64 = obj.value64;
  if (value !== undefined) {
    if (typeof value !== 'string' || value64 !== undefined) return undefined;
  } else if (value64 !== undefined && (typeof value64 !== 'string' || !BASE64_RE.test(value64))) return undefined;
  const headers = obj.headers;
  if (headers !== undefined) {
    if (typeof headers !== 'object' || headers === null || Array.isArray(headers) || Object.hasOwn(headers, '__proto__')) return undefined;
    for (const k in headers) if (typeof (headers as Record<string, unknown>)[k] !== 'string') return undefined;
  }
  return obj as PubRequest;
}

export function parseControl(text: string): ControlParse {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, code: 'BAD_REQUEST', message: 'not JSON' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { ok: false, code: 'BAD_REQUEST', message: 'a control message is a JSON object' };
  const obj = raw as Record<string, unknown>;
  const pub = fastPub(obj);
  if (pub !== undefined) return { ok: true, req: pub };
  const op = typeof obj.op === 'string' ? obj.op : undefined;
  const idCheck = Id.safeParse(obj.id);
  const id = idCheck.success ? idCheck.data : undefined;
  if (obj.id !== undefined && id === undefined) return { ok: false, op, code: 'BAD_REQUEST', message: 'id must be a uint32' };
  const schema = op !== undefined && Object.hasOwn(schemas, op) ? schemas[op as keyof typeof schemas] : undefined;
  if (!schema) return { ok: false, op, id, code: 'BAD_REQUEST', message: `unknown op ${JSON.stringify(obj.op)}` };
  const r = schema.safeParse(obj);
  if (!r.success) return { ok: false, op, id, code: 'BAD_REQUEST', message: describe(r.error) };
  return { ok: true, req: r.data as ControlRequest };
}

export function errorMessage(e: ProtocolError & { topic?: string; partition?: number }): string {
  // The reason stays in the server's log (docs/errors.md).
  const { reason: _reason, ...wire } = e;
  return JSON.stringify({ op: 'error', ...wire });
}

/** The JSON fields of one record to publish (`pub`, and each record of an HTTP POST). */
export interface RecordJsonFields {
  key?: string;
  value?: string;
  value64?: string;
  headers?: Record<string, string>;
}

/**
 * A record from JSON as the batch builder takes it: text is written into the batch as UTF-8
 * there (engine/codec/record-batch-builder.ts), never encoded into a Buffer first.
 */
export interface JsonRecord {
  key: string | null;
  value: RecordField;
  headers: RecordHeaderFields | null;
}

/**
 * The record a JSON publish describes: `key` as UTF-8 (`""` is a key, absent is null),
 * `value` as UTF-8 or `value64` decoded, neither = null value, headers as UTF-8 values.
 * Key + value + headers over `recordBytesMax`, or more than `recordHeadersMax` headers, is
 * TOO_LARGE: the limits a PRODUCE batch gets, applied by the same engine checks
 * (engine/produce-validation.ts). A string of n UTF-16 units is at least n and at most 3n
 * UTF-8 bytes, so what is surely too large is refused before anything is measured or
 * decoded, and UTF-8 lengths are measured only for a record that could be too large.
 */
export function toJsonRecord(r: RecordJsonFields, recordLimits: Pick<ProduceLimits, 'recordBytesMax' | 'recordHeadersMax'>): JsonRecord | ProtocolError {
  const max = recordLimits.recordBytesMax;
  const headers = r.headers === undefined ? null : Object.entries(r.headers);
  const headerCount = headers === null ? 0 : headers.length;
  let units = (r.key?.length ?? 0) + (r.value?.length ?? 0);
  if (headers !== null) for (const [k, v] of headers) units += k.length + v.length;
  let value: RecordField = r.value ?? null;
  let valueBytes = 0;
  try {
    checkRecordHeaderCount(headerCount, recordLimits);
    if (r.value64 !== undefined) {
      // Three bytes per four characters, less the padding: known before decoding.
      if (units + Math.floor(r.value64.length / 4) * 3 - 2 > max) return recordTooLarge(max);
      const decoded = Buffer.from(r.value64, 'base64');
      value = decoded;
      valueBytes = decoded.length;
    }
    if (units > max) return recordTooLarge(max);
    if (units * 3 + valueBytes > max) {
      let bytes = valueBytes + (r.key === undefined ? 0 : Buffer.byteLength(r.key, 'utf8')) + (r.value === undefined ? 0 : Buffer.byteLength(r.value, 'utf8'));
      if (headers !== null) for (const [k, v] of headers) bytes += Buffer.byteLength(k, 'utf8') + Buffer.byteLength(v, 'utf8');
      checkRecordBytes(bytes, recordLimits);
    }
  } catch (err) {
    const e = err as SluiceError;
    return { code: e.code, reason: e.reason, message: e.message };
  }
  return { key: r.key ?? null, value, headers: headerCount > 0 ? headers : null };
}

function recordTooLarge(max: number): ProtocolError {
  return { code: 'TOO_LARGE', reason: 'RECORD_TOO_LARGE', message: `the record: over ${max} bytes of key, value and headers` };
}

export function isProtocolError(x: JsonRecord | ProtocolError): x is ProtocolError {
  return 'code' in x;
}
