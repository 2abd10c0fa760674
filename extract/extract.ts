/**
 * `neurocorr extract MODEL --probes PROBES --out DIR`: runs a model on a
 * probe set and writes the chosen layers' activations as an activation set
 * (a .npy folder with layers.json), or, with `shards`, as a shard set (the
 * .npy folder is written to the temp directory first, then `prepare` streams
 * it into shards). Either appears whole at `out` or not at all.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UsageError, InputError } from '../shared/errors.js';
import { checkOutputSet, collectGarbage, readJsonObject, replaceDirectory, MANIFEST } from '../shared/formats/index.js';
import { dropTemp, tempPath } from '../shared/temp.js';
import { func, isObject, knownKeys, optional, string, stringList } from '../shared/validate.js';
import { bool, maybeChoice, maybeNum, maybeStr, num, OPTIONS as O } from '../shared/options/index.js';
import { prepareAsync } from '../prepare/prepare.js';
import { checkFeedOptions, planFeed } from './feed.js';
import { openModel } from './open.js';
import { EXTRACT_FORMAT, EXTRACT_MARKER, EXTRACT_SET, extractOwnership, hashFiles, LayerFiles } from './output.js';
import type { Preprocess } from './pixels.js';
import { openProbes, probeKind } from './probes.js';
import type { ModelFormat, ModelInputInfo, ModelLayerInfo } from './runner.js';
import { selectLayers } from './select.js';
import { batchSize, checkModelShapes } from './shapes.js';
import { defaultThreads } from '../worker/pool.js';
import { runBatches } from './batches.js';

export interface ExtractOptions {
  /** A tfjs model.json (or its folder), or an .onnx file. */
  readonly model: string;
  /** A folder of JPEG/PNG images, an IDX image file (.gz allowed), or a .npy of model inputs [M, ...]. */
  readonly probes: string;
  /** The new output directory. */
  readonly out: string;
  /** Layer names, globs (`activation_*`) or `/regex/`es (default: the model's block outputs). */
  readonly layers?: readonly string[];
  /** Image side where the model leaves its input size open (default: the model's size, else the images' own). */
  readonly size?: number;
  /** Image preprocessing; needed for images and IDX files, refused for a .npy. */
  readonly preprocess?: Preprocess;
  /** Only the first K probes. */
  readonly probesLimit?: number;
  /** Probes run at once (default 16); memory holds one batch's activations per thread. */
  readonly batch?: number;
  /**
   * Threads running the model (default: one per core): ONNX Runtime's
   * intra-op threads; for a TensorFlow.js model, one backend and one copy of
   * the model per thread, each running whole batches. The output is the same,
   * bit for bit, whatever the threads.
   */
  readonly threads?: number;
  /** Write a shard set (prepare's, `--conv units`) instead of a .npy folder. */
  readonly shards?: boolean;
  /** With `shards`: prepare's memory budget in bytes (default 2 GiB). */
  readonly memory?: number;
  /** Replace `out` if extract wrote it (its extract.json says so, and it holds nothing else). */
  readonly force?: boolean;
  /** With `shards`: standardize with the native loops where the addon loads (default true). */
  readonly nativeStandardize?: boolean;
  /** With `shards`: the native addon's path. */
  readonly addon?: string;
  /** Called after each batch with the probes done and M. */
  readonly progress?: (done: number, total: number) => void;
  /** Where notes go (default: nowhere). */
  readonly log?: (line: string) => void;
}

const KEYS = [
  'model',
  'probes',
  'out',
  'layers',
  'size',
  'preprocess',
  'probesLimit',
  'batch',
  'threads',
  'shards',
  'memory',
  'force',
  'nativeStandardize',
  'addon',
  'progress',
  'log',
] as const;

export interface ExtractResult {
  readonly format: ModelFormat;
  readonly probes: number;
  readonly fingerprint: string;
  readonly layers: readonly { readonly name: string; readonly shape: readonly number[]; readonly neurons: number }[];
  readonly neurons: number;
  /** Bytes of activations written (float32). */
  readonly bytes: number;
  /** Shards written, with `shards`; else null. */
  readonly shards: number | null;
  /** Threads the model ran on: ONNX Runtime's; for TensorFlow.js, the backends in the pool (1: the main thread's). */
  readonly threads: number;
}

/** Bytes of batch arrays after which extract runs a full garbage collection. */
const GC_BYTES = 8 * 1024 * 1024;

/** The name the model's files go by: a .onnx file's stem, or the folder holding model.json. */
function modelName(file: string): string {
  const name = file.toLowerCase().endsWith('.onnx') ? basename(file).slice(0, -'.onnx'.length) : basename(dirname(file));
  return name.replace(/[^A-Za-z0-9._-]+/g, '_') || 'model';
}

export async function extract(options: ExtractOptions): Promise<ExtractResult> {
  const o = isObject('', options);
  knownKeys('', o, KEYS);
  const model = string('model', o['model']);
  const probesPath = string('probes', o['probes']);
  const out = string('out', o['out']);
  const entries = optional<string[] | null>(o['layers'], (v) => stringList('layers', v), null);
  const size = maybeNum(O.size, o['size']);
  const preprocess: Preprocess | null = maybeChoice(O.preprocess, o['preprocess']);
  const limit = maybeNum(O.probesLimit, o['probesLimit']);
  const batch = num(O.batch, o['batch']);
  const threads = maybeNum(O.extractThreads, o['threads']) ?? defaultThreads();
  const shards = bool(O.shards, o['shards']);
  const memory = maybeNum(O.extractMemory, o['memory']);
  const force = bool(O.extractForce, o['force']);
  const nativeStandardize = bool(O.nativeStandardize, o['nativeStandardize']);
  const addon = maybeStr(O.addon, o['addon']);
  const progress = optional(
    o['progress'],
    (v) => func<(done: number, total: number) => void>('progress', v),
    () => undefined,
  );
  const log = optional(
    o['log'],
    (v) => func<(line: string) => void>('log', v),
    () => undefined,
  );
  if (memory !== null && !shards) throw new UsageError((n) => `${n('memory')} is the shard writer's budget: it needs ${n('shards')}`);

  const target = { inputs: [model, probesPath], force, what: EXTRACT_SET, owned: extractOwnership };
  checkOutputSet(out, target);
  checkFeedOptions(probeKind(probesPath), size, preprocess);
  const opened = await openModel(model, log, { threads });
  const { runner } = opened;
  let resolvedWith: readonly number[] | null = null;
  const tmp = tempPath(out);
  try {
    const probes = await openProbes(probesPath, limit);
    const planned = planFeed(probes, runner.input, opened.path, size, preprocess);
    let all = runner.layers;
    let selected = selectLayers(all, entries, opened.path);
    const open = (shape: readonly (number | null)[]) => shape.some((d) => d === null);
    if (runner.resolve !== undefined && (open(runner.input.shape) || selected.some((l) => open(l.shape)))) {
      all = await runner.resolve(planned.shape);
      resolvedWith = planned.shape;
      // Known shapes can make more block outputs (a pool to 1 x 1): choose the default again.
      selected = entries === null ? selectLayers(all, null, opened.path) : selected.map((l) => resolved(all, l, opened.path));
    }
    checkModelShapes(opened.path, { ...runner.input, shape: planned.shape }, all);
    const step = batchSize(batch, [planned.shape, ...selected.map((l) => l.shape)], log);
    const m = probes.names.length;
    rmSync(tmp, { recursive: true, force: true });
    const npyDir = shards ? join(tmp, modelName(opened.path)) : tmp;
    mkdirSync(npyDir, { recursive: true });
    const names = selected.map((l) => l.name);
    const files = new LayerFiles(
      npyDir,
      selected,
      // Depth is the position among the layers written (as for a .npy folder), not in the whole graph: the
      // penalty 1 + |depth(u) - depth(v)| then compares block with block across architectures of different lengths.
      selected.map((_, i) => i),
      m,
      opened.path,
      log,
    );
    let garbage = 0;
    const batches = Math.ceil(m / step);
    const pooled = runner.format !== 'onnx' && threads > 1 && batches > 1;
    const pool = pooled
      ? await (
          await import('./tfjs-pool.js')
        ).startBackends(runner, { model: opened.path, resolve: resolvedWith, names, threads: Math.min(threads, batches), log })
      : null;
    const ran = runner.format === 'onnx' ? threads : (pool?.slots ?? 1);
    try {
      const run = pool ?? { slots: 1, run: async (inputs: Float32Array, count: number) => ({ outs: await runner.run(inputs, count, names), nonFinite: null }) };
      await runBatches(
        m,
        step,
        (start, count) => probes.read(start, count, planned.feed),
        run,
        async ({ outs, nonFinite, count, start, bytes }) => {
          await files.append(outs, count, start, probes.names, nonFinite);
          progress(start + count, m);
          // Each batch's arrays die young, and V8 collects such buffers lazily: without a full collection
          // now and then, RSS climbs with M by tens of MiB.
          garbage += bytes;
          if (garbage > GC_BYTES) {
            collectGarbage();
            garbage = 0;
          }
        },
      );
    } finally {
      files.close();
      await pool?.destroy();
    }
    writeFileSync(join(npyDir, 'layers.json'), files.layersJson(probes.fingerprint));
    const layers = files.files.map((l) => ({ name: l.name, shape: l.shape, neurons: l.shape.reduce((a, b) => a * b, 1) }));
    const neurons = layers.reduce((sum, l) => sum + l.neurons, 0);

    let setDir = npyDir;
    let written: string[] = ['layers.json', ...files.files.map((l) => l.file)];
    let shardCount: number | null = null;
    if (shards) {
      setDir = join(tmp, 'shards');
      const result = await prepareAsync({
        input: npyDir,
        out: setDir,
        ...(memory !== null ? { memory } : {}),
        nativeStandardize,
        ...(addon !== null ? { addon } : {}),
        log,
      });
      shardCount = result.shards;
      written = [MANIFEST, ...shardFiles(join(setDir, MANIFEST))];
    }
    const marker = {
      format: EXTRACT_FORMAT,
      version: 1,
      model: { path: model, file: opened.path, format: runner.format, sha256: hashFiles(opened.files) },
      input: { name: runner.input.name, shape: planned.shape, layout: inputLayout(runner.input, planned.shape) },
      probes: { path: probesPath, kind: probes.kind, count: m, fingerprint: probes.fingerprint, names: probes.names },
      settings: { size: planned.size, preprocess: planned.preprocess, layers: entries, probesLimit: limit, batch },
      layers: files.files.map((l) => ({ name: l.name, kind: l.kind, depth: l.depth, shape: l.shape, layout: l.layout, ...(shards ? {} : { file: l.file }) })),
      output: shards ? 'shards' : 'npy',
      files: written,
    };
    writeFileSync(join(setDir, EXTRACT_MARKER), `${JSON.stringify(marker, null, 1)}\n`);
    // What is at `out` may have changed during the run.
    checkOutputSet(out, target);
    replaceDirectory(setDir, out);
    return { format: runner.format, probes: m, fingerprint: probes.fingerprint, layers, neurons, bytes: neurons * m * 4, shards: shardCount, threads: ran };
  } finally {
    dropTemp(tmp);
    await runner.dispose();
  }
}

/** `layer` as `resolve` gave it; a layer `resolve` left out gives no float32 row per probe. */
function resolved(all: readonly ModelLayerInfo[], layer: ModelLayerInfo, model: string): ModelLayerInfo {
  const found = all.find((l) => l.name === layer.name);
  if (found === undefined) {
    throw new InputError(
      'E_INPUT_SHAPE',
      model,
      `layer "${layer.name}" gives no float32 activation per probe`,
      'choose other layers (--list-layers shows them)',
    );
  }
  return found;
}

function inputLayout(input: ModelInputInfo, shape: readonly number[]): string | null {
  return shape.length === 3 ? input.layout : null;
}

function shardFiles(manifest: string): string[] {
  const shards = readJsonObject(manifest)?.['shards'];
  return Array.isArray(shards) ? shards.map((s: { file: string }) => s.file) : [];
}

export interface LayerListing {
  readonly model: string;
  readonly format: ModelFormat;
  readonly input: ModelInputInfo;
  readonly layers: readonly ModelLayerInfo[];
}

/** The model's input and selectable layers, in graph order (a dimension only a run can tell is null). */
export async function listLayers(options: { readonly model: string }): Promise<LayerListing> {
  const o = isObject('', options);
  knownKeys('', o, ['model']);
  const model = string('model', o['model']);
  const { runner, path } = await openModel(model);
  try {
    return { model: path, format: runner.format, input: runner.input, layers: runner.layers };
  } finally {
    await runner.dispose();
  }
}
