/** `neurocorr extract MODEL`: flags mapped onto the library's `extract` and `listLayers`. */
import type { Command } from 'commander';
import { UsageError } from '../shared/errors.js';
import type { CliEnv } from './env.js';
import type { Io } from './io.js';
import { addOptions } from './table.js';
import { cleanOnSignals } from './signals.js';

interface ExtractFlags {
  probes?: string;
  out?: string;
  listLayers?: boolean;
  layers?: string[];
  size?: number;
  preprocess?: 'caffe' | 'torch' | 'tf' | 'unit' | 'none';
  probesLimit?: number;
  batch: number;
  threads?: number;
  shards?: boolean;
  memory?: number;
  force?: boolean;
  progress: boolean;
}

const shape = (s: readonly (number | null)[]): string => `[${s.map((d) => d ?? '?').join(', ')}]`;

/** The `--list-layers` table: name, kind, one probe's shape (and layout), neurons, and whether it is a block output. */
export function layerTable(listing: {
  model: string;
  format: string;
  input: { name: string; shape: readonly (number | null)[]; layout: string | null };
  layers: readonly { name: string; kind: string; shape: readonly (number | null)[]; layout: string | null; block: boolean }[];
}): string {
  const { input } = listing;
  const rows = listing.layers.map((l) => [
    l.name,
    l.kind,
    `${shape(l.shape)}${l.layout !== null ? ` ${l.layout}` : ''}`,
    l.shape.some((d) => d === null) ? '?' : String(l.shape.reduce<number>((a, b) => a * b!, 1)),
    l.block ? 'block' : '',
  ]);
  const all = [['layer', 'kind', 'shape (per probe)', 'neurons', 'block'], ...rows];
  const widths = all[0]!.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  const lines = all.map((r) =>
    r
      .map((cell, c) => (c === 3 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd(),
  );
  const blocks = listing.layers.filter((l) => l.block).length;
  return [
    `${listing.model}: ${listing.format}, input ${input.name} ${shape(input.shape)}${input.layout !== null ? ` ${input.layout}` : ''}`,
    ...lines,
    `${listing.layers.length} layers, ${blocks} block outputs (extracted when --layers is not given)`,
    '',
  ].join('\n');
}

export function addExtractCommand(program: Command, io: Io, env: CliEnv): void {
  addOptions(
    program
      .command('extract')
      .description("run a model (TensorFlow.js model.json, or .onnx) on probes and write its layers' activations as an activation set")
      .argument('<MODEL>', 'a TensorFlow.js model.json (layers-model or graph-model; or its folder), or an .onnx file'),
    'extract',
    env,
  ).action(async (model: string, flags: ExtractFlags) =>
    cleanOnSignals(async () => {
      const { extract, listLayers } = await import('../extract/extract.js');
      if (flags.listLayers === true) {
        io.stdout(layerTable(await listLayers({ model })));
        return;
      }
      if (flags.probes === undefined || flags.out === undefined) {
        throw new UsageError('extract needs --probes PROBES and --out DIR (or --list-layers)');
      }
      const { createProgress } = await import('../coordinator/progress.js');
      const shown: { bar?: ReturnType<typeof createProgress> } = {};
      const started = performance.now();
      const result = await extract({
        model,
        probes: flags.probes,
        out: flags.out,
        ...(flags.layers !== undefined ? { layers: flags.layers } : {}),
        ...(flags.size !== undefined ? { size: flags.size } : {}),
        ...(flags.preprocess !== undefined ? { preprocess: flags.preprocess } : {}),
        ...(flags.probesLimit !== undefined ? { probesLimit: flags.probesLimit } : {}),
        batch: flags.batch,
        ...(flags.threads !== undefined ? { threads: flags.threads } : {}),
        shards: flags.shards === true,
        ...(flags.memory !== undefined ? { memory: flags.memory } : {}),
        force: flags.force === true,
        nativeStandardize: !env.jsStandardize,
        ...(env.nativeAddon !== undefined ? { addon: env.nativeAddon } : {}),
        progress: (done, total) => {
          shown.bar ??= createProgress({ total, pairsPerUnit: 1, label: 'probes', enabled: flags.progress, rate: (r) => `${r.toFixed(1)} probes/s` });
          shown.bar.update(done);
        },
        log: (line) => io.stderr(`${line}\n`),
      });
      shown.bar?.finish();
      const seconds = (performance.now() - started) / 1000;
      const what = result.shards !== null ? `, ${result.shards} shards` : '';
      io.stdout(
        `${flags.out}: ${result.format}, ${result.layers.length} layers, ${result.neurons} neurons, ${result.probes} probes, ${(result.bytes / 2 ** 20).toFixed(1)} MiB${what} in ${seconds.toFixed(1)} s\n`,
      );
    }),
  );
}
