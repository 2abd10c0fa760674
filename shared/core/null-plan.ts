/**
 * The permutation null: what the score would be if the two models' neurons
 * had nothing to do with each other. G's probe order is permuted with a
 * seeded permutation (whole probes: with --conv channels every position of
 * an input moves together), which keeps each model's own structure and
 * destroys only the correspondence. To stay cheap, a seeded sample of each
 * side's neurons is matched against the full other model: each sampled
 * neuron's S is exact, so their mean is an unbiased estimate of the null
 * score, with a standard error from the sample.
 *
 * Under G∘π the forward correlation of F's u and G's v is
 * Σ_t F_u(t) G_v(π(t)) = Σ_s F_u(π⁻¹(s)) G_v(s): a sampled F row is permuted
 * by π⁻¹ and matched against G as it is; a sampled G row is permuted by π and
 * matched against F.
 */
import { createRng, hashString, sampleIndices } from './rng.js';
import type { LayerInfo } from './model.js';
import type { ModelShape } from './reduce.js';
import { splitBlocks, type Block } from '../tiles/index.js';

export interface NullOptions {
  /** Permutations; 0 turns the null off. */
  readonly permutations: number;
  /** Sampled neurons per direction (all of them when a model is smaller). */
  readonly sample: number;
  readonly seed: number;
}

export const DEFAULT_NULL: NullOptions = { permutations: 10, sample: 2000, seed: 1 };

/**
 * Keeps the null's arithmetic under this share of the main job's, unless the
 * sample size was given: its tiles run a little less efficiently than the
 * main ones (short sample blocks), so 8% of the arithmetic is about 10% of
 * the time at 1e5 neurons per model (bench/RESULTS.md, "Chance level").
 */
export const NULL_COST_SHARE = 0.08;
const MIN_AUTO_SAMPLE = 500;
/** Blocks of the other model in null tiles are this many main blocks long. */
export const NULL_ROWS = 4;

/**
 * The sample per direction: as asked when given explicitly; by default the
 * default sample, reduced so that K x sample x (n_F + n_G) stays under 8%
 * of n_F x n_G, but never under 500 (small jobs are cheap either way).
 */
export function nullSample(requested: number | null, permutations: number, nF: number, nG: number): number {
  if (requested !== null) return requested;
  const budget = Math.floor((NULL_COST_SHARE * nF * nG) / (permutations * (nF + nG)));
  return Math.min(DEFAULT_NULL.sample, Math.max(MIN_AUTO_SAMPLE, budget));
}

export interface NullRequest {
  readonly permutations: number;
  readonly sample: number | null;
  readonly seed: number;
}

/** The null's options for a job of nF x nG neurons. */
export function nullOptions(request: NullRequest | undefined, nF: number, nG: number): NullOptions {
  const { permutations, sample, seed } = request ?? { ...DEFAULT_NULL, sample: null };
  return { permutations, seed, sample: nullSample(sample, permutations, nF, nG) };
}

export type Side = 0 | 1; // 0: F's sample against G; 1: G's sample against F.

export interface SideSample {
  /** Sampled neurons, ascending, as indices of the full model. */
  readonly indices: Uint32Array;
  /** The sample as a model of its own: one layer per source layer that has sampled neurons (depth kept). */
  readonly layers: readonly LayerInfo[];
}

/** One piece of the null's work: sampled neurons of one side under permutation k, against a block of the other model. */
export interface NullWork {
  readonly k: number;
  readonly side: Side;
  /** A run of the side's sample (sample space; it may span several of the sample's layers). */
  readonly sample: Block;
  /** A block of the other model (within one layer). */
  readonly other: Block;
}

export interface NullPlan {
  readonly options: NullOptions;
  readonly probes: number;
  /** Samples per probe (m / probes: spatial positions with --conv channels). */
  readonly spatial: number;
  /** perms[k][t]: G's probe t under permutation k is G's original probe perms[k][t]. */
  readonly perms: readonly Uint32Array[];
  readonly samples: readonly [SideSample, SideSample];
  readonly work: readonly NullWork[];
}

export interface NullModel extends ModelShape {
  readonly probes: number;
  readonly m: number;
}

/** Seeded uniform permutation of [0, probes) (Fisher-Yates). */
export function probePermutation(seed: number, k: number, probes: number): Uint32Array {
  const rng = createRng(hashString(`perm:${k}`, seed >>> 0));
  const p = Uint32Array.from({ length: probes }, (_, i) => i);
  for (let i = probes - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/**
 * Sample sizes per layer for `count` of `model.n` neurons: proportional to
 * layer size (largest remainders), and at least two per layer where the
 * count allows, so that every layer's null has a sample and a variance.
 */
export function allocateSample(layers: readonly { readonly count: number }[], n: number, count: number): number[] {
  if (count >= n) return layers.map((l) => l.count);
  const floor = layers.map((l) => Math.min(l.count, count >= 2 * layers.length ? 2 : 0));
  let left = count - floor.reduce((a, b) => a + b, 0);
  const share = layers.map((l, h) => ((l.count - floor[h]!) * left) / Math.max(1, n - floor.reduce((a, b) => a + b, 0)));
  const sizes = share.map((v, h) => floor[h]! + Math.floor(v));
  left = count - sizes.reduce((a, b) => a + b, 0);
  const order = share.map((v, h) => [v - Math.floor(v), h] as const).sort((x, y) => y[0] - x[0] || x[1] - y[1]);
  for (const [, h] of order) {
    if (left === 0) break;
    if (sizes[h]! < layers[h]!.count) {
      sizes[h]!++;
      left--;
    }
  }
  return sizes;
}

/** A stratified sample of `count` neurons: per layer (see allocateSample), each layer's drawn with its own seeded generator. */
function sampleSide(model: ModelShape, count: number, seed: number, side: Side): SideSample {
  const sizes = allocateSample(model.layers, model.n, count);
  const picked: number[] = [];
  const layers: LayerInfo[] = [];
  model.layers.forEach((layer, h) => {
    const size = sizes[h]!;
    if (size === 0) return;
    const local = sampleIndices(layer.count, size, createRng(hashString(`sample:${side}:${h}:${layer.name}`, seed >>> 0)));
    layers.push({ ...layer, start: picked.length, count: size, constant: 0 });
    for (const i of local) picked.push(layer.start + i);
  });
  return { indices: Uint32Array.from(picked), layers };
}

/**
 * The null's work: for each permutation and each side, every block of the
 * side's sample against every block of the other model (`cuts`: where the
 * other model's blocks must be cut, as in the main plan).
 */
export function planNull(f: NullModel, g: NullModel, options: NullOptions, block: number, cuts: readonly [readonly number[], readonly number[]]): NullPlan {
  const samples: [SideSample, SideSample] = [
    sampleSide(f, Math.min(options.sample, f.n), options.seed, 0),
    sampleSide(g, Math.min(options.sample, g.n), options.seed, 1),
  ];
  const perms = Array.from({ length: options.permutations }, (_, k) => probePermutation(options.seed, k, f.probes));
  // Sample blocks are short (a layer's share of the sample), so the other side's blocks are longer than the main
  // run's, up to NULL_ROWS x block, to give each tile enough work to hide its fixed cost.
  const others = [splitBlocks(g.layers, block * NULL_ROWS, cuts[1]), splitBlocks(f.layers, block * NULL_ROWS, cuts[0])];
  const work: NullWork[] = [];
  // Other-major: a block of the other model stays packed in the kernel while the few sample blocks pass it.
  for (let k = 0; k < options.permutations; k++) {
    for (const side of [0, 1] as const) {
      const sampleBlocks = chunks(samples[side].indices.length, block);
      for (const other of others[side]!) {
        for (const sample of sampleBlocks) work.push({ k, side, sample, other });
      }
    }
  }
  return { options, probes: f.probes, spatial: f.m / f.probes, perms, samples, work };
}

/**
 * A sample is cut into runs of at most `block` neurons that may cross its
 * layers (a sample has few neurons per layer; NullReduction.merge applies each
 * layer's depth penalty to its part of a run). `layer` is unused.
 */
function chunks(n: number, block: number): Block[] {
  return Array.from({ length: Math.ceil(n / block) }, (_, i) => ({ layer: 0, start: i * block, count: Math.min(block, n - i * block) }));
}

/**
 * A sample block's rows, permuted (π⁻¹ for F's sample, π for G's), into
 * `out`. `row(i)` is neuron i's z row in the side's full model.
 */
export function gatherSample(plan: NullPlan, tile: Pick<NullWork, 'k' | 'side' | 'sample'>, row: (i: number) => Float32Array, out: Float32Array): Float32Array {
  const perm = plan.perms[tile.k]!;
  const { spatial, probes } = plan;
  const m = probes * spatial;
  // source[t] = the probe whose values land at probe t.
  const source = tile.side === 1 ? perm : inverse(perm);
  for (let r = 0; r < tile.sample.count; r++) {
    const z = row(plan.samples[tile.side].indices[tile.sample.start + r]!);
    const to = out.subarray(r * m, (r + 1) * m);
    for (let t = 0; t < probes; t++) {
      const from = source[t]! * spatial;
      for (let s = 0; s < spatial; s++) to[t * spatial + s] = z[from + s]!;
    }
  }
  return out;
}

function inverse(perm: Uint32Array): Uint32Array {
  const inv = new Uint32Array(perm.length);
  perm.forEach((p, t) => (inv[p] = t));
  return inv;
}
