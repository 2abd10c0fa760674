/** The permutation null's statistics: the null's mean, spread and standard error, z-scores and chance-corrected scores. */
import type { Side } from './null-plan.js';
import type { NullReduction } from './null-reduction.js';
import { MATCH_MODES, meanOver, neuronScores, type ConstantMode, type MatchMode, type ModelShape } from './reduce.js';

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
