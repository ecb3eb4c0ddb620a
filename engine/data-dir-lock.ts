/**
 * The data directory's lock: `<dataDir>/.lock` holds the pid of the process whose LogManager
 * owns the directory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SluiceError } from './errors.ts';

/** Data dirs (real paths) locked by a live LogManager of this process. */
const lockedHere = new Set<string>();

/**
 * Two writers appending to one directory would interleave batches and corrupt it: the
 * lock file holds the owner's pid, and a lock whose pid is no longer alive is taken over.
 * A lock with this process's own pid is held only if a LogManager here still holds it;
 * otherwise it was left by an earlier process that had the same pid (pid 1 in a container).
 */
export function lockDataDir(dataDir: string): string {
  const lock = path.join(dataDir, '.lock');
  const key = fs.realpathSync(dataDir);
  if (lockedHere.has(key)) {
    throw new SluiceError('UNAVAILABLE', `data directory ${dataDir} is in use by this process`, 'DATA_DIR_LOCKED');
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      lockedHere.add(key);
      return key;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(fs.readFileSync(lock, 'utf8').trim());
      if (pid !== process.pid && Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
        throw new SluiceError('UNAVAILABLE', `data directory ${dataDir} is in use by process ${pid}`, 'DATA_DIR_LOCKED');
      }
      fs.rmSync(lock, { force: true });
    }
  }
  throw new SluiceError('UNAVAILABLE', `cannot lock data directory ${dataDir}`, 'DATA_DIR_LOCKED');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Releases the lock taken with `key` (a no-op when the file is gone or another pid's). */
export function unlockDataDir(dataDir: string, key: string): void {
  lockedHere.delete(key);
  const lock = path.join(dataDir, '.lock');
  try {
    if (fs.readFileSync(lock, 'utf8').trim() === String(process.pid)) fs.rmSync(lock);
  } catch {
    // already gone
  }
}
