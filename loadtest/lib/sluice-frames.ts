/** Reading sluice DATA frames cheaply in a load generator. */

/**
 * Calls `onBatch(baseOffset, recordCount)` for each RecordBatch in a DATA frame
 * (u8 0x01 | u8 topicLength | topic | u32 partition | batches), from the batch headers only:
 * baseOffset at +0, batchLength at +8, recordCount at +57.
 */
export function scanData(d: Buffer, onBatch: (baseOffset: number, count: number) => void): void {
  let pos = 2 + d[1] + 4;
  while (pos + 61 <= d.length) {
    const base = d.readUInt32BE(pos) * 4294967296 + d.readUInt32BE(pos + 4);
    const size = d.readInt32BE(pos + 8) + 12;
    onBatch(base, d.readInt32BE(pos + 57));
    pos += size;
  }
}
