/** `sluice serve`: runs the server until SIGTERM or SIGINT, then shuts down cleanly. */
import type { Command } from 'commander';
import { CONFIG_HELP, CONFIG_KEYS, ConfigError, configChoices, envName, flagName, loadConfig } from '../common/config.ts';
import { createLogger } from '../common/logger.ts';

/** A default as `serve --help` shows it: sizes in KiB/MiB/GiB too. */
function showDefault(key: string, value: unknown): string {
  if (typeof value === 'number' && key.endsWith('Bytes') && value >= 1024) {
    const units = ['KiB', 'MiB', 'GiB'];
    let v = value / 1024;
    let u = 0;
    while (v >= 1024 && u < units.length - 1) (v /= 1024), u++;
    return `${value} = ${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`;
  }
  return Array.isArray(value) ? value.join(',') : String(value);
}

export function registerServe(program: Command): void {
  const cmd = program
    .command('serve')
    .description('run the sluice server. Every flag can also come from $SLUICE_<NAME> (e.g. SLUICE_DATA_DIR) or a --config JSON file; flags > environment > file > defaults')
    .helpOption('-h, --help', 'describe every flag');
  for (const key of CONFIG_KEYS) {
    const [arg, help] = CONFIG_HELP[key];
    const { default: dflt, choices } = configChoices(key);
    const notes = [
      choices ? `one of ${choices.join(', ')}` : '',
      dflt !== undefined && !(Array.isArray(dflt) && dflt.length === 0) ? `default ${showDefault(key, dflt)}` : '',
      `$${envName(key)}`,
    ].filter(Boolean);
    cmd.option(`--${flagName(key)} <${arg}>`, `${help} (${notes.join('; ')})`);
  }
  cmd.option('--config <file>', 'JSON config file with any of the settings above by their camelCase names (flags and SLUICE_* variables override it) ($SLUICE_CONFIG)');
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
    process.stdout.write(`${JSON.stringify({ event: 'listening', port: server.port, replayPort: server.replayPort, kafkaPort: server.kafkaPort })}\n`);
    logger.info({ port: server.port, replayPort: server.replayPort, kafkaPort: server.kafkaPort, dataDir: config.dataDir, flush: config.flush }, 'listening');
  });
}
