/**
 * Consumer-group offsets of the local engine: one JSON file per group,
 *
 *   <dataDir>/groups/<hex of the group name's UTF-8>.json   {group, offsets: CommittedOffset[]}
 *
 * (a sha256 instead of the hex when that would pass the 255-byte file name limit). Each
 * commit rewrites the group's file through a temp file, fsync and rename, so a crash leaves
 * the old offsets or the new ones, never half of either; a commit resolves only after the
 * rename is synced. Commits of one group are applied one after another in call order.
 * Groups are read from disk once and then served from memory. `forgetTopic` reads every
 * group file once (it runs when a topic is deleted, which is rare) and rewrites the groups
 * that held offsets of the topic, the same way.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { UnavailableError, storageError } from './errors.ts';
import type { CommittedOffset, OffsetStore } from './log.ts';

const GroupFile = z.object({
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

/** File names stay under 255 bytes: 2 hex digits per byte, `.json`, and room for `.tmp`. */
const hexNameBytesMax = 240;

export function groupFileBase(group: string): string {
  const hex = Buffer.from(group, 'utf8').toString('hex');
  return hex.length <= hexNameBytesMax ? hex : `sha256-${crypto.createHash('sha256').update(group).digest('hex')}`;
}

export class LocalOffsetStore implements OffsetStore {
  private readonly cache = new Map<string, Map<string, CommittedOffset>>();
  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly dir: string) {}

  private load(group: string): Map<string, CommittedOffset> {
    let m = this.cache.get(group);
    if (m) return m;
    m = new Map();
    const file = path.join(this.dir, `${groupFileBase(group)}.json`);
    let text: string | null = null;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UnavailableError(`cannot read offsets of group ${JSON.stringify(group)}: ${(err as Error).message}`, 'IO_ERROR');
    }
    if (text !== null) {
      const parsed = GroupFile.safeParse(safeJson(text));
      if (!parsed.success || parsed.data.group !== group) {
        throw new UnavailableError(`offsets file of group ${JSON.stringify(group)} is unreadable: repair or remove ${file}`, 'OFFSETS_UNREADABLE');
      }
      for (const o of parsed.data.offsets) m.set(key(o.topic, o.partition), o);
    }
    this.cache.set(group, m);
    return m;
  }

  async fetch(group: string): Promise<CommittedOffset[]> {
    await this.chains.get(group);
    return [...this.load(group).values()];
  }

  commit(group: string, offsets: CommittedOffset[]): Promise<void> {
    return this.chain(group, () => this.write(group, (current) => {
      const updated = new Map(current);
      for (const o of offsets) updated.set(key(o.topic, o.partition), { ...o });
      return updated;
    }));
  }

  async forgetTopic(topic: string): Promise<void> {
    let files: string[];
    try {
      files = (await fs.promises.readdir(this.dir)).filter((f) => f.endsWith('.json'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // no group ever committed
      throw new UnavailableError(`cannot list group offsets: ${(err as Error).message}`, 'IO_ERROR');
    }
    const groups = new Set<string>(this.cache.keys());
    for (const f of files) {
      const parsed = GroupFile.safeParse(safeJson(await fs.promises.readFile(path.join(this.dir, f), 'utf8').catch(() => '')));
      if (parsed.success) groups.add(parsed.data.group);
    }
    for (const group of groups) {
      await this.chain(group, async () => {
        const current = this.load(group);
        if (![...current.values()].some((o) => o.topic === topic)) return;
        await this.write(group, (c) => new Map([...c].filter(([, o]) => o.topic !== topic)));
      });
    }
  }

  /** Runs `task` after every earlier one of the group: commits of a group apply in call order. */
  private chain(group: string, task: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(group) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(task);
    this.chains.set(group, next);
    void next.finally(() => {
      if (this.chains.get(group) === next) this.chains.delete(group);
    }).catch(() => {});
    return next;
  }

  private async write(group: string, change: (current: Map<string, CommittedOffset>) => Map<string, CommittedOffset>): Promise<void> {
    const updated = change(this.load(group));
    const base = groupFileBase(group);
    const tmp = path.join(this.dir, `${base}.tmp`);
    const file = path.join(this.dir, `${base}.json`);
    try {
      await fs.promises.mkdir(this.dir, { recursive: true });
      const fh = await fs.promises.open(tmp, 'w', 0o644);
      try {
        await fh.writeFile(JSON.stringify({ group, offsets: [...updated.values()] }));
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await fs.promises.rename(tmp, file);
      const dh = await fs.promises.open(this.dir, 'r');
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
    } catch (err) {
      throw storageError(err, `cannot store offsets of group ${JSON.stringify(group)}`);
    }
    this.cache.set(group, updated);
  }
}

function key(topic: string, partition: number): string {
  return `${topic}\0${partition}`;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
