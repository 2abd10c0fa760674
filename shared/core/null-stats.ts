/**
 * The permutation null's statistics: from the sampled neurons' S under each
 * permutation, the null score of each direction and layer, its standard
 * error, z-scores and chance-corrected scores.
 *
 * The estimator (docs/METHOD.md, "Chance level"):
 * - Constant neurons have S = 0 in the run and under every permutation, and
 *   which neurons are constant is known exactly once the run is done: they
 *   add their exact share (0) and none of the sampling error. The sample is
 *   drawn per layer (stratified, see allocateSample) before the values are
 *   read, so constant neurons in it are computed but not used.
 * - Every neuron's observed S is known exactly; its null S is only known on
 *   the sample. The observed S is the control variate of a stratified
 *   regression estimator: each layer's mean null S is the sample's mean plus
 *   b times (the layer's mean observed S - the sample's), with one slope b
 *   fitted within layers over all of them.
 * - The same sample serves every permutation, so the standard error has two
 *   parts: sampling neurons (from the residuals of each neuron's null S
 *   averaged over the permutations, finite-population corrected) and drawing
 *   K permutations (the spread of the K full estimates, over K).
 */
import type { NullReduction } from './null-reduction.js';
import { NORMAL_975, satterthwaite, studentT975 } from './student.js';
import { MATCH_MODES, neuronScores, type ConstantMode, type DirectionScores, type MatchMode, type ModelShape, type NeuronScores } from './reduce.js';

export interface NullStat {
  /** The null score: the expected score of unrelated models with these neurons (estimated). */
  readonly mean: number;
  /** Spread of the null score from one permutation to another (sd of the K estimates). */
  readonly sd: number;
  /**
   * Standard error of `mean`: neuron sampling and the draw of K permutations
   * (0 sampling error when every neuron was used), widened by t(ν)/1.96 so
   * that mean ± 1.96 se is a 95% interval although the variance is estimated
   * from few permutations (ν: Welch-Satterthwaite).
   */
  readonly se: number;
  /** The degrees of freedom ν of that variance estimate (null when it has no estimated part). */
  readonly df: number | null;
  /** (score - mean) / sqrt(sd² + se²). */
  readonly z: number;
  /** (score - mean) / (1 - mean): 0 at chance, 1 for a perfect match. */
  readonly corrected: number;
  /** Standard error of `corrected` (from `se`). */
  readonly correctedSe: number;
}

export type DirectionNull = Record<'forward' | 'backward' | 'symmetric', NullStat>;

/** One direction's null, for the whole model and each of its layers. */
interface SideEstimate {
  readonly value: number;
  /** Variance from sampling neurons, and its degrees of freedom. */
  readonly sampling: number;
  readonly samplingDf: number;
  /** The same estimate under each permutation alone. */
  readonly perPerm: readonly number[];
  readonly layers: readonly ({ readonly value: number; readonly sampling: number; readonly samplingDf: number; readonly perPerm: readonly number[] } | null)[];
}

/** Sum, mean and (n - 1) variance helpers over plain arrays. */
const mean = (xs: readonly number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
const variance = (xs: readonly number[]): number => {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1);
};

/** The smallest within-layer sd of the observed S that the control variate's slope is fitted to. */
const MIN_SPREAD = 1e-6;

/** Below this many sampled neurons, a layer's residual variance is not trusted alone. */
const SMALL_STRATUM = 10;

interface Stratum {
  /** Non-constant neurons of the layer in the model, and the mean observed S over them. */
  readonly size: number;
  readonly observed: number;
  /** Sampled non-constant neurons: observed S, and null S per permutation. */
  readonly x: number[];
  readonly y: number[][];
}

/**
 * The null of one direction: `real` is every neuron's observed S, `self` the
 * model (layers, constant flags), `sample` the sampled neurons' indices and
 * `nulls[k]` their S under permutation k.
 */
function sideEstimate(real: Float64Array, self: ModelShape, sample: Uint32Array, nulls: readonly Float64Array[], mode: ConstantMode): SideEstimate {
  const K = nulls.length;
  const strata: Stratum[] = self.layers.map((layer) => {
    let size = 0;
    let sum = 0;
    for (let i = layer.start; i < layer.start + layer.count; i++) {
      if (self.constant[i] === 1) continue;
      size++;
      sum += real[i]!;
    }
    return { size, observed: size > 0 ? sum / size : 0, x: [], y: Array.from({ length: K }, () => []) };
  });
  let h = 0;
  sample.forEach((i, at) => {
    while (i >= self.layers[h]!.start + self.layers[h]!.count) h++;
    if (self.constant[i] === 1) return;
    const stratum = strata[h]!;
    stratum.x.push(real[i]!);
    for (let k = 0; k < K; k++) stratum.y[k]!.push(nulls[k]![at]!);
  });
  const averaged = (s: Stratum) => s.x.map((_, j) => mean(s.y.map((yk) => yk[j]!)));

  // One slope for all layers, from deviations within each layer.
  let sxy = 0;
  let sxx = 0;
  for (const s of strata) {
    const ybar = averaged(s);
    const mx = mean(s.x);
    const my = mean(ybar);
    s.x.forEach((x, j) => {
      sxy += (x - mx) * (ybar[j]! - my);
      sxx += (x - mx) ** 2;
    });
  }
  // Observed S that differs within layers by float rounding alone (a model against itself: every S is 1
  // to within 1e-7) carries no information, and a slope fitted to that noise can be anything.
  const fitted = strata.reduce((a, s) => a + s.x.length, 0);
  const b = sxx > fitted * MIN_SPREAD ** 2 ? sxy / sxx : 0;
  const residuals = strata.flatMap((s) => averaged(s).map((y, j) => y - b * s.x[j]!));
  const pooledIntercept = mean(residuals);
  const pooledVariance = variance(residuals);

  const denominator = mode === 'include' ? self.n : strata.reduce((a, s) => a + s.size, 0);
  const layerEstimates = strata.map((s) => {
    if (s.size === 0) return null;
    const n = s.x.length;
    const adjust = (ys: readonly number[]) => (n === 0 ? pooledIntercept + b * s.observed : mean(ys) + b * (s.observed - mean(s.x)));
    const ybar = averaged(s);
    const e = ybar.map((y, j) => y - b * s.x[j]!);
    // A layer with few sampled neurons estimates its variance badly (low, more often than not): it borrows the pooled one when that is larger.
    const s2 = n >= SMALL_STRATUM ? variance(e) : Math.max(n >= 2 ? variance(e) : 0, pooledVariance);
    const fpc = Math.max(0, 1 - n / s.size);
    // A layer's variance comes from its own residuals, or the pooled ones when it borrows them.
    const df = n >= SMALL_STRATUM || (n >= 2 && variance(e) >= pooledVariance) ? n - 1 : residuals.length - 2;
    return { value: adjust(ybar), sampling: n === 0 ? s2 : (fpc * s2) / n, samplingDf: Math.max(1, df), perPerm: s.y.map((yk) => adjust(yk)) };
  });
  const weighted = (pick: (l: NonNullable<(typeof layerEstimates)[number]>, h: number) => number) =>
    layerEstimates.reduce((sum, l, h) => (l === null ? sum : sum + (strata[h]!.size / denominator) * pick(l, h)), 0);
  return {
    value: denominator > 0 ? weighted((l) => l.value) : 0,
    sampling: denominator > 0 ? layerEstimates.reduce((sum, l, h) => (l === null ? sum : sum + (strata[h]!.size / denominator) ** 2 * l.sampling), 0) : 0,
    samplingDf: satterthwaite(
      layerEstimates.flatMap((l, h) => (l === null ? [] : [{ variance: (strata[h]!.size / denominator) ** 2 * l.sampling, df: l.samplingDf }])),
    ),
    perPerm: Array.from({ length: K }, (_, k) => (denominator > 0 ? weighted((l) => l.perPerm[k]!) : 0)),
    // A layer's own mean counts its constant neurons (S = 0) unless they are excluded.
    layers: layerEstimates.map((l, h) => {
      if (l === null) return null;
      const layer = self.layers[h]!;
      const share = mode === 'include' ? strata[h]!.size / layer.count : 1;
      return { value: share * l.value, sampling: share * share * l.sampling, samplingDf: l.samplingDf, perPerm: l.perPerm.map((v) => share * v) };
    }),
  };
}

export function nullStat(observed: number, value: number, sampling: { readonly variance: number; readonly df: number }, perPerm: readonly number[]): NullStat {
  const K = perPerm.length;
  const spreadVariance = variance(perPerm);
  const df = satterthwaite([sampling, { variance: spreadVariance / K, df: K - 1 }]);
  const se = Math.sqrt(sampling.variance + spreadVariance / K) * (studentT975(df) / NORMAL_975);
  const sd = Math.sqrt(spreadVariance);
  const spread = Math.sqrt(sd * sd + se * se);
  return {
    mean: value,
    sd,
    se,
    df: Number.isFinite(df) ? df : null,
    z: spread > 0 ? (observed - value) / spread : observed === value ? 0 : Math.sign(observed - value) * Infinity,
    corrected: value < 1 ? (observed - value) / (1 - value) : 0,
    correctedSe: value < 1 ? (se * Math.abs(1 - observed)) / (1 - value) ** 2 : 0,
  };
}

export interface NullInputs {
  readonly reduction: NullReduction;
  /** The full models (layers, constant flags): F, G. */
  readonly models: readonly [ModelShape, ModelShape];
  /** Every neuron's observed S: F's (forward), G's (backward). */
  readonly real: readonly [NeuronScores, NeuronScores];
}

export interface NullResult {
  readonly scores: Record<MatchMode, DirectionNull>;
  /** Per side, per layer of the model, per match mode: the null of the layer's mean S (null when the layer has no neuron to average). */
  readonly layers: readonly [readonly (Record<MatchMode, NullStat> | null)[], readonly (Record<MatchMode, NullStat> | null)[]];
  /** Sampled neurons that were constant (computed, not used), per side. */
  readonly constantSampled: readonly [number, number];
}

/** The null of every score and every layer's mean, in both match modes. */
export function nullStats(
  inputs: NullInputs,
  mode: ConstantMode,
  observed: Record<MatchMode, DirectionScores>,
  layerObserved: readonly [readonly Record<MatchMode, number | null>[], readonly Record<MatchMode, number | null>[]],
): NullResult {
  const { reduction, models, real } = inputs;
  const perSide = ([0, 1] as const).map((side) => {
    const sample = reduction.plan.samples[side];
    const self = models[side];
    const shape: ModelShape = { n: sample.indices.length, layers: sample.layers, constant: Uint8Array.from(sample.indices, (i) => self.constant[i]!) };
    // Each sampled neuron's S under each permutation, against the full other model.
    const perK = reduction.states.map((states) => neuronScores(states[side], shape, models[side === 0 ? 1 : 0]));
    return { sample, self, perK, constantSampled: shape.constant.reduce((a, c) => a + c, 0) };
  });
  const scores = {} as Record<MatchMode, DirectionNull>;
  // layerStats[side][h][match]; a layer with no neuron to average has none.
  const layerStats = ([0, 1] as const).map((side) => models[side].layers.map((): Partial<Record<MatchMode, NullStat>> | null => ({})));
  for (const match of MATCH_MODES) {
    const [f, b] = ([0, 1] as const).map((side) => {
      const d = perSide[side]!;
      return sideEstimate(
        real[side][match],
        d.self,
        d.sample.indices,
        d.perK.map((s) => s[match]),
        mode,
      );
    }) as [SideEstimate, SideEstimate];
    const sym = f.perPerm.map((v, k) => (v + b.perPerm[k]!) / 2);
    scores[match] = {
      forward: nullStat(observed[match].forward, f.value, { variance: f.sampling, df: f.samplingDf }, f.perPerm),
      backward: nullStat(observed[match].backward, b.value, { variance: b.sampling, df: b.samplingDf }, b.perPerm),
      symmetric: nullStat(
        observed[match].symmetric,
        (f.value + b.value) / 2,
        {
          variance: (f.sampling + b.sampling) / 4,
          df: satterthwaite([
            { variance: f.sampling / 4, df: f.samplingDf },
            { variance: b.sampling / 4, df: b.samplingDf },
          ]),
        },
        sym,
      ),
    };
    [f, b].forEach((est, side) => {
      est.layers.forEach((l, h) => {
        const obs = layerObserved[side]![h]![match];
        const row = layerStats[side]![h]!;
        if (l === null || obs === null || row === null) layerStats[side]![h] = null;
        else row[match] = nullStat(obs, l.value, { variance: l.sampling, df: l.samplingDf }, l.perPerm);
      });
    });
  }
  return {
    scores,
    layers: layerStats as unknown as NullResult['layers'],
    constantSampled: [perSide[0]!.constantSampled, perSide[1]!.constantSampled],
  };
}
