/**
 * How every front binds its port, and the ONE place that decides whether a port may be
 * shared with another socket.
 *
 * The rule: a port sluice listens on is its own. A second server started on a port already
 * in use must fail to start with a clear error, never quietly share it: uWebSockets.js 20.30
 * listens with SO_REUSEPORT unless told otherwise, and two sluice processes on one port (with
 * different data directories) had the kernel split connections between two logs
 * (`GET /v1/topics` answered from the other log on 3 calls of 6).
 *
 * The one exception is a front that spreads its port over worker threads of this
 * process: uWS 20.30 cannot hand one listening socket to several threads, so each thread's
 * App listens on the same port with SO_REUSEPORT. `portSharing` names that case, and
 * `claimPort` keeps it safe: before the threads bind, an exclusive probe bind checks that no
 * socket at all holds the port (a SO_REUSEPORT one included; checked here on Linux 6), so a
 * second sluice, which probes the same way, is refused while the first one's threads hold it.
 * uWS sets SO_REUSEPORT only on a port it is given, never on port 0: so with port 0 the
 * first thread takes a free port (`portToBind`) and every thread binds that one.
 *
 * Node's `net` (the replay and Kafka fronts) binds without SO_REUSEPORT and reports
 * EADDRINUSE itself; uWS only says that listening failed, so `listenProblem` binds a plain
 * socket to the same address to learn why. Either way the error is a PortInUseError (or a
 * ListenError) naming the address, the front and the flag that set the port.
 */
import net from 'node:net';
import { SluiceError } from '../../engine/errors.ts';

/** Who listens, for the error message: the front's name and the flag that chose its port. */
export interface ListenTarget {
  front: string;
  /** e.g. `--port`, `--replay-port`, `--kafka-port`. */
  flag: string;
  host: string;
  port: number;
}

/** `exclusive`: no other socket may bind the port. `own-threads`: this front's worker threads share it (SO_REUSEPORT). */
export type PortSharing = 'exclusive' | 'own-threads';

/** The sharing a front's port gets: exclusive, unless the front runs on several threads of this process. */
export function portSharing(threads: number): PortSharing {
  return threads > 1 ? 'own-threads' : 'exclusive';
}

/** uWS 20.30's listen options: LIBUS_LISTEN_EXCLUSIVE_PORT (1) turns SO_REUSEPORT off; LIBUS_LISTEN_DEFAULT (0) keeps it. */
export function uwsListenOptions(sharing: PortSharing): 0 | 1 {
  return sharing === 'exclusive' ? 1 : 0;
}

function where(t: ListenTarget): string {
  return `${t.host}:${t.port} (the ${t.front}, ${t.flag})`;
}

/** Another socket holds the port: sluice does not start. */
export class PortInUseError extends SluiceError<'UNAVAILABLE'> {
  constructor(t: ListenTarget) {
    super('UNAVAILABLE', `cannot listen on ${where(t)}: the port is already in use (another sluice or another program listens there); choose another with ${t.flag}, or stop the other one`, 'PORT_IN_USE');
    this.name = 'PortInUseError';
  }
}

/** Any other reason a port cannot be bound (not allowed, address not on this machine). */
export class ListenError extends SluiceError<'UNAVAILABLE'> {
  constructor(t: ListenTarget, why: string) {
    super('UNAVAILABLE', `cannot listen on ${where(t)}: ${why}`, 'LISTEN_FAILED');
    this.name = 'ListenError';
  }
}

/** The error for a failed bind with this errno code. */
export function listenError(t: ListenTarget, err: NodeJS.ErrnoException | null): SluiceError<'UNAVAILABLE'> {
  switch (err?.code) {
    case 'EADDRINUSE':
      return new PortInUseError(t);
    case 'EACCES':
      return new ListenError(t, `permission denied (ports below 1024 need privileges)`);
    case 'EADDRNOTAVAIL':
      return new ListenError(t, `${t.host} is not an address of this machine (--host)`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new ListenError(t, `the host name ${t.host} does not resolve (--host)`);
    default:
      return new ListenError(t, err ? `${err.code ?? ''} ${err.message}`.trim() : 'the listen call failed without saying why');
  }
}

/** Why binding `host:port` fails, found with a plain socket that is closed again at once; null if it binds. */
export function listenProblem(host: string, port: number): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(null)));
  });
}

/**
 * Checks that no socket holds the port before a front's threads bind it with SO_REUSEPORT
 * (`own-threads`); throws PortInUseError (or ListenError) when one does.
 */
export async function claimPort(t: ListenTarget): Promise<void> {
  const problem = await listenProblem(t.host, t.port);
  if (problem) throw listenError(t, problem);
}

/** A port nothing listens on now, found by binding port 0 with a plain socket and closing it. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen({ host, port: 0, exclusive: true }, () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/**
 * The port a front's first (or only) thread binds: the one asked for; when its threads will
 * share it, first checked free of every other socket (`claimPort`: a second sluice is
 * refused here), or, for port 0, a free one (another program may take it before the bind:
 * the caller tries again). The other threads bind the port the first one got.
 */
export async function portToBind(t: ListenTarget, sharing: PortSharing): Promise<number> {
  if (sharing === 'exclusive') return t.port;
  if (t.port === 0) return freePort(t.host);
  await claimPort(t);
  return t.port;
}

/** Binds a Node `net.Server` (no SO_REUSEPORT) and resolves with the port it got; rejects with PortInUseError or ListenError. */
export function listenTcp(server: net.Server, t: ListenTarget): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(listenError(t, err));
    server.once('error', onError);
    server.listen({ host: t.host, port: t.port, exclusive: true }, () => {
      server.off('error', onError);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}
