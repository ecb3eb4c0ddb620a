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
 * Body bytes of one chunk: the most one replay sends before it yields to the others
 * (fairness), and the span of batch headers walked per chunk. Whole batches: a chunk holds
 * at least one batch even when that batch is larger.
 */
export const chunkBytesMax = 8 * 1024 * 1024;

/** How often a follow replay waiting for appends checks that its partition still exists. */
export const followCheckMs = 1000;

/** On shutdown, connections still open after this long are destroyed. */
export const shutdownGraceMs = 2000;

/** A connection with no replay running and no request line for this long is closed. */
export const idleTimeoutMs = 5 * 60 * 1000;
