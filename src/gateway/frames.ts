/**
 * The gateway's side of the binary frames (engine/codec/frames.ts has the layout and the
 * code the SDK shares). What is left here is the hot path's one Node-specific piece.
 */
export { FRAME_DATA, FRAME_PRODUCE, PARTITION_ANY, type DataFrame, type ProduceFrame, type ProduceParse, dataHeader, parseDataFrame, parseProduceFrame, produceFrame } from '../../engine/codec/frames.ts';

/**
 * One DATA frame: header + batches in one buffer (a WebSocket message is one send). This is
 * the one copy a frame costs; the fan-out makes it once per committed batch and shares it.
 * allocUnsafe: every byte is written at once, so zero-filling up to 256 KiB would be waste.
 */
export function dataFrame(header: Uint8Array, batches: Uint8Array): Buffer {
  const f = Buffer.allocUnsafe(header.length + batches.length);
  f.set(header, 0);
  f.set(batches, header.length);
  return f;
}
