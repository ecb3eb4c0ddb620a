/** Limits of the storage engine, named with their unit last. */

/** An offset index entry every this many bytes of log (Kafka's index.interval.bytes). */
export const indexIntervalBytes = 4096;
/** Positions in the indexes are u32, so a segment stays below 2 GiB. */
export const segmentBytesMax = 2 ** 31 - 1;
export const segmentBytesDefault = 1024 * 1024 * 1024;
/** Roll the active segment once it is this old, so retention by time can delete it (7 days). */
export const segmentMsDefault = 7 * 24 * 3600 * 1000;
/** A single batch larger than this is refused before it touches the log. */
export const batchBytesMax = 64 * 1024 * 1024;
export const partitionsMax = 1024;
/** Disjoint checked byte ranges a segment remembers (engine/segment.ts); past it, it forgets. */
export const verifiedRangesMax = 64;
export const topicNameLengthMax = 249;
export const flushMsDefault = 100;

// What a producer may send (engine/produce-validation.ts); the server's flags override them.
/** Key + value + headers of one record (--max-record-bytes). */
export const recordBytesDefault = 1024 * 1024;
/** Headers on one record (--max-record-headers). */
export const recordHeadersDefault = 128;
/**
 * A batch's records once decompressed (--max-batch-decoded-bytes). LZ4 can expand a block
 * ~255 times: this, not the frame size, bounds what validating or reading a batch costs.
 */
export const batchDecodedBytesDefault = 16 * 1024 * 1024;
/** How far a record timestamp may run ahead of the server's clock (--max-timestamp-ahead-ms): 1 hour. */
export const timestampAheadMsDefault = 3600 * 1000;
/** Topics one data directory holds at once (--max-topics). */
export const topicsDefault = 10_000;

// File descriptors (engine/fd-reserve.ts).
/** Descriptors one segment holds open: its log and its two indexes. */
export const segmentFds = 3;
/** The share of RLIMIT_NOFILE the engine leaves to connections and everything else. */
export const fdReservePercent = 25;
/** ... and never fewer than this many. */
export const fdReserveMin = 64;
/** Where open descriptors can only be counted by a readdir (Linux < 6.2), a count is reused this long. */
export const fdCountMaxAgeMs = 1000;
