/**
 * What the log thread (log-host.ts) and a thread that uses its log (thread-log.ts) say to
 * each other over a MessagePort. Batches travel one way only, as appends, by transfer (the
 * ArrayBuffer moves, it is not copied); what became visible travels back as positions in
 * the segment files, which every thread maps itself.
 *
 * Host → thread, once: the snapshot of every topic. Then, one message per event-loop turn
 * of the log thread in which something happened: the events of that turn in the order they
 * happened (commits, moved starts, created and deleted topics), then the answers to this
 * thread's requests. A commit always comes before the answer to the append it made visible,
 * and a topic's `created` before the answer to its createTopic, so that a thread that acts
 * on an answer sees the log as the answer says.
 *
 * Thread → host, one message per event-loop turn of the thread in which it asked anything:
 * its requests in order (the appends of one partition are applied in the order sent); and
 * an ack for each host message that created or deleted a topic, once applied.
 */
import { BadRequestError, CorruptBatchError, OffsetOutOfRangeError, SluiceError, TooLargeError, TopicExistsError, UnavailableError, UnknownTopicError } from './errors.ts';
import type { ErrorCode, ReasonOf } from './errors.ts';
import type { CommittedOffset, CreateTopicOptions, SegmentSpan } from './log.ts';

export interface PartitionSnapshot {
  /** The host's number for this partition, used in every later message about it. */
  pid: number;
  partition: number;
  epoch: string;
  start: number;
  hw: number;
  /** The partition's directory and its segment files with their visible bytes. */
  dir: string;
  spans: SegmentSpan[];
}

export interface TopicSnapshot {
  name: string;
  retentionMs: number;
  retentionBytes: number;
  createdAt: number;
  partitions: PartitionSnapshot[];
}

export const EVENT_COMMIT = 0;
export const EVENT_START = 1;
export const EVENT_CREATED = 2;
export const EVENT_DELETED = 3;

/** Batches [position, end) of segment `segmentBase` became visible: offsets [first, next). */
export type CommitEvent = [kind: typeof EVENT_COMMIT, pid: number, segmentBase: number, position: number, end: number, first: number, next: number];
export type StartEvent = [kind: typeof EVENT_START, pid: number, start: number];
export type CreatedEvent = [kind: typeof EVENT_CREATED, topic: TopicSnapshot];
export type DeletedEvent = [kind: typeof EVENT_DELETED, topic: string];
export type HostEvent = CommitEvent | StartEvent | CreatedEvent | DeletedEvent;

export interface WireError {
  name: string;
  code: ErrorCode;
  message: string;
  reason: string;
  /** For the errors rebuilt from a topic name. */
  topic?: string;
}

export type HostReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: WireError };

/**
 * `seq` numbers the host's messages; a thread acks (ThreadMessage.ack) each message that
 * carried a topic created or deleted once it applied it, so that topic admin resolves only
 * when every thread knows (see LogHost.log).
 */
export type HostMessage = { snapshot: TopicSnapshot[]; seq: number } | { seq: number; events: HostEvent[]; replies: HostReply[] };

export type ThreadRequest =
  | { op: 'append'; id: number; pid: number; batch: Uint8Array }
  | { op: 'createTopic'; id: number; topic: string; opts: CreateTopicOptions }
  | { op: 'deleteTopic'; id: number; topic: string }
  | { op: 'fetchOffsets'; id: number; group: string }
  | { op: 'commitOffsets'; id: number; group: string; offsets: CommittedOffset[] }
  | { op: 'forgetOffsets'; id: number; topic: string };

export interface ThreadMessage {
  requests: ThreadRequest[];
  /** The `seq` of the last host message with a topic event that this thread applied. */
  ack?: number;
}

/** An error as it crosses: SluiceErrors keep their class, code and reason; anything else is INTERNAL. */
export function toWireError(err: unknown, topic?: string): WireError {
  if (err instanceof SluiceError) return { name: err.name, code: err.code, message: err.message, reason: err.reason, topic };
  return { name: 'SluiceError', code: 'INTERNAL', message: (err as Error)?.message ?? String(err), reason: 'INTERNAL' };
}

/** The error again, of the class callers test for (TopicExistsError, UnknownTopicError, ...). */
export function fromWireError(w: WireError): SluiceError {
  let e: SluiceError;
  switch (w.name) {
    case 'TopicExistsError':
      e = new TopicExistsError(w.topic ?? '');
      break;
    case 'UnknownTopicError':
      e = new UnknownTopicError(w.topic ?? '');
      break;
    case 'OffsetOutOfRangeError':
      e = new OffsetOutOfRangeError(w.message);
      break;
    case 'BadRequestError':
      e = new BadRequestError(w.message, w.reason as ReasonOf<'BAD_REQUEST'>);
      break;
    case 'CorruptBatchError':
      e = new CorruptBatchError(w.message, w.reason as ReasonOf<'BAD_REQUEST'>);
      break;
    case 'TooLargeError':
      e = new TooLargeError(w.message, w.reason as ReasonOf<'TOO_LARGE'>);
      break;
    case 'UnavailableError':
      e = new UnavailableError(w.message, w.reason as ReasonOf<'UNAVAILABLE'>);
      break;
    default:
      e = new SluiceError(w.code, w.message, w.reason as ReasonOf<ErrorCode>);
  }
  // The message as the log thread worded it (the rebuilt ones word it the same way).
  e.message = w.message;
  return e;
}
