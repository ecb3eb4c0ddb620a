/**
 * The group coordinator of this node: its groups by id, created on first use and forgotten
 * once they have no member (their committed offsets stay in the log's OffsetStore, which is
 * where OffsetFetch reads them).
 */
import * as limits from '../limits.ts';
import { Group } from './group.ts';

export class GroupCoordinator {
  private readonly groups = new Map<string, Group>();
  private closed = false;

  /** The group, created if needed; null when limits.groupsMax groups are held already (or closed). */
  group(id: string): Group | null {
    let g = this.groups.get(id);
    if (g) return g;
    if (this.closed || this.groups.size >= limits.groupsMax) return null;
    g = new Group(id, (empty) => {
      if (this.groups.get(id) === empty) this.groups.delete(id);
    });
    this.groups.set(id, g);
    return g;
  }

  /** The group when it exists, without creating it. */
  existing(id: string): Group | undefined {
    return this.groups.get(id);
  }

  /** Forgets a group that has no member (one created for a JoinGroup that was refused). */
  forgetIfEmpty(g: Group): void {
    if (g.size === 0 && g.state === 'Empty' && this.groups.get(g.id) === g) this.groups.delete(g.id);
  }

  /** Every group held now. */
  all(): IterableIterator<Group> {
    return this.groups.values();
  }

  get size(): number {
    return this.groups.size;
  }

  close(): void {
    this.closed = true;
    for (const g of this.groups.values()) g.close();
    this.groups.clear();
  }
}
