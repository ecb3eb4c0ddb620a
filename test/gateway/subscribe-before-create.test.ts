/**
 * A `sub` to a topic that does not exist yet "is not refused: it waits for the topic ... and
 * its records start at offset 0" (wire contract §3). sluice waits and never creates the topic
 * from a `sub`, whatever --auto-create says (docs/protocol.md, "Subscribing"): the `subbed`
 * answer comes, with the request's id, once a publish or a PUT creates the topic.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, type ServerProcess, http, startServer, utf8 } from '../helpers/server.ts';

describe('subscribe before the topic exists', () => {
  let srv: ServerProcess;
  before(async () => {
    srv = await startServer({ args: ['--partitions', '2', '--max-subscriptions', '4'] });
  });
  after(async () => {
    assert.equal(await srv.stop(), 0);
  });

  const metric = async (name: string): Promise<number> => {
    const text = (await http('GET', `${srv.http}/metrics`)).text;
    return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1]);
  };

  test('the sub waits, creates nothing, and gets its subbed once a publish creates the topic; records start at 0', async () => {
    const c = await Client.connect(srv.url);
    // `from: latest` and an offset mean nothing for a topic with no history: it starts at 0.
    const id = c.send({ op: 'sub', topic: 'later', from: 'latest' });
    assert.equal((await c.request({ op: 'ping' })).op, 'pong');
    assert.ok(!c.messages.some((m) => m.id === id), 'not answered while the topic does not exist');
    assert.equal((await http('GET', `${srv.http}/v1/topics/later`)).status, 404, 'the sub created nothing');
    assert.equal(await metric('sluice_subscriptions_waiting'), 1);

    const p = await Client.connect(srv.url);
    const acks = await Promise.all(['first', 'second', 'third'].map((value) => p.request({ op: 'pub', topic: 'later', key: 'k', value })));
    const subbed = await c.waitMessage((m) => m.id === id, 'subbed');
    assert.equal(subbed.op, 'subbed');
    assert.deepEqual(subbed.partitions.map((x: { partition: number; next: number }) => [x.partition, x.next]), [[0, 0], [1, 0]]);
    const part = acks[0].partition;
    await c.until(() => c.recordsOf('later', part).length === 3, 'the three records');
    assert.deepEqual(c.recordsOf('later', part).map((r) => [r.offset, utf8(r.value)]), [[0, 'first'], [1, 'second'], [2, 'third']]);
    assert.equal(await metric('sluice_subscriptions_waiting'), 0);
    c.close();
    p.close();
  });

  test('a PUT creates the topic too; a waiting sub for a partition the new topic lacks is answered BAD_REQUEST', async () => {
    const c = await Client.connect(srv.url);
    const one = c.send({ op: 'sub', topic: 'made', partition: 0, from: 'earliest' });
    const three = c.send({ op: 'sub', topic: 'made', partition: 3 });
    assert.equal((await http('PUT', `${srv.http}/v1/topics/made`, { partitions: 2 })).status, 201);
    assert.equal((await c.waitMessage((m) => m.id === one, 'subbed')).op, 'subbed');
    const refused = await c.waitMessage((m) => m.id === three, 'refusal');
    assert.equal(refused.code, 'BAD_REQUEST');
    assert.match(refused.message, /partition 3 does not exist/);
    c.close();
  });

  test('unsub ends the wait (the sub is answered UNKNOWN_TOPIC); waits count against --max-subscriptions', async () => {
    const c = await Client.connect(srv.url);
    const w1 = c.send({ op: 'sub', topic: 'never-1' });
    assert.equal((await c.request({ op: 'sub', topic: 'never-1' })).code, 'BAD_REQUEST', 'a second wait for the same thing');
    c.send({ op: 'sub', topic: 'never-2' });
    c.send({ op: 'sub', topic: 'never-3' });
    c.send({ op: 'sub', topic: 'never-4' });
    const over = await c.request({ op: 'sub', topic: 'never-5' });
    assert.equal(over.code, 'BAD_REQUEST');
    assert.match(over.message, /--max-subscriptions 4/);
    assert.equal((await c.request({ op: 'unsub', topic: 'never-1' })).op, 'unsubbed');
    const ended = c.messages.find((m) => m.id === w1);
    assert.equal(ended?.code, 'UNKNOWN_TOPIC');
    assert.match(ended?.message, /unsubscribed before topic "never-1" was created/);
    // Room again; and a connection that closes while waiting leaves nothing behind.
    c.send({ op: 'sub', topic: 'never-5' });
    assert.equal(await metric('sluice_subscriptions_waiting'), 4);
    c.close();
    for (let i = 0; i < 100 && (await metric('sluice_subscriptions_waiting')) !== 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await metric('sluice_subscriptions_waiting'), 0);
  });

  test('a topic deleted and created again: a subscriber that waited for the new one starts at 0 on the new epoch', async () => {
    const p = await Client.connect(srv.url);
    await p.request({ op: 'pub', topic: 'reborn', partition: 0, value: 'old life' });
    const oldEpoch = (await p.request({ op: 'meta', topic: 'reborn' })).partitions[0].epoch;
    assert.equal((await http('DELETE', `${srv.http}/v1/topics/reborn`)).status, 200);
    const c = await Client.connect(srv.url);
    const id = c.send({ op: 'sub', topic: 'reborn', partition: 0, from: { offset: 1 } });
    await p.request({ op: 'pub', topic: 'reborn', partition: 0, value: 'new life' });
    const subbed = await c.waitMessage((m) => m.id === id, 'subbed');
    assert.equal(subbed.partitions[0].next, 0);
    assert.notEqual(subbed.partitions[0].epoch, oldEpoch);
    await c.until(() => c.records.length === 1, 'the record');
    assert.equal(utf8(c.records[0].value), 'new life');
    c.close();
    p.close();
  });
});
