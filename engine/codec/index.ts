export * from './record-batch.ts';
export { NO_RECORD_LIMITS, type RecordLimits, type RecordScan, type RecordVisitor, scanBatchRecords, validateBatch } from './record-scan.ts';
export { crc32c, crc32cPortable, useCrc32c } from './crc32c.ts';
export { lz4FrameDecode, lz4FrameEncode, useLz4BlockCodec } from './lz4-frame.ts';
export { type Lz4BlockCodec, portableLz4 } from './lz4-block.ts';
export { murmur2, partitionForKey } from './murmur2.ts';
export * from './frames.ts';
export * from './replay-chunks.ts';
