/**
 * The acl checks of the Kafka front, as on the WebSocket (wire contract §6, §8): acl.sub for
 * Fetch, ListOffsets, OffsetFetch and offset commits; acl.pub for Produce; admin for
 * CreateTopics and DeleteTopics. With auth off (no principal) everything is allowed.
 */
import { can } from '../../common/auth.ts';
import type { Session } from '../session.ts';

export function mayRead(session: Session, topic: string): boolean {
  return can(session.principal, 'sub', topic);
}

export function mayWrite(session: Session, topic: string): boolean {
  return can(session.principal, 'pub', topic);
}

/** Metadata lists a topic the principal may read or write. */
export function maySee(session: Session, topic: string): boolean {
  return mayRead(session, topic) || mayWrite(session, topic);
}

export function mayAdmin(session: Session): boolean {
  return can(session.principal, 'admin');
}
