/**
 * The contract between the composition root (src/server.ts) and a front: the WebSocket and
 * HTTP gateway, the TCP replay server, the Kafka listener. server.ts builds one
 * FrontContext and hands it to every front; a front serves its port from it and gives back
 * a Front that can be closed. Fronts never import each other: what several of them need
 * comes through here.
 */
import type { Log } from '../../engine/log.ts';
import type { Activity } from './activity.ts';
import type { Auth } from './auth.ts';
import type { Config } from './config.ts';
import type { Limits } from './limits.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import type { ThreadShare } from './threads.ts';

export interface FrontContext {
  config: Config;
  /** The address every front binds (resolved from config: loopback without auth). */
  host: string;
  /** The local engine or the cluster log; a front never knows which. */
  log: Log;
  /** The token verifier every front shares; null: auth is off. */
  auth: Auth | null;
  /** One registry for the whole process; each front registers what it reports. */
  metrics: Metrics;
  logger: Logger;
  /**
   * What the operator sees (src/common/activity.ts): each front reports connections opened
   * and closed, error answers with their code, and refused tokens with their reason here,
   * which counts them in `metrics` and logs them (rate-limited).
   */
  activity: Activity;
  /** The configured limits every front enforces the same way. */
  limits: Limits;
  /**
   * Which thread this front runs on and what the threads share (--threads): only the
   * WebSocket front runs on more than one; every other front runs on the log thread.
   */
  threads: ThreadShare;
}

/**
 * A front binds its port through src/common/listen.ts (`listenTcp` for Node's net, the
 * exclusive uWS options for uWS): a port another process holds stops sluice with
 * PortInUseError naming the port and its flag, never a shared port.
 */
export interface Front {
  /** For logs and the listening line: `gateway`, `replay`, `kafka`. */
  readonly name: string;
  /** The port bound (a free one when the config said 0). */
  readonly port: number;
  /**
   * Stops accepting, finishes what is in flight (appends answered, transfers ended at a
   * boundary), closes connections. Called once, in the reverse order of start, before the
   * log is closed.
   */
  close(): Promise<void>;
}

/** How a front is started: from the shared context, resolving once it listens. */
export type StartFront = (ctx: FrontContext) => Promise<Front>;
