/**
 * Limits of the TCP replay front, named with their unit last. Each has a test that crosses
 * it (test/replay/) and docs/replay.md lists them.
 */

/** A request line, without its `\n` (wire contract §4: "at most 64 KiB"). */
export const requestLineBytesMax = 64 * 1024;

/**
 * Replays running at once, follow replays included; one more gets UNAVAILABLE. Each holds
 * a socket, one file descriptor of its own and a small state object, nothing else.
 */
export const replaysInFlightMax = 256;

/**
 * Body bytes of one chunk. Whole batches: a chunk holds at least one batch even when that
 * batch is larger. Each chunk costs a header, a log read and a trip through the event loop,
 * so large chunks spend less CPU per GiB (bench:replay: 8 MiB chunks cost ~25% more server
 * CPU than 32 MiB ones). The sendfile addon returns to the loop after every 4 MiB burst
 * whatever the chunk size, so this does not decide fairness.
 */
export const chunkBytesMax = 64 * 1024 * 1024;

/** The first chunk of a replay, before the size of its batches is known. */
export const chunkBytesFirst = 1024 * 1024;

/**
 * Batches per chunk: a chunk's log read walks every batch header synchronously (~0.35 us
 * each here), so chunks after the first are sized from the previous one's bytes per batch
 * to hold about this many: a partition of tiny one-record batches cannot hold the loop for
 * long (16,384 headers ~ 6 ms), while large batches still get chunkBytesMax.
 */
export const chunkBatchesMax = 16384;

/** How often a follow replay waiting for appends checks that its partition still exists. */
export const followCheckMs = 1000;

/** On shutdown, connections still open after this long are destroyed. */
export const shutdownGraceMs = 2000;

/** A connection with no replay running and no request line for this long is closed. */
export const idleTimeoutMs = 5 * 60 * 1000;
