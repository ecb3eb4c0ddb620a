/**
 * The binary frames of protocol §3 and the record objects the SDK hands to apps. Pure
 * Uint8Array/DataView code, shared by the browser and Node.
 *
 *   DATA    (server → client): u8 0x01 | u8 topicLength | topic utf8 | u32 partition | whole RecordBatch v2 ...
 *   PRODUCE (client → server): u8 0x02 | u32 id | u8 topicLength | topic utf8 | u32 partition | one RecordBatch v2
 */
import { type DataFrame, type RecordHeader, type StoredRecord, decodeBatches, parseDataFrame as splitDataFrame, produceFrame as buildProduceFrame } from '../../engine/codec/index.ts';
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

export type { DataFrame };

/** Splits a DATA frame; a malformed one is the SDK's PROTOCOL error. */
export function parseDataFrame(frame: Uint8Array): DataFrame {
  try {
    return splitDataFrame(frame);
  } catch (err) {
    throw clientError(CLIENT_REASONS.PROTOCOL, `bad DATA frame: ${(err as Error).message}`);
  }
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
  try {
    return buildProduceFrame(id, topic, partition, batch);
  } catch (err) {
    throw clientError(CLIENT_REASONS.PROTOCOL, (err as Error).message);
  }
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
