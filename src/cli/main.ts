/** The `sluice` command line: one subcommand per file, registered here. */
import { Command } from 'commander';
import { buildInfo } from '../common/build-info.ts';
import { registerConsume } from './consume.ts';
import { registerDump } from './dump.ts';
import { registerHealth } from './health.ts';
import { registerProduce } from './produce.ts';
import { registerReplay } from './replay.ts';
import { registerServe } from './serve.ts';
import { registerToken } from './token.ts';
import { registerTopics } from './topics.ts';

export async function main(argv: string[]): Promise<void> {
  const { version, commit, compiled } = buildInfo();
  const program = new Command('sluice').description('real-time pub/sub gateway over a Kafka-format log');
  // `--version` prints the version alone (scripts compare it); `version` adds the build.
  program.version(version, '-V, --version', 'print the version');
  // Bad usage exits 2 with the message on stderr (commander's own default is 1).
  program.exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : 2);
  });
  registerServe(program);
  registerProduce(program);
  registerConsume(program);
  registerReplay(program);
  registerDump(program);
  registerTopics(program);
  registerToken(program);
  registerHealth(program);
  program
    .command('version')
    .description('print the version, the commit it was built from and the Node.js that runs it')
    .action(() => {
      process.stdout.write(`sluice ${version} (commit ${commit}, Node ${process.version}, ${compiled ? 'compiled build' : 'TypeScript sources'})\n`);
    });
  await program.parseAsync(argv);
}
