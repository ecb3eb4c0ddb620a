/**
 * The log manager: topics and their metadata, partition lookup, names that must never reach
 * outside the data directory, and the lock that keeps two processes off one directory.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { LogManager } from '../../engine/log-manager.ts';
import { partitionsMax, topicNameLengthMax } from '../../engine/limits.ts';
import { appendRandom, assertCode, assertRejectsCode, flat, matrix, readAll } from './helpers.ts';

/** Every path under `root`, relative, sorted. */
function tree(root: string): string[] {
  return (fs.readdirSync(root, { recursive: true }) as string[]).map(String).sort();
}

matrix('topics are created, listed, described and deleted', async (ctx) => {
  const r = ctx.rng();
  const mgr = await ctx.openManager();
  assert.deepEqual(mgr.listTopics(), []);
  const info = await mgr.createTopic('orders', { partitions: 3 });
  await mgr.createTopic('a.b_c-9', { partitions: 1, retentionMs: 1000, retentionBytes: 5000 });
  assert.deepEqual(mgr.listTopics(), ['a.b_c-9', 'orders']);
  assert.equal(info.name, 'orders');
  assert.equal(info.partitions.length, 3);
  assert.equal(info.retentionMs, -1);
  assert.equal(info.retentionBytes, -1);
  assert.deepEqual(
    info.partitions.map((p) => [p.partition, p.start, p.hw, p.bytes, p.segments]),
    [
      [0, 0, 0, 0, 1],
      [1, 0, 0, 0, 1],
      [2, 0, 0, 0, 1],
    ],
  );
  for (const p of info.partitions) assert.match(p.epoch, /^[0-9a-f]{16}$/);
  assert.equal(new Set(info.partitions.map((p) => p.epoch)).size, 3, 'every partition has its own epoch');
  assert.equal(mgr.partitionCount('orders'), 3);
  assert.ok(mgr.hasTopic('orders'));
  const other = mgr.describe('a.b_c-9');
  assert.deepEqual([other.retentionMs, other.retentionBytes], [1000, 5000]);

  const appended = await appendRandom(ctx, mgr.partition('orders', 2), r, 10);
  const d = mgr.describe('orders');
  assert.equal(d.partitions[2].hw, appended.at(-1)!.baseOffset + appended.at(-1)!.count);
  assert.ok(d.partitions[2].bytes > 0);
  assert.equal(d.partitions[0].hw, 0);
  assert.ok(fs.existsSync(path.join(ctx.dir, 'orders-2')));

  await mgr.deleteTopic('orders');
  assert.deepEqual(mgr.listTopics(), ['a.b_c-9']);
  assert.ok(!mgr.hasTopic('orders'));
  assertCode(() => mgr.describe('orders'), 'UNKNOWN_TOPIC');
  assertCode(() => mgr.partition('orders', 0), 'UNKNOWN_TOPIC');
  assertCode(() => mgr.partitionCount('orders'), 'UNKNOWN_TOPIC');
  await assert.rejects(mgr.deleteTopic('orders'), (e: { code?: string }) => e.code === 'UNKNOWN_TOPIC');
  for (const p of [0, 1, 2]) assert.ok(!fs.existsSync(path.join(ctx.dir, `orders-${p}`)), 'partition directories are gone');
  assert.ok(!fs.existsSync(path.join(ctx.dir, 'meta', 'orders.json')));
});

matrix('topic metadata, epochs and data persist across reopen', async (ctx) => {
  const r = ctx.rng();
  let mgr = await ctx.openManager();
  await mgr.createTopic('t1', { partitions: 2, retentionMs: 60_000 });
  await mgr.createTopic('t2', { partitions: 4, retentionBytes: 1 << 20 });
  const b0 = await appendRandom(ctx, mgr.partition('t1', 0), r, 12);
  const b3 = await appendRandom(ctx, mgr.partition('t2', 3), r, 7);
  const before = [mgr.describe('t1'), mgr.describe('t2')];
  await mgr.close();
  for (let i = 0; i < 2; i++) {
    mgr = await ctx.openManager();
    assert.deepEqual(mgr.listTopics(), ['t1', 't2']);
    assert.deepEqual([mgr.describe('t1'), mgr.describe('t2')], before, 'names, epochs, offsets, retention and createdAt survive');
    assert.deepEqual(readAll(mgr.partition('t1', 0)), flat(b0));
    assert.deepEqual(readAll(mgr.partition('t2', 3)), flat(b3));
    await mgr.close();
  }
});

matrix('a topic deleted and created again has new epochs and no old data', async (ctx) => {
  const r = ctx.rng();
  let mgr = await ctx.openManager();
  const first = await mgr.createTopic('t', { partitions: 2 });
  await appendRandom(ctx, mgr.partition('t', 1), r, 5);
  await mgr.deleteTopic('t');
  const second = await mgr.createTopic('t', { partitions: 2 });
  for (const p of [0, 1]) assert.notEqual(second.partitions[p].epoch, first.partitions[p].epoch);
  assert.deepEqual(
    second.partitions.map((p) => [p.start, p.hw, p.bytes]),
    [
      [0, 0, 0],
      [0, 0, 0],
    ],
  );
  assert.equal(mgr.partition('t', 1).read(0, 1000), null);
  await mgr.close();
  mgr = await ctx.openManager();
  assert.deepEqual(
    mgr.describe('t').partitions.map((p) => p.epoch),
    second.partitions.map((p) => p.epoch),
    'the new epochs are the ones that persist',
  );
});

matrix('bad topic names are BAD_REQUEST and create nothing anywhere', async (ctx) => {
  fs.mkdirSync(ctx.dir, { recursive: true });
  const mgr = await ctx.openManager();
  const rootBefore = tree(ctx.root);
  const bad: unknown[] = [
    '',
    '.',
    '..',
    'a/b',
    '../x',
    '../../x',
    '/abs',
    'x/../../y',
    'a\\b',
    '..\\x',
    'a'.repeat(topicNameLengthMax + 1),
    'ü',
    'café',
    '日本',
    'emoji😀',
    'a b',
    'a\0b',
    'a\nb',
    'a:b',
    'a*',
    null,
    undefined,
    42,
    ['a'],
  ];
  for (const name of bad) {
    await assertRejectsCode(mgr.createTopic(name as string, { partitions: 1 }), 'BAD_REQUEST', 'BAD_TOPIC_NAME');
  }
  assert.deepEqual(tree(ctx.root), rootBefore, 'nothing was created inside or beside the data dir');
  assert.deepEqual(mgr.listTopics(), []);
  // Edge names that are fine: dots other than "." and "..", the longest allowed name.
  for (const name of ['...', '.a', 'a..b', '-', '_', 'A-Z.0_9']) await mgr.createTopic(name, { partitions: 1 });
  assert.equal(mgr.listTopics().length, 6);
  for (const d of fs.readdirSync(ctx.root)) assert.equal(d, 'data', 'every topic lives inside the data dir');
});

matrix('regression: a topic name of the maximum length (249) can be created and reopened', async (ctx) => {
  // The metadata temp file was `<name>.json.tmp`: 258 bytes for a 249-byte name, over the
  // 255-byte file name limit, so creating such a topic failed with ENAMETOOLONG.
  const r = ctx.rng();
  const longest = 'x'.repeat(topicNameLengthMax);
  let mgr = await ctx.openManager();
  const info = await mgr.createTopic(longest, { partitions: 2 });
  await mgr.createTopic(`${'y'.repeat(topicNameLengthMax - 2)}.z`, { partitions: 1 });
  const b = await appendRandom(ctx, mgr.partition(longest, 1), r, 3);
  await mgr.close();
  mgr = await ctx.openManager();
  assert.equal(mgr.listTopics().length, 2);
  assert.deepEqual(mgr.describe(longest).partitions.map((p) => p.epoch), info.partitions.map((p) => p.epoch));
  assert.deepEqual(readAll(mgr.partition(longest, 1)), flat(b));
  assert.ok(!fs.readdirSync(path.join(ctx.dir, 'meta')).some((f) => f.endsWith('.tmp')), 'no temp file is left behind');
});

matrix('bad partition counts and partition numbers are BAD_REQUEST', async (ctx) => {
  const mgr = await ctx.openManager();
  for (const partitions of [0, -1, 1.5, partitionsMax + 1, Number.NaN, Number.POSITIVE_INFINITY, '2' as unknown as number]) {
    await assertRejectsCode(mgr.createTopic('t', { partitions }), 'BAD_REQUEST', 'BAD_PARTITIONS');
  }
  for (const opts of [{ retentionMs: -2 }, { retentionBytes: 1.5 }, { retentionMs: Number.NaN }]) {
    await assertRejectsCode(mgr.createTopic('t', { partitions: 1, ...opts }), 'BAD_REQUEST', 'BAD_RETENTION');
  }
  assert.deepEqual(mgr.listTopics(), []);
  assert.deepEqual(fs.readdirSync(path.join(ctx.dir, 'meta')), []);
  await mgr.createTopic('t', { partitions: 3 });
  for (const p of [-1, 3, 1.5, Number.NaN, 1000]) assertCode(() => mgr.partition('t', p), 'BAD_REQUEST', 'BAD_PARTITION');
  assert.equal(mgr.partition('t', 2).partition, 2);
});

matrix('creating a topic that exists is BAD_REQUEST and leaves it alone', async (ctx) => {
  const r = ctx.rng();
  const mgr = await ctx.openManager();
  const first = await mgr.createTopic('t', { partitions: 2 });
  const b = await appendRandom(ctx, mgr.partition('t', 0), r, 4);
  await assertRejectsCode(mgr.createTopic('t', { partitions: 2 }), 'BAD_REQUEST', 'TOPIC_EXISTS');
  await assertRejectsCode(mgr.createTopic('t', { partitions: 5 }), 'BAD_REQUEST', 'TOPIC_EXISTS');
  const now = mgr.describe('t');
  assert.deepEqual(now.partitions.map((p) => p.epoch), first.partitions.map((p) => p.epoch));
  assert.deepEqual(readAll(mgr.partition('t', 0)), flat(b));
});

matrix('a closed manager refuses work with UNAVAILABLE', async (ctx) => {
  const mgr = await ctx.openManager();
  await mgr.createTopic('t', { partitions: 1 });
  await mgr.close();
  await assertRejectsCode(mgr.createTopic('u', { partitions: 1 }), 'UNAVAILABLE', 'CLOSED');
  await mgr.close();
});

/** A process that lives until killed, and its pid. */
function liveProcess(): { pid: number; kill(): Promise<void> } {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  return {
    pid: child.pid!,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

matrix('the data dir lock: a live owner keeps others out, a dead one is taken over', async (ctx) => {
  const r = ctx.rng();
  const lock = path.join(ctx.dir, '.lock');
  const mgr = await ctx.openManager();
  await mgr.createTopic('t', { partitions: 1 });
  const b = await appendRandom(ctx, mgr.partition('t', 0), r, 3);
  assert.equal(fs.readFileSync(lock, 'utf8'), String(process.pid));

  // Another process on the same dir fails while this one lives.
  const other = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `import('${new URL('../../engine/log-manager.ts', import.meta.url).href}').then(({ LogManager }) => LogManager.open({ dataDir: ${JSON.stringify(ctx.dir)}, retentionCheckMs: 0 })).then(() => process.exit(0), (e) => { console.log(e.reason); process.exit(3); })`,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
  assert.equal(other.status, 3, other.stderr);
  assert.equal(other.stdout.trim(), 'DATA_DIR_LOCKED');
  await mgr.close();
  assert.ok(!fs.existsSync(lock), 'a clean close releases the lock');

  // A lock held by a live foreign pid is respected...
  const holder = liveProcess();
  fs.writeFileSync(lock, String(holder.pid));
  await assert.rejects(LogManager.open({ dataDir: ctx.dir, retentionCheckMs: 0 }), (e: { code?: string; reason?: string }) => e.code === 'UNAVAILABLE' && e.reason === 'DATA_DIR_LOCKED');
  assert.equal(fs.readFileSync(lock, 'utf8'), String(holder.pid), 'and left in place');
  // ...and taken over once that process is dead.
  await holder.kill();
  const again = await ctx.openManager();
  assert.equal(fs.readFileSync(lock, 'utf8'), String(process.pid));
  assert.deepEqual(readAll(again.partition('t', 0)), flat(b));
  await again.close();

  // Garbage in the lock file is stale too.
  fs.writeFileSync(lock, 'not a pid');
  const third = await ctx.openManager();
  assert.equal(fs.readFileSync(lock, 'utf8'), String(process.pid));
  await third.close();
});

matrix('regression: a second manager in the same process cannot open a locked data dir', async (ctx) => {
  // The lock took any lock file holding this process's pid as its own, so two managers in
  // one process both "owned" the directory and would interleave their appends.
  const first = await ctx.openManager();
  await first.createTopic('t', { partitions: 1 });
  await assert.rejects(ctx.openManager(), (e: { code?: string; reason?: string }) => e.code === 'UNAVAILABLE' && e.reason === 'DATA_DIR_LOCKED');
  assert.equal(fs.readFileSync(path.join(ctx.dir, '.lock'), 'utf8'), String(process.pid), 'the failed open left the lock to its owner');
  await first.close();
  const second = await ctx.openManager();
  assert.deepEqual(second.listTopics(), ['t']);
  await second.close();
  // A lock left with this pid by a manager that is gone (a crash, or a restart that reused
  // the pid, as pid 1 in a container) is stale: taken over.
  fs.writeFileSync(path.join(ctx.dir, '.lock'), String(process.pid));
  const third = await ctx.openManager();
  assert.deepEqual(third.listTopics(), ['t']);
});

matrix('regression: damaged topic metadata never deletes the topic data', async (ctx) => {
  // Partition directories of topics whose metadata could not be read were removed on open
  // as leftovers, so a damaged (or newer-format) metadata file wiped the topic's records.
  const r = ctx.rng();
  let mgr = await ctx.openManager();
  await mgr.createTopic('keep', { partitions: 2 });
  await mgr.createTopic('other', { partitions: 1 });
  const b = await appendRandom(ctx, mgr.partition('keep', 1), r, 6);
  await mgr.close();
  const metaFile = path.join(ctx.dir, 'meta', 'keep.json');
  const good = fs.readFileSync(metaFile);
  fs.writeFileSync(metaFile, good.subarray(0, good.length >> 1));
  mgr = await ctx.openManager();
  assert.deepEqual(mgr.listTopics(), ['other'], 'the unreadable topic is not served');
  assert.ok(fs.existsSync(path.join(ctx.dir, 'keep-1')), 'but its data stays on disk');
  // Nor does creating it again (as auto-create on publish would) overwrite it.
  await assertRejectsCode(mgr.createTopic('keep', { partitions: 1 }), 'UNAVAILABLE', 'TOPIC_METADATA_UNREADABLE');
  assert.ok(fs.existsSync(path.join(ctx.dir, 'keep-1')));
  await mgr.close();
  fs.writeFileSync(metaFile, good);
  mgr = await ctx.openManager();
  assert.deepEqual(mgr.listTopics(), ['keep', 'other']);
  assert.deepEqual(readAll(mgr.partition('keep', 1)), flat(b));
  await mgr.close();
  // Directories no metadata accounts for are set aside in lost+found/, never deleted.
  fs.mkdirSync(path.join(ctx.dir, 'ghost-0'));
  fs.mkdirSync(path.join(ctx.dir, 'other-7'));
  mgr = await ctx.openManager();
  assert.ok(!fs.existsSync(path.join(ctx.dir, 'ghost-0')));
  assert.ok(!fs.existsSync(path.join(ctx.dir, 'other-7')), 'a partition beyond the count is unaccounted for too');
  assert.ok(fs.existsSync(path.join(ctx.dir, 'lost+found', 'ghost-0')));
  assert.ok(fs.existsSync(path.join(ctx.dir, 'lost+found', 'other-7')));
  assert.ok(fs.existsSync(path.join(ctx.dir, 'other-0')));
});

matrix('regression: a missing metadata file never deletes the data: it goes to lost+found/, loudly, and can be brought back', async (ctx) => {
  // Start-up removed "a partition directory that belongs to no topic" and with it every record.
  const r = ctx.rng();
  const lines: { obj: object; msg?: string }[] = [];
  const logger = { info() {}, warn() {}, error: (obj: object, msg?: string) => lines.push({ obj, msg }) };
  let mgr = await ctx.openManager();
  await mgr.createTopic('orders', { partitions: 2 });
  const b = await appendRandom(ctx, mgr.partition('orders', 1), r, 8);
  await mgr.close();
  fs.rmSync(path.join(ctx.dir, 'meta', 'orders.json'));
  mgr = await ctx.openManager({ logger });
  assert.deepEqual(mgr.listTopics(), []);
  for (const p of [0, 1]) {
    assert.ok(fs.existsSync(path.join(ctx.dir, 'lost+found', `orders-${p}`)), `orders-${p} kept aside`);
    assert.ok(lines.some((l) => (l.obj as { dir?: string }).dir === `orders-${p}` && /lost\+found/.test(l.msg ?? '')), `orders-${p} said loudly`);
  }
  // A new topic of that name starts empty and leaves what was set aside alone...
  await mgr.createTopic('orders', { partitions: 2 });
  assert.equal(mgr.partition('orders', 1).hw, 0);
  await mgr.close();
  // ...and the old segments copied back (what docs/storage.md tells an operator to do) read again.
  fs.rmSync(path.join(ctx.dir, 'orders-1'), { recursive: true });
  fs.cpSync(path.join(ctx.dir, 'lost+found', 'orders-1'), path.join(ctx.dir, 'orders-1'), { recursive: true });
  mgr = await ctx.openManager();
  assert.deepEqual(readAll(mgr.partition('orders', 1)), flat(b));
});

matrix('a delete stopped between its steps: marked directories are removed on open, unmarked ones set aside', async (ctx) => {
  let mgr = await ctx.openManager();
  await mgr.createTopic('gone', { partitions: 1 });
  const epoch = mgr.describe('gone').partitions[0].epoch;
  await mgr.close();
  // As if the process stopped after removing the metadata and marking the directory.
  fs.rmSync(path.join(ctx.dir, 'meta', 'gone.json'));
  fs.renameSync(path.join(ctx.dir, 'gone-0'), path.join(ctx.dir, `gone-0.${epoch}.deleted`));
  mgr = await ctx.openManager();
  assert.deepEqual(fs.readdirSync(ctx.dir).filter((f) => f.startsWith('gone')), []);
  assert.ok(!fs.existsSync(path.join(ctx.dir, 'lost+found')), 'nothing set aside: the delete was ours');
  // A delete run to its end leaves nothing at all.
  await mgr.createTopic('gone', { partitions: 3 });
  await mgr.deleteTopic('gone');
  assert.deepEqual(fs.readdirSync(ctx.dir).filter((f) => f.startsWith('gone')), []);
});

matrix('regression: a create of a topic whose delete is still under way waits for it, then starts clean (no data set aside, its metadata kept)', async (ctx) => {
  // The delete awaits the offset store before it removes the metadata and marks the
  // directories: a create in between found the old directories (and, once the delete went
  // on, lost its new metadata file to it).
  const r = ctx.rng();
  let mgr = await ctx.openManager();
  await mgr.createTopic('again', { partitions: 2 });
  await appendRandom(ctx, mgr.partition('again', 1), r, 5);
  const deleting = mgr.deleteTopic('again');
  const created = mgr.createTopic('again', { partitions: 2 });
  // And from a listener told of the delete, at once.
  const viaEvent: Promise<unknown>[] = [];
  mgr.onTopicEvent((e) => {
    if (e.type === 'deleted' && e.topic === 'listened') viaEvent.push(mgr.createTopic('listened', { partitions: 1 }));
  });
  await mgr.createTopic('listened', { partitions: 1 });
  await deleting;
  await created;
  await mgr.deleteTopic('listened');
  await Promise.all(viaEvent);
  assert.equal(viaEvent.length, 1);
  assert.ok(!fs.existsSync(path.join(ctx.dir, 'lost+found')), 'nothing was in the way');
  assert.deepEqual(mgr.describe('again').partitions.map((p) => p.hw), [0, 0]);
  await mgr.close();
  mgr = await ctx.openManager();
  assert.deepEqual(mgr.listTopics(), ['again', 'listened'], 'both kept their metadata');
  assert.ok(!fs.existsSync(path.join(ctx.dir, 'lost+found')));
});
