/**
 * Consumer-group offsets in cluster mode: the `<cluster>-offsets` key-value bucket (replicated
 * like the topics), so that a group's commits survive any node and every node serves the
 * same offsets.
 *
 *   key   <group>.<topic>.<partition>, the group as the local store names its files (the
 *         UTF-8 in hex, sha256-… past 240 digits) and the topic with `.` written `=`
 *   value {"group","topic","partition","offset","metadata","committedAt"}
 *
 * One key per partition, not one per group: a commit only ever writes the partitions it
 * names, so commits from several nodes for one group never overwrite each other's partitions,
 * and no compare-and-set is needed (JetStream 2.9 checks a key's expected revision before it
 * proposes a write, not when it applies it, so two racing read-modify-writes of one key could
 * both succeed and one would lose the other's partitions). For one partition, the last commit
 * wins, as in Kafka. A deleted topic's keys are purged (`forgetTopic`), so that a topic created
 * again under the name does not inherit positions.
 */
import { z } from 'zod';
import { type CommittedOffset, type OffsetStore, UnavailableError, groupFileBase } from '../../engine/index.ts';
import type { KV } from '@nats-io/kv';
import { topicKey } from './names.ts';

const Value = z.object({
  group: z.string(),
  topic: z.string(),
  partition: z.number().int().min(0),
  offset: z.number().int().min(-1),
  metadata: z.string().nullable(),
  committedAt: z.number(),
});

export class KvOffsetStore implements OffsetStore {
  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly kv: KV) {}

  private key(group: string, topic: string, partition: number): string {
    return `${groupFileBase(group)}.${topicKey(topic)}.${partition}`;
  }

  async fetch(group: string): Promise<CommittedOffset[]> {
    await this.chains.get(group)?.catch(() => {});
    try {
      const keys: string[] = [];
      for await (const k of await this.kv.keys(`${groupFileBase(group)}.>`)) keys.push(k);
      const out: CommittedOffset[] = [];
      for (const e of await Promise.all(keys.map((k) => this.kv.get(k)))) {
        if (!e || e.operation !== 'PUT') continue;
        let parsed;
        try {
          parsed = Value.safeParse(JSON.parse(e.string()));
        } catch {
          parsed = null;
        }
        if (!parsed?.success || parsed.data.group !== group) {
          throw new UnavailableError(`offsets of group ${JSON.stringify(group)} in the cluster's bucket are unreadable (key ${e.key})`, 'OFFSETS_UNREADABLE');
        }
        const { topic, partition, offset, metadata, committedAt } = parsed.data;
        out.push({ topic, partition, offset, metadata, committedAt });
      }
      return out;
    } catch (err) {
      if (err instanceof UnavailableError) throw err;
      throw new UnavailableError(`cannot read offsets of group ${JSON.stringify(group)}: ${(err as Error).message}`, 'CLUSTER_UNAVAILABLE');
    }
  }

  /** Resolves once the bucket (a quorum of its replicas) holds every offset given; commits of one group run in call order. */
  commit(group: string, offsets: CommittedOffset[]): Promise<void> {
    const prev = this.chains.get(group) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(() => this.write(group, offsets));
    this.chains.set(group, next);
    void next
      .finally(() => {
        if (this.chains.get(group) === next) this.chains.delete(group);
      })
      .catch(() => {});
    return next;
  }

  /** Deletes every group's keys of `topic` (`*.<topic>.*`), each before resolving. */
  async forgetTopic(topic: string): Promise<void> {
    try {
      const keys: string[] = [];
      for await (const k of await this.kv.keys(`*.${topicKey(topic)}.*`)) keys.push(k);
      await Promise.all(keys.map((k) => this.kv.purge(k)));
    } catch (err) {
      throw new UnavailableError(`cannot forget the offsets of topic ${JSON.stringify(topic)}: ${(err as Error).message}`, 'CLUSTER_UNAVAILABLE');
    }
  }

  private async write(group: string, offsets: CommittedOffset[]): Promise<void> {
    try {
      await Promise.all(offsets.map((o) => this.kv.put(this.key(group, o.topic, o.partition), JSON.stringify({ group, ...o }))));
    } catch (err) {
      throw new UnavailableError(`cannot store offsets of group ${JSON.stringify(group)}: ${(err as Error).message}`, 'CLUSTER_UNAVAILABLE');
    }
  }
}
