/**
 * Temp dirs for tests, removed when the test process exits. Test data dirs hold up to
 * gigabytes (paused subscribers, large frames, benchmarks); left behind, a few runs fill
 * the disk and every later append fails with UNAVAILABLE.
 * Set SLUICE_KEEP_TEST_DIRS=1 to keep them for a post-mortem.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const made = new Set<string>();

process.on('exit', () => {
  if (process.env.SLUICE_KEEP_TEST_DIRS === '1') return;
  for (const dir of made) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // a child still writing there: nothing more to do at exit
    }
  }
});

export function tempDir(prefix = 'sluice-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.add(dir);
  return dir;
}
