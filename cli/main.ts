export type { Io } from './io.js';

/** The `neurocorr` command line: flags and environment variables mapped onto the library API, errors onto exit codes (shared/errors.ts). */
import { Command, CommanderError } from 'commander';
import { isOptionError, NeurocorrError } from '../shared/errors.js';
import { addDataCommands, addWorkerCommands } from './commands.js';
import { addExtractCommand } from './extract.js';
import { readEnv, type CliEnv } from './env.js';
import { flagName } from './flags.js';
import { defaultIo, type Io } from './io.js';
import { addScoreCommands } from './score.js';
import { addZooCommand, addZooStoreCommand } from './zoo.js';

function buildProgram(io: Io, env: CliEnv): Command {
  const program = new Command('neurocorr')
    .description('Exact cross-model neuronal correlation between two networks')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(run neurocorr --help for usage)');
  addScoreCommands(program, io, env);
  addZooCommand(program, io, env);
  addZooStoreCommand(program, io, env);
  addWorkerCommands(program, io, env);
  addDataCommands(program, io, env);
  addExtractCommand(program, io, env);
  return program;
}

/** Runs the CLI and returns the exit code. */
export async function main(argv: readonly string[], io: Io = defaultIo, env: CliEnv = readEnv()): Promise<number> {
  const program = buildProgram(io, env);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      if (err.code === 'commander.executeSubCommandAsync') return 0;
      return 2;
    }
    if (err instanceof NeurocorrError) {
      io.stderr(`neurocorr: error: ${err.describe(flagName)}\n`);
      if (env.debug) io.stderr(`${err.stack ?? ''}\n`);
      return err.exitCode;
    }
    // A flag value the library's option checks refused (an empty --job): usage, named by its flag. Any other TypeError is a bug.
    if (isOptionError(err)) {
      io.stderr(`neurocorr: error: ${err.describe(flagName)} (run neurocorr --help for usage)\n`);
      if (env.debug) io.stderr(`${err.stack ?? ''}\n`);
      return 2;
    }
    io.stderr(`neurocorr: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}
