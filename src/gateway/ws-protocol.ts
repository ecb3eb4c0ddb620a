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
import type * as Wire from '../../engine/codec/wire-messages.ts';
import { type ErrorCode, type ProducerRecord, isValidTopicName, limits } from '../../engine/index.ts';

const Id = z.number().int().min(0).max(0xffffffff);
const Topic = z.string().refine(isValidTopicName, { message: 'topic must be 1-249 of [a-zA-Z0-9._-], not "." or ".."' });
const Partition = z.number().int().min(0).max(limits.partitionsMax - 1);
/** "`value64` is standard base64 with padding." */
const Base64 = z.string().regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, { message: 'not standard base64 with padding' });
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
const Pub = RecordFields.extend({ op: z.literal('pub'), id: Id.optional(), topic: Topic }).refine(oneValue, oneValueMessage) satisfies z.ZodType<Wire.PubRequest, Wire.PubRequest>;
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
}

/** On failure `op` is the op the frame named, when it named one (a bad `pub` is answered in publish order). */
export type ControlParse = { ok: true; req: ControlRequest } | ({ ok: false; op?: string } & ProtocolError);

function describe(err: z.ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
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
  return JSON.stringify({ op: 'error', ...e });
}

/**
 * The record a JSON publish describes: `key` as UTF-8 (`""` is a key, absent is null),
 * `value` as UTF-8 or `value64` decoded, neither = null value, headers as UTF-8 values.
 * A value over `maxRecordBytes` is TOO_LARGE.
 */
export function toProducerRecord(r: { key?: string; value?: string; value64?: string; headers?: Record<string, string> }, maxRecordBytes: number): ProducerRecord | ProtocolError {
  let value: Uint8Array | null = null;
  if (r.value !== undefined) {
    if (r.value.length > maxRecordBytes) return { code: 'TOO_LARGE', message: `value over ${maxRecordBytes} bytes` };
    value = Buffer.from(r.value, 'utf8');
  } else if (r.value64 !== undefined) {
    if (r.value64.length > Math.ceil(maxRecordBytes / 3) * 4 + 4) return { code: 'TOO_LARGE', message: `value over ${maxRecordBytes} bytes` };
    value = Buffer.from(r.value64, 'base64');
  }
  if (value !== null && value.length > maxRecordBytes) return { code: 'TOO_LARGE', message: `value of ${value.length} bytes is over ${maxRecordBytes}` };
  const rec: ProducerRecord = { key: r.key === undefined ? null : Buffer.from(r.key, 'utf8'), value };
  if (r.headers) {
    const hs = Object.entries(r.headers);
    if (hs.length > 0) rec.headers = hs.map(([key, v]) => ({ key, value: Buffer.from(v, 'utf8') }));
  }
  return rec;
}

export function isProtocolError(x: unknown): x is ProtocolError {
  return typeof x === 'object' && x !== null && 'code' in x && 'message' in x && !('value' in x);
}
