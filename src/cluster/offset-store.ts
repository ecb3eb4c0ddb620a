/**
 * Consumer-group offsets in cluster mode: one key per group in the `<cluster>-offsets`
 * key-value bucket (replicated like the topics), so that a group's commits survive any node
 * and every node serves the same offsets.
 *
 *   key   the group name's UTF-8 in hex (sha256-… past 240 digits), as the local store names files
 *   value {"group", "offsets": CommittedOffset[]}
 *
 * A commit reads the group's value, merges its offsets in and writes it back on condition that
 * nobody wrote it meanwhile (the bucket's revision), trying again when another node did: two
 * nodes committing for one group never lose each other's partitions. Commits of one group on
 * this node run one after another, in call order.
 */
import { z } from 'zod';
import { type CommittedOffset, type OffsetStore, UnavailableError, groupFileBase } from '../../engine/index.ts';
import type { KV } from '@nats-io/kv';
import { offsetCommitTriesMax } from './limits.ts';

const GroupValue = z.object({
  group: z.string(),
  offsets: z.array(
    z.object({
      topic: z.string(),
      partition: z.number().int().min(0),
      offset: z.number().int().min(-1),
      metadata: z.string().nullable(),
      committedAt: z.number(),
    }),
  ),
});

const WRONG_LAST_SEQUENCE = 10071;

export class KvOffsetStore implements OffsetStore {
  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly kv: KV) {}

  private async read(group: string): Promise<{ offsets: Map<string, CommittedOffset>; revision: number }> {
    const key = groupFileBase(group);
    let e;
    try {
      e = await this.kv.get(key);
    } catch (err) {
      throw new UnavailableError(`cannot read offsets of group ${JSON.stringify(group)}: ${(err as Error).message}`, 'CLUSTER_UNAVAILABLE');
    }
    const offsets = new Map<string, CommittedOffset>();
    if (!e || e.operation !== 'PUT') return { offsets, revision: e?.revision ?? 0 };
    let parsed;
    try {
      parsed = GroupValue.safeParse(JSON.parse(e.string()));
    } catch {
      parsed = null;
    }
    if (!parsed?.success || parsed.data.group !== group) {
      throw new UnavailableError(`offsets of group ${JSON.stringify(group)} in the cluster's bucket are unreadable`, 'OFFSETS_UNREADABLE');
    }
    for (const o of parsed.data.offsets) offsets.set(`${o.topic}\0${o.partition}`, o);
    return { offsets, revision: e.revision };
  }

  async fetch(group: string): Promise<CommittedOffset[]> {
    await this.chains.get(group)?.catch(() => {});
    return [...(await this.read(group)).offsets.values()];
  }

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

  private async write(group: string, offsets: CommittedOffset[]): Promise<void> {
    const key = groupFileBase(group);
    for (let attempt = 0; attempt < offsetCommitTriesMax; attempt++) {
      const current = await this.read(group);
      for (const o of offsets) current.offsets.set(`${o.topic}\0${o.partition}`, { ...o });
      const value = JSON.stringify({ group, offsets: [...current.offsets.values()] });
      try {
        if (current.revision === 0) await this.kv.create(key, value);
        else await this.kv.update(key, value, current.revision);
        return;
      } catch (err) {
        const code = (err as { code?: number }).code;
        // Another node committed for this group meanwhile: read again and merge again.
        if (code === WRONG_LAST_SEQUENCE || /wrong last sequence/i.test((err as Error).message)) continue;
        throw new UnavailableError(`cannot store offsets of group ${JSON.stringify(group)}: ${(err as Error).message}`, 'CLUSTER_UNAVAILABLE');
      }
    }
    throw new UnavailableError(`offsets of group ${JSON.stringify(group)}: ${offsetCommitTriesMax} commits in a row lost a race`, 'CLUSTER_UNAVAILABLE');
  }
}
