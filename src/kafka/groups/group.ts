/**
 * One consumer group under the classic group protocol (JoinGroup / SyncGroup / Heartbeat /
 * LeaveGroup), as a Kafka group coordinator runs it. The assignment itself is the clients'
 * business: the leader runs the assignor the members agreed on (range, round-robin, ...) and
 * sends every member's share in its SyncGroup; the coordinator only passes bytes along.
 *
 *   Empty ──join──▶ PreparingRebalance ──all known members rejoined, or the rebalance
 *                     ▲      │            timeout──▶ CompletingRebalance ──leader's sync──▶ Stable
 *                     │      └─(no member left)─▶ Empty                                     │
 *                     └──── a member joins, leaves, or misses its session timeout ◀────────┘
 *
 * - A rebalance waits for every known member to send JoinGroup again, at most the longest
 *   rebalance timeout among them; those that did not are dropped. An empty group waits
 *   limits.initialRebalanceDelayMs after its first join, so that consumers started together
 *   share one rebalance. Then the generation goes up, a protocol every member supports is
 *   chosen (each member votes for the first of its own that all support), and every waiting
 *   JoinGroup is answered; the leader's answer lists the members and their metadata.
 * - SyncGroup waits for the leader's assignments, then answers every member with its own.
 * - Every JoinGroup, SyncGroup, Heartbeat and offset commit of a member restarts its session
 *   timer; a member whose timer runs out is removed and the group rebalances. A member waiting
 *   in JoinGroup is not timed out (it is doing what it was asked).
 * - Heartbeats during a rebalance answer REBALANCE_IN_PROGRESS, which tells the member to
 *   JoinGroup again.
 *
 * Groups live in the memory of the node that the client talks to: a restart forgets members
 * (clients get UNKNOWN_MEMBER_ID and join again), never committed offsets, which the log's
 * OffsetStore keeps. In cluster mode each node coordinates its own groups (docs/kafka.md).
 * A new member gets its id in its first JoinGroup answer (sluice does not ask v4+ clients for
 * the extra MEMBER_ID_REQUIRED round trip).
 */
import crypto from 'node:crypto';
import * as limits from '../limits.ts';
import { KafkaError } from '../protocol/errors.ts';

export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable';

export interface Protocol {
  name: string;
  metadata: Buffer;
}

export interface JoinRequest {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: Protocol[];
}

/** A group as DescribeGroups shows it. */
export interface GroupDescription {
  groupState: GroupState;
  protocolType: string;
  protocolData: string;
  members: { memberId: string; groupInstanceId: string | null; clientId: string; clientHost: string; memberMetadata: Buffer; memberAssignment: Buffer }[];
}

export interface JoinResult {
  errorCode: number;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leader: string;
  memberId: string;
  members: { memberId: string; groupInstanceId: string | null; metadata: Buffer }[];
}

export interface SyncResult {
  errorCode: number;
  protocolType: string | null;
  protocolName: string | null;
  assignment: Buffer;
}

interface Member {
  readonly id: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  protocols: Protocol[];
  assignment: Buffer;
  join: ((r: JoinResult) => void) | null;
  sync: ((r: SyncResult) => void) | null;
  timer: NodeJS.Timeout | null;
}

const NO_ASSIGNMENT: Buffer = Buffer.alloc(0);

export class Group {
  state: GroupState = 'Empty';
  generation = 0;
  protocolType: string | null = null;
  protocolName: string | null = null;
  leader: string | null = null;
  private readonly members = new Map<string, Member>();
  private rebalanceTimer: NodeJS.Timeout | null = null;
  /** True while an empty group's first rebalance waits for others to join. */
  private initialDelay = false;

  constructor(
    readonly id: string,
    /** Told when the group has no member left (the coordinator may forget it). */
    private readonly onEmpty: (group: Group) => void,
  ) {}

  get size(): number {
    return this.members.size;
  }

  has(memberId: string): boolean {
    return this.members.has(memberId);
  }

  join(req: JoinRequest): Promise<JoinResult> {
    const fail = (errorCode: number, memberId = req.memberId): Promise<JoinResult> =>
      Promise.resolve({ errorCode, generationId: -1, protocolType: null, protocolName: null, leader: '', memberId, members: [] });
    if (req.sessionTimeoutMs < limits.sessionTimeoutMsMin || req.sessionTimeoutMs > limits.sessionTimeoutMsMax) return fail(KafkaError.INVALID_SESSION_TIMEOUT);
    if (req.protocolType === '' || req.protocols.length === 0 || req.protocols.length > limits.groupProtocolsMax) return fail(KafkaError.INCONSISTENT_GROUP_PROTOCOL);
    if (req.protocols.some((p) => p.metadata.length > limits.groupMetadataBytesMax)) return fail(KafkaError.INCONSISTENT_GROUP_PROTOCOL);
    if (this.members.size > 0 && (req.protocolType !== this.protocolType || !this.sharesProtocol(req.protocols, req.memberId))) return fail(KafkaError.INCONSISTENT_GROUP_PROTOCOL);
    let member: Member | undefined;
    if (req.memberId === '') {
      if (this.members.size >= limits.groupMembersMax) return fail(KafkaError.GROUP_MAX_SIZE_REACHED);
      const id = `${req.clientId || 'member'}-${crypto.randomUUID()}`;
      member = { id, groupInstanceId: req.groupInstanceId, clientId: req.clientId, clientHost: req.clientHost, sessionTimeoutMs: 0, rebalanceTimeoutMs: 0, protocols: [], assignment: NO_ASSIGNMENT, join: null, sync: null, timer: null };
      this.members.set(id, member);
      if (this.leader === null) this.leader = id;
    } else {
      member = this.members.get(req.memberId);
      if (!member) return fail(KafkaError.UNKNOWN_MEMBER_ID);
    }
    this.protocolType = req.protocolType;
    member.sessionTimeoutMs = req.sessionTimeoutMs;
    member.rebalanceTimeoutMs = req.rebalanceTimeoutMs > 0 ? req.rebalanceTimeoutMs : req.sessionTimeoutMs;
    member.protocols = req.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) }));
    // A second JoinGroup from the same member replaces the first, which is answered as stale.
    const previous = member.join;
    const result = new Promise<JoinResult>((resolve) => {
      member.join = resolve;
    });
    previous?.({ errorCode: KafkaError.UNKNOWN_MEMBER_ID, generationId: -1, protocolType: null, protocolName: null, leader: '', memberId: member.id, members: [] });
    this.stopTimer(member); // a member waiting in JoinGroup is not timed out
    if (this.state === 'PreparingRebalance') this.maybeCompleteJoin();
    else this.prepareRebalance();
    return result;
  }

  sync(memberId: string, generationId: number, assignments: { memberId: string; assignment: Buffer }[], protocolType: string | null, protocolName: string | null): Promise<SyncResult> {
    const answer = (errorCode: number, assignment: Buffer = NO_ASSIGNMENT): Promise<SyncResult> =>
      Promise.resolve({ errorCode, protocolType: this.protocolType, protocolName: this.protocolName, assignment });
    const member = this.members.get(memberId);
    if (!member) return answer(KafkaError.UNKNOWN_MEMBER_ID);
    if (generationId !== this.generation) return answer(KafkaError.ILLEGAL_GENERATION);
    if ((protocolType !== null && protocolType !== this.protocolType) || (protocolName !== null && protocolName !== this.protocolName)) return answer(KafkaError.INCONSISTENT_GROUP_PROTOCOL);
    this.touch(member);
    if (this.state === 'PreparingRebalance' || this.state === 'Empty') return answer(KafkaError.REBALANCE_IN_PROGRESS);
    if (this.state === 'Stable') return answer(KafkaError.NONE, member.assignment);
    // CompletingRebalance: wait for the leader's assignments.
    const result = new Promise<SyncResult>((resolve) => {
      member.sync?.({ errorCode: KafkaError.REBALANCE_IN_PROGRESS, protocolType: this.protocolType, protocolName: this.protocolName, assignment: NO_ASSIGNMENT });
      member.sync = resolve;
    });
    if (memberId === this.leader) {
      for (const m of this.members.values()) m.assignment = NO_ASSIGNMENT;
      for (const a of assignments) {
        const m = this.members.get(a.memberId);
        if (m && a.assignment.length <= limits.groupMetadataBytesMax) m.assignment = Buffer.from(a.assignment);
      }
      this.state = 'Stable';
      for (const m of this.members.values()) {
        const resolve = m.sync;
        m.sync = null;
        resolve?.({ errorCode: KafkaError.NONE, protocolType: this.protocolType, protocolName: this.protocolName, assignment: m.assignment });
      }
    }
    return result;
  }

  heartbeat(memberId: string, generationId: number): number {
    const member = this.members.get(memberId);
    if (!member) return KafkaError.UNKNOWN_MEMBER_ID;
    if (generationId !== this.generation) return KafkaError.ILLEGAL_GENERATION;
    this.touch(member);
    if (this.state === 'PreparingRebalance') return KafkaError.REBALANCE_IN_PROGRESS;
    return KafkaError.NONE;
  }

  leave(memberId: string): number {
    const member = this.members.get(memberId);
    if (!member) return KafkaError.UNKNOWN_MEMBER_ID;
    this.remove(member);
    return KafkaError.NONE;
  }

  /** Whether an offset commit from this member and generation is accepted (Kafka's rules). */
  checkCommit(memberId: string, generationId: number): number {
    if (generationId < 0 && memberId === '' && this.members.size === 0) return KafkaError.NONE; // a consumer outside any group
    if (this.state === 'CompletingRebalance') return KafkaError.REBALANCE_IN_PROGRESS;
    const member = this.members.get(memberId);
    if (!member) return KafkaError.UNKNOWN_MEMBER_ID;
    if (generationId !== this.generation) return KafkaError.ILLEGAL_GENERATION;
    this.touch(member);
    return KafkaError.NONE;
  }

  describe(): GroupDescription {
    const stable = this.state === 'Stable';
    return {
      groupState: this.state,
      protocolType: this.protocolType ?? '',
      protocolData: stable ? (this.protocolName ?? '') : '',
      members: [...this.members.values()].map((m) => ({
        memberId: m.id,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        memberMetadata: (stable ? m.protocols.find((p) => p.name === this.protocolName)?.metadata : undefined) ?? NO_ASSIGNMENT,
        memberAssignment: stable ? m.assignment : NO_ASSIGNMENT,
      })),
    };
  }

  /** Server shutdown: every waiting request is answered NOT_COORDINATOR (clients look again), timers stop. */
  close(): void {
    if (this.rebalanceTimer) clearTimeout(this.rebalanceTimer);
    this.rebalanceTimer = null;
    for (const m of this.members.values()) {
      this.stopTimer(m);
      m.join?.({ errorCode: KafkaError.NOT_COORDINATOR, generationId: -1, protocolType: null, protocolName: null, leader: '', memberId: m.id, members: [] });
      m.sync?.({ errorCode: KafkaError.NOT_COORDINATOR, protocolType: null, protocolName: null, assignment: NO_ASSIGNMENT });
      m.join = null;
      m.sync = null;
    }
    this.members.clear();
  }

  private sharesProtocol(protocols: Protocol[], memberId: string): boolean {
    for (const p of protocols) {
      let all = true;
      for (const m of this.members.values()) {
        if (m.id === memberId) continue;
        if (!m.protocols.some((q) => q.name === p.name)) {
          all = false;
          break;
        }
      }
      if (all) return true;
    }
    return false;
  }

  private touch(member: Member): void {
    this.stopTimer(member);
    if (member.join !== null) return;
    member.timer = setTimeout(() => {
      member.timer = null;
      if (this.members.get(member.id) === member && member.join === null) this.remove(member);
    }, member.sessionTimeoutMs);
    member.timer.unref();
  }

  private stopTimer(member: Member): void {
    if (member.timer) clearTimeout(member.timer);
    member.timer = null;
  }

  private remove(member: Member): void {
    this.stopTimer(member);
    this.members.delete(member.id);
    member.join?.({ errorCode: KafkaError.UNKNOWN_MEMBER_ID, generationId: -1, protocolType: null, protocolName: null, leader: '', memberId: member.id, members: [] });
    member.sync?.({ errorCode: KafkaError.UNKNOWN_MEMBER_ID, protocolType: null, protocolName: null, assignment: NO_ASSIGNMENT });
    member.join = null;
    member.sync = null;
    if (this.leader === member.id) this.leader = this.members.keys().next().value ?? null;
    if (this.members.size === 0) {
      if (this.rebalanceTimer) clearTimeout(this.rebalanceTimer);
      this.rebalanceTimer = null;
      this.initialDelay = false;
      this.state = 'Empty';
      this.protocolName = null;
      this.protocolType = null;
      this.onEmpty(this);
      return;
    }
    if (this.state === 'PreparingRebalance') this.maybeCompleteJoin();
    else this.prepareRebalance();
  }

  private prepareRebalance(): void {
    const wasEmpty = this.state === 'Empty';
    // Members waiting for an assignment of a generation that will not be stable.
    for (const m of this.members.values()) {
      const resolve = m.sync;
      m.sync = null;
      resolve?.({ errorCode: KafkaError.REBALANCE_IN_PROGRESS, protocolType: this.protocolType, protocolName: this.protocolName, assignment: NO_ASSIGNMENT });
    }
    this.state = 'PreparingRebalance';
    if (this.rebalanceTimer) clearTimeout(this.rebalanceTimer);
    if (wasEmpty) {
      this.initialDelay = true;
      this.rebalanceTimer = setTimeout(() => {
        this.initialDelay = false;
        this.rebalanceTimer = null;
        this.armRebalanceTimeout();
        this.maybeCompleteJoin();
      }, limits.initialRebalanceDelayMs);
    } else {
      this.armRebalanceTimeout();
      this.maybeCompleteJoin();
    }
  }

  private armRebalanceTimeout(): void {
    let ms = 0;
    for (const m of this.members.values()) ms = Math.max(ms, m.rebalanceTimeoutMs);
    this.rebalanceTimer = setTimeout(() => {
      this.rebalanceTimer = null;
      this.completeJoin();
    }, ms);
    this.rebalanceTimer.unref();
  }

  private maybeCompleteJoin(): void {
    if (this.state !== 'PreparingRebalance' || this.initialDelay) return;
    for (const m of this.members.values()) if (m.join === null) return;
    this.completeJoin();
  }

  private completeJoin(): void {
    if (this.state !== 'PreparingRebalance') return;
    if (this.rebalanceTimer) clearTimeout(this.rebalanceTimer);
    this.rebalanceTimer = null;
    // Members that did not rejoin in time are out.
    for (const m of [...this.members.values()]) {
      if (m.join === null) {
        this.stopTimer(m);
        this.members.delete(m.id);
      }
    }
    if (this.members.size === 0) {
      this.state = 'Empty';
      this.leader = null;
      this.onEmpty(this);
      return;
    }
    if (this.leader === null || !this.members.has(this.leader)) this.leader = this.members.keys().next().value as string;
    this.generation++;
    this.protocolName = this.chooseProtocol();
    this.state = 'CompletingRebalance';
    const all = [...this.members.values()].map((m) => ({ memberId: m.id, groupInstanceId: m.groupInstanceId, metadata: m.protocols.find((p) => p.name === this.protocolName)?.metadata ?? NO_ASSIGNMENT }));
    for (const m of this.members.values()) {
      const resolve = m.join!;
      m.join = null;
      this.touch(m);
      resolve({
        errorCode: KafkaError.NONE,
        generationId: this.generation,
        protocolType: this.protocolType,
        protocolName: this.protocolName,
        leader: this.leader,
        memberId: m.id,
        members: m.id === this.leader ? all : [],
      });
    }
  }

  /** Each member votes for the first of its protocols that every member supports. */
  private chooseProtocol(): string {
    const members = [...this.members.values()];
    const common = members[0].protocols.map((p) => p.name).filter((name) => members.every((m) => m.protocols.some((p) => p.name === name)));
    const votes = new Map<string, number>();
    for (const m of members) {
      const choice = m.protocols.find((p) => common.includes(p.name));
      if (choice) votes.set(choice.name, (votes.get(choice.name) ?? 0) + 1);
    }
    let best = common[0];
    for (const [name, n] of votes) if (n > (votes.get(best) ?? 0)) best = name;
    return best;
  }
}
