/** `sluice serve`: runs the server until SIGTERM or SIGINT, then shuts down cleanly. */
import type { Command } from 'commander';
import { CONFIG_KEYS, ConfigError, flagName, loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';

export function registerServe(program: Command): void {
  const cmd = program.command('serve').description('run the sluice server');
  for (const key of CONFIG_KEYS) cmd.option(`--${flagName(key)} <value>`);
  cmd.option('--config <file>', 'JSON config file (flags and SLUICE_* env vars override it)');
  cmd.action(async (opts: Record<string, unknown>) => {
    let config;
    try {
      config = loadConfig(opts);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`sluice: ${err.message}\n`);
        process.exit(2);
      }
      throw err;
    }
    const logger = createLogger(config.logLevel);
    let server;
    try {
      // Loaded here so that the everyday subcommands do not pay for uWS and the engine.
      const { startServer } = await import('../server.ts');
      server = await startServer(config, logger);
    } catch (err) {
      if (err instanceof ConfigError) {
        // A bad key file: a configuration problem, reported like one.
        logger.flush();
        process.stderr.write(`sluice: ${err.message}\n`);
        process.exit(2);
      }
      logger.fatal({ err }, 'sluice could not start');
      logger.flush();
      process.stderr.write(`sluice: ${(err as Error).message}\n`);
      process.exit(1);
    }
    // Handlers first: whoever reads the listening line may send SIGTERM at once.
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      server
        .close()
        .then(() => {
          logger.info('stopped');
          logger.flush();
          process.exit(0);
        })
        .catch((err) => {
          logger.error({ err }, 'shutdown failed');
          logger.flush();
          process.exit(1);
        });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.stdout.write(`${JSON.stringify({ event: 'listening', port: server.port, replayPort: server.replayPort })}\n`);
    logger.info({ port: server.port, replayPort: server.replayPort, dataDir: config.dataDir, flush: config.flush }, 'listening');
  });
}
