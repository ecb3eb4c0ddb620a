/**
 * `sluice health`: exit 0 when the server this configuration describes answers
 * `GET /healthz`, 1 otherwise (the reason on stderr). The Docker image's HEALTHCHECK runs it.
 * It reads the port and host the way `serve` does (flags > SLUICE_* variables > --config
 * file > defaults), so the check follows the configured port instead of assuming 8080. A
 * server bound to every address (0.0.0.0, ::) is asked on loopback.
 */
import type { Command } from 'commander';
import { ConfigError, loadConfig } from '../common/config.ts';
import { EXIT_FAILED, EXIT_USAGE, int, warn } from './common.ts';

interface Flags {
  port?: string;
  host?: string;
  config?: string;
  timeoutMs: string;
}

/** The address to ask for a server bound to `host`. */
export function healthHost(host: string | undefined): string {
  if (host === undefined || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

export function registerHealth(program: Command): void {
  program
    .command('health')
    .description("check that the server answers GET /healthz (exit 0) or not (exit 1); reads --port/--host like `serve` ($SLUICE_PORT, $SLUICE_HOST, --config)")
    .option('--port <port>', 'the server\'s --port (default: $SLUICE_PORT, the config file, else 8080)')
    .option('--host <host>', 'the server\'s --host (default: $SLUICE_HOST, else loopback)')
    .option('--config <file>', 'the server\'s JSON config file ($SLUICE_CONFIG)')
    .option('--timeout-ms <ms>', 'how long to wait for the answer', '3000')
    .action(async (flags: Flags) => {
      let port: number;
      let host: string | undefined;
      let timeoutMs: number;
      try {
        timeoutMs = int(flags.timeoutMs, 'timeout-ms', 1)!;
        const config = loadConfig({ port: flags.port, host: flags.host, config: flags.config });
        port = config.port;
        host = config.host;
      } catch (err) {
        warn(err instanceof ConfigError ? err.message : (err as Error).message);
        process.exit(EXIT_USAGE);
      }
      const url = `http://${healthHost(host)}:${port}/healthz`;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
        if (res.ok) process.exit(0);
        warn(`${url} answered ${res.status}`);
      } catch (err) {
        const e = err as Error & { cause?: Error };
        warn(`${url}: ${e.cause?.message ?? e.message}`);
      }
      process.exit(EXIT_FAILED);
    });
}
