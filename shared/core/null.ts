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
import { DirectionState, MATCH_MODES, meanOver, neuronScores, type ConstantMode, type MatchMode, type ModelShape } from './reduce.js';
import { splitBlocks, type Block } from './tile.js';

export interface NullOptions {
  /** Permutations; 0 turns the null off. */
  readonly permutations: number;
  /** Sampled neurons per direction (all of them when a model is smaller). */
  readonly sample: number;
  readonly seed: number;
}

export const DEFAULT_NULL: NullOptions = { permutations: 5, sample: 2000, seed: 1 };

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

export interface NullTile {
  readonly id: number;
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
  readonly tiles: readonly NullTile[];
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

function sampleSide(model: ModelShape, count: number, seed: number, side: Side): SideSample {
  const indices = sampleIndices(model.n, count, createRng(hashString(`sample:${side}`, seed >>> 0)));
  const layers: LayerInfo[] = [];
  let layer = 0;
  indices.forEach((i, at) => {
    while (i >= model.layers[layer]!.start + model.layers[layer]!.count) layer++;
    const source = model.layers[layer]!;
    const last = layers.at(-1);
    if (last !== undefined && last.name === source.name && last.start + last.count === at) {
      layers[layers.length - 1] = { ...last, count: last.count + 1 };
    } else {
      layers.push({ ...source, start: at, count: 1, constant: 0 });
    }
  });
  return { indices, layers };
}

/**
 * The null's tiles: for each permutation and each side, every block of the
 * side's sample against every block of the other model (`cuts`: where the
 * other model's blocks must be cut, as in the main plan). Ids start at `firstId`.
 */
export function planNull(
  f: NullModel,
  g: NullModel,
  options: NullOptions,
  block: number,
  cuts: readonly [readonly number[], readonly number[]],
  firstId = 0,
): NullPlan {
  const samples: [SideSample, SideSample] = [
    sampleSide(f, Math.min(options.sample, f.n), options.seed, 0),
    sampleSide(g, Math.min(options.sample, g.n), options.seed, 1),
  ];
  const perms = Array.from({ length: options.permutations }, (_, k) => probePermutation(options.seed, k, f.probes));
  // Sample blocks are short (a layer's share of the sample), so the other side's blocks are longer than the main
  // run's, up to NULL_ROWS x block, to give each tile enough work to hide its fixed cost.
  const others = [splitBlocks(g.layers, block * NULL_ROWS, cuts[1]), splitBlocks(f.layers, block * NULL_ROWS, cuts[0])];
  const tiles: NullTile[] = [];
  // Other-major: a block of the other model stays packed in the kernel while the few sample blocks pass it.
  for (let k = 0; k < options.permutations; k++) {
    for (const side of [0, 1] as const) {
      const sampleBlocks = chunks(samples[side].indices.length, block);
      for (const other of others[side]!) {
        for (const sample of sampleBlocks) tiles.push({ id: firstId + tiles.length, k, side, sample, other });
      }
    }
  }
  return { options, probes: f.probes, spatial: f.m / f.probes, perms, samples, tiles };
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
 * A null tile runs with the other model's block as the kernel's rows (long,
 * packed once and kept while the sample blocks pass) and the sample block as
 * its columns; the sample's best matches are then the column maxima. A dot
 * product is the same sum in the same order either way round, so nothing
 * changes but speed. This is the kernel key of the row block: the main run's
 * own key for an F block (start + 1), and 2^32 + start + 1 for a G block.
 */
export function nullKey(tile: NullTile): number {
  return (tile.side === 0 ? 2 ** 32 : 0) + tile.other.start + 1;
}

/**
 * A sample block's rows, permuted (π⁻¹ for F's sample, π for G's), into
 * `out`. `row(i)` is neuron i's z row in the side's full model.
 */
export function gatherSample(plan: NullPlan, tile: NullTile, row: (i: number) => Float32Array, out: Float32Array): Float32Array {
  const perm = plan.perms[tile.k]!;
  const { spatial, probes } = plan;
  const m = probes * spatial;
  // source[t] = the probe whose values land at probe t.
  const source = tile.side === 1 ? perm : inverse(perm);
  for (let r = 0; r < tile.sample.count; r++) {
    const z = row(plan.samples[tile.side].indices[tile.sample.start + r]!);
    const to = out.subarray(r * m, (r + 1) * m);
    for (let t = 0; t < probes; t++) to.set(z.subarray(source[t]! * spatial, (source[t]! + 1) * spatial), t * spatial);
  }
  return out;
}

function inverse(perm: Uint32Array): Uint32Array {
  const inv = new Uint32Array(perm.length);
  perm.forEach((p, t) => (inv[p] = t));
  return inv;
}

/** Best matches of every sampled neuron, per permutation and side. */
export class NullReduction {
  /** states[k][side] */
  readonly states: (readonly [DirectionState, DirectionState])[];

  constructor(
    readonly plan: NullPlan,
    readonly f: ModelShape,
    readonly g: ModelShape,
  ) {
    const [sf, sg] = plan.samples;
    this.states = plan.perms.map(() => [new DirectionState(sf.indices.length), new DirectionState(sg.indices.length)] as const);
  }

  /** Folds in the best matches of a sample block (`bests[i]` for its i-th neuron), layer by layer of the sample. */
  merge(tile: NullTile, bests: Float64Array, args: Uint32Array): void {
    const otherDepth = (tile.side === 0 ? this.g : this.f).layers[tile.other.layer]!.depth;
    const { start, count } = tile.sample;
    for (const layer of this.plan.samples[tile.side].layers) {
      const from = Math.max(start, layer.start);
      const to = Math.min(start + count, layer.start + layer.count);
      if (from >= to) continue;
      const divisor = 1 + Math.abs(layer.depth - otherDepth);
      this.states[tile.k]![tile.side].merge(from, bests.subarray(from - start, to - start), args.subarray(from - start, to - start), divisor);
    }
  }
}

export interface NullStat {
  /** Mean of the K permutation estimates. */
  readonly mean: number;
  /** Spread of the null: sd of the K estimates (the sampling error when K = 1). */
  readonly sd: number;
  /** Standard error of `mean` from sampling neurons (0 when every neuron was used). */
  readonly se: number;
  /** (score - mean) / sqrt(sd² + se²). */
  readonly z: number;
  /** (score - mean) / (1 - mean): 0 at chance, 1 for a perfect match. */
  readonly corrected: number;
}

interface Estimate {
  readonly value: number;
  readonly se: number;
}

/** Mean of S over the sampled neurons in [start, end) of the sample, with its standard error (finite-population corrected). */
function estimate(values: Float64Array, constant: Uint8Array, mode: ConstantMode, start: number, end: number, population: number): Estimate | null {
  const value = meanOver(values, constant, mode, start, end);
  if (Number.isNaN(value)) return null;
  let n = 0;
  let ss = 0;
  for (let i = start; i < end; i++) {
    if (mode === 'exclude' && constant[i] === 1) continue;
    n++;
    ss += (values[i]! - value) ** 2;
  }
  const fpc = population > 1 ? Math.max(0, (population - n) / (population - 1)) : 0;
  return { value, se: n > 1 ? Math.sqrt((ss / (n - 1) / n) * fpc) : 0 };
}

export function nullStat(observed: number, estimates: readonly Estimate[]): NullStat {
  const k = estimates.length;
  const mean = estimates.reduce((s, e) => s + e.value, 0) / k;
  const se = Math.sqrt(estimates.reduce((s, e) => s + e.se * e.se, 0)) / k;
  const sd = k > 1 ? Math.sqrt(estimates.reduce((s, e) => s + (e.value - mean) ** 2, 0) / (k - 1)) : se;
  const spread = Math.sqrt(sd * sd + se * se);
  return {
    mean,
    sd,
    se,
    z: spread > 0 ? (observed - mean) / spread : observed === mean ? 0 : Math.sign(observed - mean) * Infinity,
    corrected: mean < 1 ? (observed - mean) / (1 - mean) : 0,
  };
}

export interface NullScores {
  /** Per permutation, per side: each sampled neuron's S in both modes, and its constant flag. */
  readonly perSide: readonly (readonly [SampleScores, SampleScores])[];
}

export interface SampleScores {
  readonly scores: Record<MatchMode, Float64Array>;
  readonly constant: Uint8Array;
}

/** Each sampled neuron's S under each permutation; constant flags come from the full models. */
export function sampleScores(reduction: NullReduction): NullScores {
  const { plan, f, g } = reduction;
  const perSide = reduction.states.map((states) =>
    ([0, 1] as const).map((side) => {
      const sample = plan.samples[side];
      const self = side === 0 ? f : g;
      const shape: ModelShape = { n: sample.indices.length, layers: sample.layers, constant: Uint8Array.from(sample.indices, (i) => self.constant[i]!) };
      const s = neuronScores(states[side], shape, side === 0 ? g : f);
      return { scores: { paper: s.paper, penalized: s.penalized }, constant: shape.constant };
    }),
  ) as unknown as [SampleScores, SampleScores][];
  return { perSide };
}

export type DirectionNull = Record<'forward' | 'backward' | 'symmetric', NullStat>;

/** The null of each whole-model score, in both modes. `observed[mode]` holds the run's scores. */
export function scoreNulls(
  reduction: NullReduction,
  scores: NullScores,
  mode: ConstantMode,
  observed: Record<MatchMode, { forward: number; backward: number; symmetric: number }>,
): Record<MatchMode, DirectionNull> {
  const populations = [reduction.f.n, reduction.g.n];
  const out = {} as Record<MatchMode, DirectionNull>;
  for (const match of MATCH_MODES) {
    const sides = scores.perSide.map((pair) =>
      pair.map((s, side) => estimate(s.scores[match], s.constant, mode, 0, s.constant.length, populations[side]!) ?? { value: 0, se: 0 }),
    );
    const symmetric = sides.map(([a, b]) => ({ value: (a!.value + b!.value) / 2, se: Math.hypot(a!.se, b!.se) / 2 }));
    out[match] = {
      forward: nullStat(
        observed[match].forward,
        sides.map((s) => s[0]!),
      ),
      backward: nullStat(
        observed[match].backward,
        sides.map((s) => s[1]!),
      ),
      symmetric: nullStat(observed[match].symmetric, symmetric),
    };
  }
  return out;
}

/** The null of one layer's mean S (null when the sample holds none of its neurons). */
export function layerNull(
  reduction: NullReduction,
  scores: NullScores,
  side: Side,
  layerName: string,
  mode: ConstantMode,
  observed: Record<MatchMode, number | null>,
  population: number,
): Record<MatchMode, NullStat | null> {
  const sampleLayer = reduction.plan.samples[side].layers.find((l) => l.name === layerName);
  const out = {} as Record<MatchMode, NullStat | null>;
  for (const match of MATCH_MODES) {
    const value = observed[match];
    const estimates =
      sampleLayer === undefined || value === null
        ? []
        : scores.perSide.map((pair) => {
            const s = pair[side];
            return estimate(s.scores[match], s.constant, mode, sampleLayer.start, sampleLayer.start + sampleLayer.count, population);
          });
    out[match] = value === null || estimates.length === 0 || estimates.some((e) => e === null) ? null : nullStat(value, estimates as Estimate[]);
  }
  return out;
}
