/**
 * What a cluster node keeps in its data directory beside the mirror (the engine's usual
 * layout: `meta/`, `<topic>-<partition>/`):
 *
 *   <dataDir>/node-id        the node's id when --node-id is not given, drawn once
 *   <dataDir>/cluster.json   {"cluster": NAME}: this directory is a cluster node's mirror
 *
 * The marker keeps the two modes apart. A single node's log is the only copy of its records:
 * started with --cluster, its topics would be found absent from the cluster and removed, so
 * that is refused; and a mirror served as a single node's log would take writes nobody else
 * sees, so that is refused too.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SluiceError } from '../../engine/index.ts';
import { nodeIdPattern } from './names.ts';

const markerFile = 'cluster.json';

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

function holdsTopics(dataDir: string): boolean {
  try {
    return fs.readdirSync(path.join(dataDir, 'meta')).some((f) => f.endsWith('.json'));
  } catch {
    return false;
  }
}

/** Refuses a single node's log; marks the directory as this cluster's mirror. */
export function claimForCluster(dataDir: string, cluster: string): void {
  fs.mkdirSync(dataDir, { recursive: true });
  const marker = path.join(dataDir, markerFile);
  if (!fs.existsSync(marker)) {
    if (holdsTopics(dataDir)) {
      throw new SluiceError('UNAVAILABLE', `data directory ${dataDir} holds a single-node log: a cluster node needs its own (empty) data directory, and would remove topics the cluster does not have`, 'CLUSTER_DATA_DIR');
    }
  }
  writeAtomically(marker, JSON.stringify({ cluster }));
}

/** Refuses a cluster node's mirror as a single node's log. */
export function assertNotClusterMirror(dataDir: string): void {
  if (fs.existsSync(path.join(dataDir, markerFile))) {
    throw new SluiceError('UNAVAILABLE', `data directory ${dataDir} is a cluster node's mirror (${markerFile}); start it with --cluster, or give a single node its own data directory`, 'CLUSTER_DATA_DIR');
  }
}

/** The node's id: `given`, else the one kept in the data directory, else a new one kept there. */
export function resolveNodeId(dataDir: string, given: string | undefined): string {
  if (given !== undefined) return given;
  const file = path.join(dataDir, 'node-id');
  try {
    const id = fs.readFileSync(file, 'utf8').trim();
    if (nodeIdPattern.test(id)) return id;
  } catch {
    // none yet
  }
  const id = crypto.randomBytes(6).toString('hex');
  fs.mkdirSync(dataDir, { recursive: true });
  writeAtomically(file, `${id}\n`);
  return id;
}
