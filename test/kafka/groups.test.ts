/**
 * The group coordinator through raw requests, for what the clients' tests do not reach on
 * purpose: a member that stops heartbeating is dropped after its session timeout, a rebalance
 * waits for known members at most their rebalance timeout and goes on without the silent ones,
 * heartbeats during a rebalance answer REBALANCE_IN_PROGRESS, stale generations are
 * ILLEGAL_GENERATION, and DescribeGroups shows the state.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sessionTimeoutMsMin } from '../../src/kafka/limits.ts';
import { type ServerProcess, startServer } from '../helpers/server.ts';
import { type Body, RawKafka } from './helpers.ts';

const JOIN_V = 5;

function joinBody(groupId: string, memberId: string, o: { sessionTimeoutMs?: number; rebalanceTimeoutMs?: number } = {}): Body {
  return {
    groupId,
    sessionTimeoutMs: o.sessionTimeoutMs ?? sessionTimeoutMsMin,
    rebalanceTimeoutMs: o.rebalanceTimeoutMs ?? sessionTimeoutMsMin,
    memberId,
    groupInstanceId: null,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: Buffer.from(memberId || 'new') }],
  };
}

describe('Kafka group coordinator', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  test('a member that stops heartbeating is dropped; the rebalance goes on without it', { timeout: 60_000 }, async () => {
    const a = await RawKafka.connect(srv.kafkaPort);
    const b = await RawKafka.connect(srv.kafkaPort);
    const ja = await a.request(11, JOIN_V, joinBody('silent', ''));
    assert.equal(ja.errorCode, 0);
    assert.equal(ja.generationId, 1);
    assert.equal(ja.leader, ja.memberId, 'the only member leads');
    assert.equal(ja.members.length, 1);
    const sa = await a.request(14, 3, { groupId: 'silent', generationId: 1, memberId: ja.memberId, groupInstanceId: null, assignments: [{ memberId: ja.memberId, assignment: Buffer.from('all of it') }] });
    assert.equal(sa.errorCode, 0);
    assert.equal(Buffer.from(sa.assignment).toString(), 'all of it');
    assert.equal((await a.request(12, 3, { groupId: 'silent', generationId: 1, memberId: ja.memberId, groupInstanceId: null })).errorCode, 0);

    // B joins; A is asked to rejoin (REBALANCE_IN_PROGRESS on its heartbeat) but never does.
    const started = Date.now();
    const jbPending = b.request(11, JOIN_V, joinBody('silent', ''));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await a.request(12, 3, { groupId: 'silent', generationId: 1, memberId: ja.memberId, groupInstanceId: null })).errorCode, 27);
    const described = await a.request(15, 2, { groups: ['silent'] });
    assert.equal(described.groups[0].groupState, 'PreparingRebalance');
    const jb = await jbPending;
    // The rebalance waited about A's rebalance timeout, then went on with B alone.
    assert.ok(Date.now() - started >= sessionTimeoutMsMin - 1000, `joined after ${Date.now() - started} ms`);
    assert.equal(jb.errorCode, 0);
    assert.equal(jb.generationId, 2);
    assert.equal(jb.leader, jb.memberId);
    assert.deepEqual(
      jb.members.map((m: Body) => m.memberId),
      [jb.memberId],
    );
    // A is gone: its heartbeat is UNKNOWN_MEMBER_ID; a stale generation from B is ILLEGAL_GENERATION.
    assert.equal((await a.request(12, 3, { groupId: 'silent', generationId: 1, memberId: ja.memberId, groupInstanceId: null })).errorCode, 25);
    assert.equal((await b.request(12, 3, { groupId: 'silent', generationId: 1, memberId: jb.memberId, groupInstanceId: null })).errorCode, 22);
    const sb = await b.request(14, 3, { groupId: 'silent', generationId: 2, memberId: jb.memberId, groupInstanceId: null, assignments: [{ memberId: jb.memberId, assignment: Buffer.from('b') }] });
    assert.equal(sb.errorCode, 0);

    // B goes silent too: after its session timeout the group is empty.
    const silentSince = Date.now();
    for (let i = 0; i < 200; i++) {
      const d = await a.request(15, 2, { groups: ['silent'] });
      if (d.groups[0].members.length === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(Date.now() - silentSince >= sessionTimeoutMsMin - 1000, 'not before the session timeout');
    assert.equal((await b.request(12, 3, { groupId: 'silent', generationId: 2, memberId: jb.memberId, groupInstanceId: null })).errorCode, 25);
    a.close();
    b.close();
  });

  test('two members: the leader gets both members, each gets its own assignment; a leave rebalances', async () => {
    const a = await RawKafka.connect(srv.kafkaPort);
    const b = await RawKafka.connect(srv.kafkaPort);
    const [ja, jb] = await Promise.all([a.request(11, JOIN_V, joinBody('pair', '')), b.request(11, JOIN_V, joinBody('pair', ''))]);
    assert.equal(ja.generationId, jb.generationId, 'one rebalance for members that start together');
    const leader = ja.leader === ja.memberId ? { c: a, j: ja } : { c: b, j: jb };
    const other = leader.c === a ? { c: b, j: jb } : { c: a, j: ja };
    assert.equal(leader.j.members.length, 2);
    assert.equal(other.j.members.length, 0);
    const gen = ja.generationId;
    const [sl, so] = await Promise.all([
      leader.c.request(14, 3, {
        groupId: 'pair',
        generationId: gen,
        memberId: leader.j.memberId,
        groupInstanceId: null,
        assignments: [
          { memberId: leader.j.memberId, assignment: Buffer.from('L') },
          { memberId: other.j.memberId, assignment: Buffer.from('O') },
        ],
      }),
      other.c.request(14, 3, { groupId: 'pair', generationId: gen, memberId: other.j.memberId, groupInstanceId: null, assignments: [] }),
    ]);
    assert.equal(Buffer.from(sl.assignment).toString(), 'L');
    assert.equal(Buffer.from(so.assignment).toString(), 'O');
    const listed = await a.request(16, 4, { statesFilter: ['Stable'] });
    assert.ok(listed.groups.some((g: Body) => g.groupId === 'pair' && g.groupState === 'Stable'));

    // The other member leaves: the leader's next heartbeat says rebalance, and it rejoins alone.
    const left = await other.c.request(13, 3, { groupId: 'pair', members: [{ memberId: other.j.memberId, groupInstanceId: null }] });
    assert.equal(left.members[0].errorCode, 0);
    assert.equal((await leader.c.request(12, 3, { groupId: 'pair', generationId: gen, memberId: leader.j.memberId, groupInstanceId: null })).errorCode, 27);
    const again = await leader.c.request(11, JOIN_V, joinBody('pair', leader.j.memberId));
    assert.equal(again.generationId, gen + 1);
    assert.equal(again.members.length, 1);
    a.close();
    b.close();
  });
});
