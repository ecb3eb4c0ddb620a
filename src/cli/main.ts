/** The `sluice` command line: one subcommand per file, registered here. */
import { Command } from 'commander';
import { registerServe } from './serve.ts';
import { registerToken } from './token.ts';

export async function main(argv: string[]): Promise<void> {
  const program = new Command('sluice').description('real-time pub/sub gateway over a Kafka-format log');
  registerServe(program);
  registerToken(program);
  await program.parseAsync(argv);
}
