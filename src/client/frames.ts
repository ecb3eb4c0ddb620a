/**
 * The binary frames of protocol §3 and the record objects the SDK hands to apps. Pure
 * Uint8Array/DataView code, shared by the browser and Node.
 *
 *   DATA    (server → client): u8 0x01 | u8 topicLength | topic utf8 | u32 partition | whole RecordBatch v2 ...
 *   PRODUCE (client → server): u8 0x02 | u32 id | u8 topicLength | topic utf8 | u32 partition | one RecordBatch v2
 */
import { type RecordHeader, type StoredRecord, decodeBatches } from '../../engine/codec/index.ts';
import { CLIENT_REASONS, FRAME_TYPES, clientError } from './codes.ts';

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** A record as delivered to a subscriber. `value` and `key` are views: copy what you keep past the callback only if you mutate them. */
export class Message {
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: number,
    readonly timestamp: number,
    readonly key: Uint8Array | null,
    readonly value: Uint8Array | null,
    readonly headers: RecordHeader[],
  ) {}

  /** The value as UTF-8 text ('' for a null value). */
  text(): string {
    return this.value === null ? '' : utf8Decoder.decode(this.value);
  }

  /** The key as UTF-8 text, or null. */
  keyText(): string | null {
    return this.key === null ? null : utf8Decoder.decode(this.key);
  }

  /** A header's value as text (the first with that name), or undefined. */
  header(name: string): string | undefined {
    const h = this.headers.find((x) => x.key === name);
    return h ? (h.value === null ? '' : utf8Decoder.decode(h.value)) : undefined;
  }
}

export interface DataFrame {
  topic: string;
  partition: number;
  /** The whole batches (a view of the frame). */
  batches: Uint8Array;
}

export function parseDataFrame(frame: Uint8Array): DataFrame {
  const fail = (what: string): never => {
    throw clientError(CLIENT_REASONS.PROTOCOL, `bad DATA frame: ${what}`);
  };
  if (frame.length < 6 || frame[0] !== FRAME_TYPES.DATA) fail('type or length');
  const tl = frame[1];
  if (2 + tl + 4 > frame.length) fail('truncated header');
  const topic = utf8Decoder.decode(frame.subarray(2, 2 + tl));
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const partition = dv.getUint32(2 + tl);
  return { topic, partition, batches: frame.subarray(2 + tl + 4) };
}

/** Decodes a DATA frame's batches (CRC-checked) and keeps the records at or after `minOffset`. */
export function decodeData(df: DataFrame, minOffset: number): Message[] {
  const recs: StoredRecord[] = decodeBatches(df.batches, minOffset);
  const out = new Array<Message>(recs.length);
  for (let i = 0; i < recs.length; i++) {
    const r = recs[i];
    out[i] = new Message(df.topic, df.partition, r.offset, r.timestamp, r.key, r.value, r.headers);
  }
  return out;
}

/** Builds a PRODUCE frame around one encoded batch. */
export function produceFrame(id: number, topic: string, partition: number, batch: Uint8Array): Uint8Array {
  const t = utf8.encode(topic);
  if (t.length > 255) throw clientError(CLIENT_REASONS.PROTOCOL, 'topic name longer than 255 bytes');
  const out = new Uint8Array(1 + 4 + 1 + t.length + 4 + batch.length);
  const dv = new DataView(out.buffer);
  out[0] = FRAME_TYPES.PRODUCE;
  dv.setUint32(1, id >>> 0);
  out[5] = t.length;
  out.set(t, 6);
  dv.setUint32(6 + t.length, partition >>> 0);
  out.set(batch, 10 + t.length);
  return out;
}

/** Rewrites the request id of a PRODUCE frame (when it is sent again on a new connection). */
export function setProduceId(frame: Uint8Array, id: number): void {
  new DataView(frame.buffer, frame.byteOffset, frame.byteLength).setUint32(1, id >>> 0);
}

/** Standard base64 with padding (value64), without Node's Buffer. */
export function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000) as unknown as number[]);
  return btoa(s);
}

export function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function toBytes(v: string | Uint8Array): Uint8Array {
  return typeof v === 'string' ? utf8.encode(v) : v;
}
