/**
 * `neurocorr prepare IN OUT`: a .npy folder or .safetensors file -> a shard
 * set. Streams: each shard's neurons are read as column ranges of the probe
 * rows (positioned reads), standardized in float64, and written; memory holds
 * one shard (its z, Arrow's buffers and the encoded file) and one 4 MiB read
 * buffer, whatever the input size.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { loadActivationSet } from '../shared/formats/index.js';
import { UsageError } from '../shared/errors.js';
import { collectGarbage } from '../shared/formats/index.js';
import type { ConvMode, Layout } from '../shared/core/index.js';
import { encodeShard, preloadArrow } from '../shared/formats/index.js';
import { MANIFEST, SHARD_FORMAT, SHARD_VERSION, sha256, type Manifest, type ShardEntry } from '../shared/formats/index.js';
import { channelView, hasMaps, layerGeometry, planModel, standardizeRange } from '../shared/formats/index.js';
import { checkOutputSet, replaceDirectory, shardSetOwnership } from '../shared/formats/index.js';
import { runSteps, runStepsAsync, type Steps } from '../shared/steps.js';
import { dropTemp, tempPath } from '../shared/temp.js';
import { nativeLoops } from '../worker/native/assist.js';
import { func, isObject, knownKeys, optional, string } from '../shared/validate.js';
import { bool, choice, maybeChoice, maybeNum, num, OPTIONS as O, str } from '../shared/options/index.js';

export interface PrepareOptions {
  /** The activation set: a folder of .npy layers or a .safetensors file. */
  readonly input: string;
  /** The new shard-set directory. */
  readonly out: string;
  /** Bytes of shard data held at once (default 2 GiB, at least 16 MiB). */
  readonly memory?: number;
  /** Replace `out` if it is a shard set prepare wrote, holding nothing else (default false). */
  readonly force?: boolean;
  /** Conv semantics of the set (default `units`). */
  readonly conv?: ConvMode;
  /** Channels: the layout of every rank >= 3 layer whose file does not say (default: none; such a layer is refused). */
  readonly layout?: Layout;
  /** Channels: pool every layer's H x W maps to spatial x spatial (default: no pooling). */
  readonly spatial?: number;
  /** At most this many neurons per shard (default: as many as `memory` allows). */
  readonly shardNeurons?: number;
  /** Standardize with the native loops where the addon loads (default true; bit-identical to the TypeScript loops). */
  readonly nativeStandardize?: boolean;
  /** The native addon's path, replacing the build locations under the package root. */
  readonly addon?: string;
  /** Where progress lines go (default: nowhere). */
  readonly log?: (line: string) => void;
}

const PREPARE_KEYS = ['input', 'out', 'memory', 'force', 'conv', 'layout', 'spatial', 'shardNeurons', 'nativeStandardize', 'addon', 'log'] as const;

export interface PrepareResult {
  readonly neurons: number;
  readonly shards: number;
  readonly bytes: number;
}

/** Fixed costs outside the shard buffers: the read buffer and per-neuron float64 sums. */
const FIXED_BYTES = 8 * 1024 * 1024;
export const MIN_MEMORY = 16 * 1024 * 1024;

/** Neurons per shard such that three copies of a shard (z, Arrow's buffers, the encoded file) plus per-neuron state fit the budget. */
export function shardNeurons(memory: number, m: number): number {
  return Math.max(1, Math.floor((memory - FIXED_BYTES) / (3 * m * 4 + 64)));
}

/** The largest prepare `memory` whose shards have at most `neurons` neurons (the inverse of shardNeurons); below MIN_MEMORY when none does. */
export function prepareMemoryFor(neurons: number, m: number): number {
  return FIXED_BYTES + (neurons + 1) * (3 * m * 4 + 64) - 1;
}

/** Turns an activation set into a shard set, streaming within `memory`; the set appears whole at `out`, or not at all. */
export function prepare(options: PrepareOptions): PrepareResult {
  return runSteps(prepareSteps(options));
}

/** As prepare, letting the event loop in between shards, so a signal stops it (and the CLI removes the temp directory). */
export function prepareAsync(options: PrepareOptions): Promise<PrepareResult> {
  return runStepsAsync(prepareSteps(options));
}

const SHARD_SET = 'a shard set written by neurocorr prepare';

function* prepareSteps(options: PrepareOptions): Steps<PrepareResult> {
  const o = isObject('', options);
  knownKeys('', o, PREPARE_KEYS);
  const input = string('input', o['input']);
  const out = string('out', o['out']);
  const memory = num(O.memory, o['memory']);
  const force = bool(O.prepareForce, o['force']);
  const conv = choice(O.conv, o['conv']);
  const layout: Layout | null = maybeChoice(O.layout, o['layout']);
  const side = maybeNum(O.prepareSpatial, o['spatial']);
  if (side !== null && conv !== 'channels') throw new UsageError((n) => `${n('spatial')} pools channels' maps: it needs ${n('conv')} channels`);
  const grid = side === null ? null : { height: side, width: side };
  const maxNeurons = maybeNum(O.shardNeurons, o['shardNeurons']) ?? Number.MAX_SAFE_INTEGER;
  const log = optional(
    o['log'],
    (v) => func<(line: string) => void>('log', v),
    () => undefined,
  );
  const native = {
    disabled: !bool(O.nativeStandardize, o['nativeStandardize']),
    ...(o['addon'] !== undefined ? { addon: str(O.addon, o['addon']) } : {}),
  };
  if (memory < MIN_MEMORY) throw new UsageError((n) => `${n('memory')} ${memory} is below the minimum of ${MIN_MEMORY} bytes (16MiB)`);
  const target = { inputs: [input], force, what: SHARD_SET, owned: shardSetOwnership };
  checkOutputSet(out, target);
  preloadArrow();

  const raw = loadActivationSet(input);
  const plan = planModel(raw, { conv, probes: null, layers: null, sample: null, layout, grid });
  const views = raw.layers.map((layer) => channelView(raw, layer, conv, layout, grid));
  const { m } = plan;
  const probes = raw.layers[0]!.shape[0]!;
  const perShard = Math.min(shardNeurons(memory, m), maxNeurons);
  const loops = nativeLoops(native);
  const z = new Float32Array(Math.min(perShard, plan.n) * m);
  const flags = new Uint8Array(Math.min(perShard, plan.n));

  const tmp = tempPath(out);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const shards: ShardEntry[] = [];
    const layers: Manifest['layers'][number][] = [];
    let start = 0;
    for (const [k, layer] of views.entries()) {
      const count = layerGeometry(layer, conv).neurons;
      let constant = 0;
      for (let j0 = 0; j0 < count; j0 += perShard) {
        const j1 = Math.min(count, j0 + perShard);
        const rows = j1 - j0;
        constant += standardizeRange(layer, conv, probes, j0, j1, z.subarray(0, rows * m), flags.subarray(0, rows), loops);
        const bytes = encodeShard(start + j0, rows, m, z, { 'neurocorr.layer': layer.name });
        const file = `layer${String(k).padStart(4, '0')}-${String(j0 / perShard).padStart(5, '0')}.arrow`;
        writeFileSync(join(tmp, file), bytes);
        shards.push({ file, layer: k, first: start + j0, count: rows, bytes: bytes.length, sha256: sha256(bytes) });
        collectGarbage();
        yield;
      }
      const { shape, layout: known } = raw.layers[k]!;
      const reported = hasMaps(shape) ? (known ?? layout) : null;
      layers.push({ name: layer.name, depth: layer.depth ?? k, shape: shape.slice(1), start, count, total: count, constant, layout: reported });
      log(`prepare: layer ${k + 1}/${raw.layers.length} (${layer.name}, ${count} neurons)`);
      start += count;
    }
    const manifest: Manifest = {
      format: SHARD_FORMAT,
      version: SHARD_VERSION,
      model: basename(resolve(input)),
      probes,
      samples: m,
      fingerprint: raw.fingerprint,
      conv,
      spatial: grid,
      layers,
      shards,
    };
    writeFileSync(join(tmp, MANIFEST), `${JSON.stringify(manifest, null, 1)}\n`);
    yield true;
    // What is at `out` may have changed during the run.
    checkOutputSet(out, target);
    replaceDirectory(tmp, out);
    return { neurons: start, shards: shards.length, bytes: shards.reduce((sum, s) => sum + s.bytes, 0) };
  } finally {
    dropTemp(tmp);
  }
}
