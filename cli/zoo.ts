/** `neurocorr zoo`: flags mapped onto the library's ZooOptions. */
import type { Command } from 'commander';
import type { ZooOptions } from '../zoo/options.js';
import { UsageError } from '../shared/errors.js';
import type { CliEnv } from './env.js';
import type { Io } from './io.js';
import { runOptions, type RunFlags } from './score.js';
import { addOptions } from './table.js';
import { cleanOnSignals } from './signals.js';

interface ZooFlags extends RunFlags {
  out: string;
  store?: string;
  storeWait: number;
}

async function runZoo(args: readonly string[], flags: ZooFlags, io: Io, env: CliEnv): Promise<void> {
  const { isZooFile, entriesFromArgs } = await import('../zoo/zoo-file.js');
  const fromFile = args.length === 1 && isZooFile(args[0]!);
  if (args.length === 1 && !fromFile) throw new UsageError(`give a zoo file (.json) or at least two activation sets; got only ${args[0]!}`);
  const options: ZooOptions = {
    ...runOptions(flags, io, env, false),
    ...(fromFile ? { zoo: args[0]! } : { models: entriesFromArgs(args).map(({ name, path }) => ({ name, path })) }),
    out: flags.out,
    ...(flags.store !== undefined ? { store: flags.store } : {}),
    storeWait: flags.storeWait,
  };
  const { zoo } = await import('../zoo/zoo.js');
  const { result, summary } = await zoo(options);
  io.stdout(flags.json ? `${JSON.stringify({ ...result, pairs: result.pairs.map(({ f, g, reused }) => ({ f, g, reused })) }, null, 2)}\n` : `${summary}\n`);
}

export function addZooCommand(program: Command, io: Io, env: CliEnv): void {
  addOptions(
    program
      .command('zoo')
      .description(
        'every ordered pair of a set of models as one job, incrementally: a zoo file ({"models": [{"name", "path" or "model", "tags"?}], "extract"?: {...}}: models are extracted by the zoo) or the activation sets themselves (name=path or path)',
      )
      .argument('<zoo-or-sets...>', 'a zoo file (.json), or two or more activation sets'),
    'zoo',
    env,
  ).action(async (args: string[], flags: ZooFlags) => cleanOnSignals(() => runZoo(args, flags, io, env)));
}

/** `neurocorr zoo-store export|import`: a results store's pairs as a portable JSON Lines file, and back. */
export function addZooStoreCommand(program: Command, io: Io, env: CliEnv): void {
  const store = program.command('zoo-store').description("a zoo's results store: export its pairs to a JSON Lines file, or import such a file");
  store
    .command('export')
    .description('write every stored pair (its key and report) to FILE, atomically')
    .argument('<store>', 'the results store (DIR/zoo.sqlite by default)')
    .argument('<file>', 'the export file to write')
    .action(async (path: string, file: string) => {
      const { ZooStore } = await import('../zoo/store.js');
      const opened = await ZooStore.open(path, { writer: false });
      try {
        io.stdout(`${file}: ${opened.export(file)} pairs from ${path}\n`);
      } finally {
        opened.close();
      }
    });
  addOptions(
    store
      .command('import')
      .description('add the pairs of an export FILE to a store (created if missing); pairs it holds already keep their reports')
      .argument('<store>', 'the results store')
      .argument('<file>', 'an export file'),
    'zoo-store import',
    env,
  ).action(async (path: string, file: string, flags: { storeWait: number }) => {
    const { importExport } = await import('../zoo/store.js');
    const { added, kept } = await importExport(path, file, flags.storeWait * 1000);
    io.stdout(`${path}: ${added} pairs added, ${kept} already there\n`);
  });
}
