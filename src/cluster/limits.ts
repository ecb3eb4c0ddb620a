/** Limits and timings of the cluster log, named with their unit last. */

/** Batches of one partition published and not yet answered by JetStream (pipelining). */
export const appendsInFlightMax = 64;
/** Bytes of one partition published and not yet answered by JetStream. */
export const appendBytesInFlightMax = 32 * 1024 * 1024;
/** How long one publish waits for its PubAck before its outcome is looked up instead. */
export const pubAckTimeoutMs = 2000;
/**
 * How long an append may wait for JetStream in all (publish, conflicts, lookups) before it is
 * answered UNAVAILABLE. It may still be stored after that (see docs/cluster.md).
 */
export const appendDeadlineMs = 10_000;
/** How long a node pauses its publishes to a partition when another node asks for a turn. */
export const contentionYieldMs = 20;
/** JetStream's duplicate window on sluice's streams; chained publishes rely on it (appender.ts). */
export const duplicateWindowMs = 120_000;
/** Room for the NATS headers sluice adds to a batch (message id, expectations). */
export const publishHeaderBytesMax = 512;
/** A consumer feeding a mirror asks for at most this many bytes at a time, but at least two of the largest message NATS takes. */
export const feedBytesMin = 32 * 1024 * 1024;
/** Heartbeats of a feed's consumer while idle: two missed and the consumer is replaced. */
export const feedHeartbeatMs = 1000;
/** A feed that delivers nothing this long while an appender waits for a sequence the stream has is replaced. */
export const feedStallMs = 2000;
/** Back-off after a failed lookup or a consumer that stopped, doubling up to the max. */
export const retryDelayMinMs = 100;
export const retryDelayMaxMs = 500;
/** How long `open` waits for every mirror to catch up with JetStream before serving anyway. */
export const catchUpWaitMs = 30_000;
/** How long a JetStream API request (a look-up, a stream created) waits for its answer. */
export const apiTimeoutMs = 2000;
/** ...and one that changes streams (create, delete), which JetStream's meta leader must agree on. */
export const adminTimeoutMs = 10_000;
/** How long `open` waits for the first NATS connection. */
export const connectTimeoutMs = 20_000;
/** Cutting a diverged mirror back walks at most this many batches before rebuilding it whole. */
export const resyncStepsMax = 1000;
/** How often each node drops messages past a topic's retention.ms from JetStream. */
export const retentionCheckMs = 30_000;
