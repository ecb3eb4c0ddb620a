/**
 * Consumer-group offsets of the local engine (engine/offset-store.ts), through the log's
 * `offsets`: commits are durable and survive a reopen, commits of a group apply in call order,
 * deleting a topic forgets its offsets (a topic created again under the name starts without
 * them), and a damaged group file is refused with OFFSETS_UNREADABLE instead of guessed at.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { LogManager } from '../../engine/log-manager.ts';
import type { CommittedOffset } from '../../engine/log.ts';
import { groupFileBase } from '../../engine/offset-store.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const at = (topic: string, partition: number, offset: number): CommittedOffset => ({ topic, partition, offset, metadata: null, committedAt: 1 });
const view = (xs: CommittedOffset[]) => xs.map((o) => `${o.topic}/${o.partition}=${o.offset}`).sort();

test('commits survive a reopen; later commits of a group win, in call order', async () => {
  const dataDir = tempDir();
  let log = await LogManager.open({ dataDir });
  await log.createTopic('a', { partitions: 2 });
  const commits = [];
  for (let i = 0; i < 20; i++) commits.push(log.offsets.commit('g', [at('a', i % 2, i)]));
  await Promise.all(commits);
  await log.offsets.commit('other', [at('a', 0, 5)]);
  assert.deepEqual(view(await log.offsets.fetch('g')), ['a/0=18', 'a/1=19']);
  await log.close();
  log = await LogManager.open({ dataDir });
  assert.deepEqual(view(await log.offsets.fetch('g')), ['a/0=18', 'a/1=19']);
  assert.deepEqual(view(await log.offsets.fetch('other')), ['a/0=5']);
  assert.deepEqual(await log.offsets.fetch('never'), []);
  await log.close();
});

test('deleting a topic forgets its offsets in every group, durably; other topics keep theirs', async () => {
  const dataDir = tempDir();
  let log = await LogManager.open({ dataDir });
  await log.createTopic('gone', { partitions: 1 });
  await log.createTopic('kept', { partitions: 1 });
  await log.offsets.commit('g1', [at('gone', 0, 7), at('kept', 0, 3)]);
  await log.offsets.commit('g2', [at('gone', 0, 9)]);
  await log.close();
  log = await LogManager.open({ dataDir }); // groups not yet read into memory: forgetTopic reads the files
  await log.deleteTopic('gone');
  assert.deepEqual(view(await log.offsets.fetch('g1')), ['kept/0=3']);
  assert.deepEqual(await log.offsets.fetch('g2'), []);
  await log.createTopic('gone', { partitions: 1 });
  await log.close();
  log = await LogManager.open({ dataDir });
  assert.deepEqual(view(await log.offsets.fetch('g1')), ['kept/0=3']);
  assert.deepEqual(await log.offsets.fetch('g2'), []);
  await log.close();
});

test('a damaged group file is OFFSETS_UNREADABLE, not an empty group', async () => {
  const dataDir = tempDir();
  const log = await LogManager.open({ dataDir });
  await log.createTopic('t', { partitions: 1 });
  await log.offsets.commit('hurt', [at('t', 0, 1)]);
  await log.close();
  fs.writeFileSync(path.join(dataDir, 'groups', `${groupFileBase('hurt')}.json`), '{"group":"hurt","offsets":[{');
  const again = await LogManager.open({ dataDir });
  await assert.rejects(again.offsets.fetch('hurt'), (err: { reason?: string }) => err.reason === 'OFFSETS_UNREADABLE');
  await again.close();
});
