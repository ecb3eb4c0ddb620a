/** The `sluice` command line: one subcommand per file, registered here. */
import { Command } from 'commander';
import { registerConsume } from './consume.ts';
import { registerDump } from './dump.ts';
import { registerProduce } from './produce.ts';
import { registerReplay } from './replay.ts';
import { registerServe } from './serve.ts';
import { registerToken } from './token.ts';
import { registerTopics } from './topics.ts';

export async function main(argv: string[]): Promise<void> {
  const program = new Command('sluice').description('real-time pub/sub gateway over a Kafka-format log');
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
  await program.parseAsync(argv);
}
