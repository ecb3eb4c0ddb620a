/**
 * The composition root: reads config, opens the log, starts the fronts (gateway, replay),
 * and shuts them down in the reverse order. Nothing else wires modules together.
 */
import { LogManager } from '../engine/index.ts';
import { type Auth, createAuth } from './common/auth.ts';
import type { Config } from './common/config.ts';
import type { Logger } from './common/logger.ts';
import { type Front, startGateway } from './gateway/gateway.ts';
import { startReplayServer } from './replay/replay-server.ts';

export interface RunningServer {
  port: number;
  replayPort: number;
  log: LogManager;
  close(): Promise<void>;
}

export function authEnabled(config: Config): boolean {
  return Boolean(config.authSecret || config.authPublicKey);
}

/** Without auth the server keeps to loopback unless told otherwise (wire contract §6). */
export function resolveHost(config: Config): string {
  return config.host ?? (authEnabled(config) ? '0.0.0.0' : '127.0.0.1');
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** What startup says about auth: the key in use and its weaknesses, or that auth is off (a warning beyond loopback). */
export function authStartupLines(auth: Auth | null, host: string): { level: 'info' | 'warn'; msg: string }[] {
  if (auth) return [{ level: 'info', msg: `auth is on: ${auth.description}` }, ...auth.warnings.map((w) => ({ level: 'warn' as const, msg: w }))];
  if (!isLoopback(host)) return [{ level: 'warn', msg: `auth is off and sluice listens on ${host}, beyond loopback: anyone who can reach it can read and write every topic` }];
  return [{ level: 'info', msg: 'auth is off (no --auth-secret or --auth-public-key): every client may do everything' }];
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const host = resolveHost(config);
  // The verifier is built once, before the log is opened, and shared by both fronts: a bad
  // key file stops the server here with a ConfigError naming the file, before any I/O.
  const auth: Auth | null = createAuth(config);
  for (const line of authStartupLines(auth, host)) logger[line.level]({ host }, line.msg);
  const log = await LogManager.open({
    dataDir: config.dataDir,
    flush: config.flush,
    flushMs: config.flushMs,
    segmentBytes: config.segmentBytes,
    segmentMs: config.segmentMs,
    retentionMs: config.retentionMs,
    retentionBytes: config.retentionBytes,
    logger,
  });
  const fronts: Front[] = [];
  try {
    const gateway = await startGateway({ config, host, logger, log, auth });
    fronts.push(gateway);
    const replay = await startReplayServer({ config, host, logger, log, auth });
    fronts.push(replay);
    let closing: Promise<void> | null = null;
    return {
      port: gateway.port,
      replayPort: replay.port,
      log,
      close() {
        closing ??= (async () => {
          for (const f of fronts.reverse()) await f.close().catch((err) => logger.error({ err }, 'front did not close cleanly'));
          await log.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    for (const f of fronts.reverse()) await f.close().catch(() => {});
    await log.close();
    throw err;
  }
}
