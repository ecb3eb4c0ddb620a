/**
 * The front's own descriptor on a segment file (src/common/segment-fd.ts), shared by the
 * replay and Kafka fronts: reused while the segment is the same, null when the file is gone
 * before the open, and still readable after the file is deleted (what makes a transfer in
 * flight safe from retention).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { SegmentFd } from '../../src/common/segment-fd.ts';
import { tempDir } from '../helpers/temp-dir.ts';

test('one descriptor per segment, null for a file already gone, readable after deletion', () => {
  const dir = tempDir();
  const a = { logPath: path.join(dir, 'a.log') };
  const b = { logPath: path.join(dir, 'b.log') };
  fs.writeFileSync(a.logPath, 'segment a');
  fs.writeFileSync(b.logPath, 'segment b');
  const file = new SegmentFd();
  const fa = file.open(a);
  assert.ok(fa !== null && fa >= 0);
  assert.equal(file.open(a), fa, 'the same segment reuses its descriptor');
  fs.rmSync(a.logPath);
  const buf = Buffer.alloc(9);
  assert.equal(fs.readSync(fa, buf, 0, 9, 0), 9, 'a deleted file stays readable through our descriptor');
  assert.equal(buf.toString(), 'segment a');
  // Each switch closes the previous descriptor: the numbers are reused instead of piling up.
  const numbers = new Set<number>();
  for (let i = 0; i < 50; i++) {
    fs.writeFileSync(a.logPath, 'segment a');
    numbers.add(file.open({ logPath: a.logPath })!);
  }
  assert.ok(numbers.size <= 2, `${numbers.size} distinct descriptors for 50 switches`);
  const fb = file.open(b);
  assert.ok(fb !== null);
  assert.equal(fs.readSync(fb, buf, 0, 9, 0), 9);
  assert.equal(buf.toString(), 'segment b');
  fs.rmSync(b.logPath);
  file.close();
  assert.equal(new SegmentFd().open(b), null, 'a file gone before the open is null, not an error');
});
