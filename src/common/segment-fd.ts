/**
 * A file descriptor of a front's own on the segment file that `LogPartition.read` handed
 * batches out of, for sendfile(2). Shared by the replay and Kafka fronts.
 *
 * Why a descriptor of our own and not the log's: retention may delete a segment, and close
 * the log's descriptor, while a transfer from it runs. A descriptor opened here keeps the
 * deleted file's inode alive until it is closed, so a transfer in flight completes with the
 * bytes the read promised; the next read then finds its offset below the log start. The
 * file is opened right after the read, so the only race left is a deletion between the read
 * and the open: `open` then returns null (ENOENT) and the caller reads again, or sends the
 * read's mapped view, which stays valid while referenced.
 */
import fs from 'node:fs';
import { UnavailableError } from '../../engine/errors.ts';
import type { SegmentFile } from '../../engine/log.ts';

export class SegmentFd {
  private segment: SegmentFile | null = null;
  private fd = -1;

  /** The descriptor for `segment` (reused while it does not change), or null when the file is gone. */
  open(segment: SegmentFile): number | null {
    if (this.segment === segment && this.fd >= 0) return this.fd;
    this.close();
    try {
      this.fd = fs.openSync(segment.logPath, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return null;
      throw new UnavailableError(`cannot open segment: ${code ?? (err as Error).message}`, 'IO_ERROR');
    }
    this.segment = segment;
    return this.fd;
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    this.segment = null;
  }
}
