/** The `neurocorr` command line. Exit codes: 0 ok, 2 bad input or usage, 1 internal failure. */
import { Command, CommanderError, Option } from 'commander';
import { NeurocorrError, UsageError } from '../shared/errors.js';
import { humanSummary } from '../shared/report.js';
import { KERNEL_CHOICES, type KernelChoice } from '../worker/loader.js';
import { integerOption, listOption } from './options.js';
import type { ScoreOptions } from './score.js';

interface ScoreFlags {
  match: 'paper' | 'penalized';
  constant: 'include' | 'exclude';
  conv: 'units' | 'channels';
  layers?: string[];
  layersF?: string[];
  layersG?: string[];
  sample?: number;
  seed: number;
  probes?: number;
  threads?: number;
  tile?: number;
  kernel: KernelChoice;
  json?: boolean;
  out?: string;
  matches?: string;
  progress: boolean;
}

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const defaultIo: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

function buildProgram(io: Io): Command {
  const program = new Command('neurocorr')
    .description('Exact cross-model neuronal correlation between two networks')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(run neurocorr --help for usage)');

  program
    .command('score')
    .description('score two activation sets (a folder of .npy layers or a .safetensors file each)')
    .argument('<F>', 'activation set of model F')
    .argument('<G>', 'activation set of model G')
    .addOption(new Option('--match <mode>', 'match mode for the headline score and --matches').choices(['paper', 'penalized']).default('paper'))
    .addOption(new Option('--constant <mode>', 'constant neurons count in the means, or are dropped').choices(['include', 'exclude']).default('include'))
    .addOption(
      new Option('--conv <mode>', 'conv layers: one neuron per unit (C*H*W), or per channel (samples M*H*W)').choices(['units', 'channels']).default('units'),
    )
    .option('--layers <names>', 'partial: keep only these layers (comma-separated) in both models', listOption('--layers'))
    .option('--layers-f <names>', 'partial: keep only these layers of F', listOption('--layers-f'))
    .option('--layers-g <names>', 'partial: keep only these layers of G', listOption('--layers-g'))
    .option('--sample <n>', 'partial: keep at most n random neurons per layer', integerOption('--sample', 1))
    .option('--seed <s>', 'seed for --sample', integerOption('--seed', 0, 2 ** 32 - 1), 0)
    .option('--probes <k>', 'partial: use only the first k probes', integerOption('--probes', 2))
    .option('--threads <n>', 'worker threads (default: one per core)', integerOption('--threads', 1, 1024))
    .option('--tile <b>', 'neurons per block; a tile is b x b (default: chosen per kernel and M)', integerOption('--tile', 1))
    .addOption(new Option('--kernel <name>', 'tile kernel; auto tries native, tfjs, reference').choices([...KERNEL_CHOICES]).default('auto'))
    .option('--json', 'print the full report as JSON on stdout (nothing else goes to stdout)')
    .option('--out <file>', 'write the full JSON report to a file')
    .option('--matches <file>', "write every neuron's best partner as CSV")
    .option('--no-progress', 'no progress output on stderr')
    .action(async (fPath: string, gPath: string, flags: ScoreFlags) => {
      if (flags.seed !== 0 && flags.sample === undefined) throw new UsageError('--seed only applies with --sample N');
      const { score } = await import('./score.js');
      const options: ScoreOptions = {
        match: flags.match,
        constant: flags.constant,
        conv: flags.conv,
        layers: flags.layers ?? null,
        layersF: flags.layersF ?? null,
        layersG: flags.layersG ?? null,
        sample: flags.sample === undefined ? null : { n: flags.sample, seed: flags.seed },
        probes: flags.probes ?? null,
        kernel: flags.kernel,
        ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
        ...(flags.tile !== undefined ? { tile: flags.tile } : {}),
        out: flags.out ?? null,
        matches: flags.matches ?? null,
        progress: flags.progress,
        log: (line) => io.stderr(`${line}\n`),
      };
      const { report } = await score(fPath, gPath, options);
      io.stdout(flags.json ? `${JSON.stringify(report, null, 2)}\n` : `${humanSummary(report)}\n`);
    });
  return program;
}

/** Runs the CLI and returns the exit code. */
export async function main(argv: readonly string[], io: Io = defaultIo): Promise<number> {
  const program = buildProgram(io);
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
      io.stderr(`neurocorr: error: ${err.message}\n`);
      if (process.env['NEUROCORR_DEBUG']) io.stderr(`${err.stack ?? ''}\n`);
      return err.exitCode;
    }
    io.stderr(`neurocorr: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}
