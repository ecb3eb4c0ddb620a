/**
 * Binary frames of the WebSocket protocol (wire contract §3). All integers big-endian.
 *
 *   DATA    (server → client)  u8 0x01 | u8 topicLength | topic utf8 | u32 partition | whole RecordBatch v2 …
 *   PRODUCE (client → server)  u8 0x02 | u32 id | u8 topicLength | topic utf8 | u32 partition | one RecordBatch v2
 *
 * DATA bodies are the stored bytes unchanged; a PRODUCE batch is stored byte for byte except
 * baseOffset and partitionLeaderEpoch (both outside the CRC).
 */
export const FRAME_DATA = 0x01;
export const FRAME_PRODUCE = 0x02;
/** PRODUCE partition meaning "let the server choose". */
export const PARTITION_ANY = 0xffffffff;

/** The DATA header of one topic-partition, built once and reused for every frame of it. */
export function dataHeader(topic: string, partition: number): Buffer {
  const name = Buffer.from(topic, 'utf8');
  if (name.length > 255) throw new RangeError(`topic name of ${name.length} bytes does not fit a u8 length`);
  const h = Buffer.allocUnsafe(2 + name.length + 4);
  h[0] = FRAME_DATA;
  h[1] = name.length;
  name.copy(h, 2);
  h.writeUInt32BE(partition, 2 + name.length);
  return h;
}

/**
 * One DATA frame: header + batches in one buffer (a WebSocket message is one send). This is
 * the one copy a frame costs; the fan-out makes it once per committed batch and shares it.
 */
export function dataFrame(header: Buffer, batches: Uint8Array): Buffer {
  const f = Buffer.allocUnsafe(header.length + batches.length);
  header.copy(f, 0);
  f.set(batches, header.length);
  return f;
}

export interface DataFrame {
  topic: string;
  partition: number;
  batches: Uint8Array;
}

/** Client side: splits a DATA frame (tests, SDK). */
export function parseDataFrame(buf: Uint8Array): DataFrame {
  if (buf.length < 6 || buf[0] !== FRAME_DATA) throw new RangeError('not a DATA frame');
  const tl = buf[1];
  if (buf.length < 2 + tl + 4) throw new RangeError('DATA frame truncated');
  const topic = Buffer.from(buf.buffer, buf.byteOffset + 2, tl).toString('utf8');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return { topic, partition: dv.getUint32(2 + tl), batches: buf.subarray(2 + tl + 4) };
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

/** Server side: splits a PRODUCE frame. The batch itself is validated by the caller. */
export function parseProduceFrame(buf: Uint8Array): ProduceParse {
  if (buf.length < 1) return { ok: false, message: 'empty binary frame' };
  if (buf[0] !== FRAME_PRODUCE) return { ok: false, message: `unknown binary frame type 0x${buf[0].toString(16).padStart(2, '0')}` };
  if (buf.length < 5) return { ok: false, message: 'PRODUCE frame truncated before its id' };
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const id = dv.getUint32(1);
  if (buf.length < 6) return { ok: false, id, message: 'PRODUCE frame truncated before its topic' };
  const tl = buf[5];
  if (buf.length < 6 + tl + 4) return { ok: false, id, message: 'PRODUCE frame truncated before its partition' };
  const topic = Buffer.from(buf.buffer, buf.byteOffset + 6, tl).toString('utf8');
  const partition = dv.getUint32(6 + tl);
  return { ok: true, frame: { id, topic, partition, batch: buf.subarray(6 + tl + 4) } };
}

/** Client side: builds a PRODUCE frame around an encoded batch (tests, SDK, benchmarks). */
export function produceFrame(id: number, topic: string, partition: number, batch: Uint8Array): Buffer {
  const name = Buffer.from(topic, 'utf8');
  const f = Buffer.allocUnsafe(1 + 4 + 1 + name.length + 4 + batch.length);
  f[0] = FRAME_PRODUCE;
  f.writeUInt32BE(id >>> 0, 1);
  f[5] = name.length;
  name.copy(f, 6);
  f.writeUInt32BE(partition >>> 0, 6 + name.length);
  f.set(batch, 10 + name.length);
  return f;
}
