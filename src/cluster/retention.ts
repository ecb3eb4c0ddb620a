/**
 * retention.ms in JetStream. A stream's own `max_age` would drop every message of a partition
 * that has been idle longer than that, and with the last message gone nobody could tell which
 * offset comes next (a node that joins later would start again at 0, and give offsets twice).
 * The log must keep its end, as a segment log keeps its active segment: so each node drops
 * expired messages itself with a purge that always keeps the last one. Purges are idempotent,
 * so every node may run them.
 *
 * A message expires once it was stored by JetStream longer than retention.ms ago (JetStream's
 * clock, which grows with the sequence); the boundary is found by a binary search over
 * sequences. retention.bytes is the stream's `max_bytes` (cluster-log.ts), never below two
 * of the largest message, so it too keeps the last one.
 */
import type { JetStreamManager } from '@nats-io/jetstream';

/** Drops the stream's messages stored before `now - retentionMs`, always keeping the last one. Returns how many. */
export async function purgeExpired(jsm: JetStreamManager, stream: string, retentionMs: number, now = Date.now()): Promise<number> {
  if (retentionMs < 0) return 0;
  const cutoff = now - retentionMs;
  const { first_seq: first, last_seq: last, messages } = (await jsm.streams.info(stream)).state;
  if (messages <= 1) return 0;
  const storedAt = async (seq: number): Promise<number | null> => {
    const m = await jsm.streams.getMessage(stream, { seq });
    return m ? m.time.getTime() : null;
  };
  const firstAt = await storedAt(first);
  if (firstAt !== null && firstAt >= cutoff) return 0;
  // Smallest sequence in (first, last] stored at or after the cutoff; `last` when none is.
  let lo = first + 1;
  let hi = last;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const t = await storedAt(mid);
    if (t !== null && t >= cutoff) hi = mid;
    else lo = mid + 1;
  }
  const r = await jsm.streams.purge(stream, { seq: lo });
  return r.purged;
}
