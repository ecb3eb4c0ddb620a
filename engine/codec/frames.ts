/**
 * The binary frames of the WebSocket protocol (wire contract §3), all integers big-endian:
 *
 *   DATA    (server → client)  u8 0x01 | u8 topicLength | topic utf8 | u32 partition | whole RecordBatch v2 …
 *   PRODUCE (client → server)  u8 0x02 | u32 id | u8 topicLength | topic utf8 | u32 partition | one RecordBatch v2
 *
 * Pure TypeScript: the gateway, the browser SDK and the tests build and split frames with
 * this one module. The batches inside are handled by record-batch.ts.
 */
import { BadRequestError } from '../errors.ts';

export const FRAME_DATA = 0x01;
export const FRAME_PRODUCE = 0x02;
/** PRODUCE partition meaning "let the server choose". */
export const PARTITION_ANY = 0xffffffff;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

function topicBytes(topic: string): Uint8Array {
  const t = utf8.encode(topic);
  if (t.length > 255) throw new BadRequestError(`topic name of ${t.length} bytes does not fit a u8 length`, 'BAD_TOPIC_NAME');
  return t;
}

/** The DATA header of one topic-partition: built once, put before every frame's batches. */
export function dataHeader(topic: string, partition: number): Uint8Array {
  const t = topicBytes(topic);
  const h = new Uint8Array(2 + t.length + 4);
  h[0] = FRAME_DATA;
  h[1] = t.length;
  h.set(t, 2);
  new DataView(h.buffer).setUint32(2 + t.length, partition >>> 0);
  return h;
}

export interface DataFrame {
  topic: string;
  partition: number;
  /** The whole batches: a view of the frame. */
  batches: Uint8Array;
}

/** Splits a DATA frame; BadRequestError (reason BAD_FRAME) when it is not one. */
export function parseDataFrame(buf: Uint8Array): DataFrame {
  if (buf.length < 6 || buf[0] !== FRAME_DATA) throw new BadRequestError('not a DATA frame', 'BAD_FRAME');
  const tl = buf[1];
  if (buf.length < 2 + tl + 4) throw new BadRequestError('DATA frame truncated', 'BAD_FRAME');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return { topic: utf8Decoder.decode(buf.subarray(2, 2 + tl)), partition: dv.getUint32(2 + tl), batches: buf.subarray(2 + tl + 4) };
}

export interface ProduceFrame {
  id: number;
  topic: string;
  /** PARTITION_ANY when the server chooses. */
  partition: number;
  /** A view of the frame: valid only while the frame's buffer is (copy before keeping it). */
  batch: Uint8Array;
}

export type ProduceParse = { ok: true; frame: ProduceFrame } | { ok: false; id?: number; message: string };

/** Splits a PRODUCE frame, reading the id first so an error can echo it. The batch is validated by the caller. */
export function parseProduceFrame(buf: Uint8Array): ProduceParse {
  if (buf.length < 1) return { ok: false, message: 'empty binary frame' };
  if (buf[0] !== FRAME_PRODUCE) return { ok: false, message: `unknown binary frame type 0x${buf[0].toString(16).padStart(2, '0')}` };
  if (buf.length < 5) return { ok: false, message: 'PRODUCE frame truncated before its id' };
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const id = dv.getUint32(1);
  if (buf.length < 6) return { ok: false, id, message: 'PRODUCE frame truncated before its topic' };
  const tl = buf[5];
  if (buf.length < 6 + tl + 4) return { ok: false, id, message: 'PRODUCE frame truncated before its partition' };
  const topic = utf8Decoder.decode(buf.subarray(6, 6 + tl));
  return { ok: true, frame: { id, topic, partition: dv.getUint32(6 + tl), batch: buf.subarray(6 + tl + 4) } };
}

/** Builds a PRODUCE frame around one encoded batch. */
export function produceFrame(id: number, topic: string, partition: number, batch: Uint8Array): Uint8Array {
  const t = topicBytes(topic);
  const out = new Uint8Array(1 + 4 + 1 + t.length + 4 + batch.length);
  const dv = new DataView(out.buffer);
  out[0] = FRAME_PRODUCE;
  dv.setUint32(1, id >>> 0);
  out[5] = t.length;
  out.set(t, 6);
  dv.setUint32(6 + t.length, partition >>> 0);
  out.set(batch, 10 + t.length);
  return out;
}
