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
export const topicNameLengthMax = 249;
export const flushMsDefault = 100;
