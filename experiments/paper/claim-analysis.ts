/**
 * The claim's analysis: the attack sweep and the rule that picks its step
 * size (from degradations only, never from scores), and the correlation table
 * over the nets' seed means with its confidence intervals, permutation and
 * partial tests, Holm's correction and the design's power.
 */
import { bootstrapSpearmanCI, detectableRho, holm, partialSpearman, partialSpearmanP, spearmanPermutationP, type Interval } from './claim-stats.js';
import { predicted, type ClaimConfig } from './claim-family.js';
import type { NetTargets, SeedRun } from './claim-run.js';
import { KINDS, PREDICTORS, predictorOf, type Kind, type Predictor, type ZooRun } from './claim-zoo.js';
import type { DatasetName } from './data.js';
import { SETTINGS } from './scores.js';
import { mean, spearman } from './stats.js';

/** The rule, fixed before any score is read. */
export const SELECTION_RULE = 'per data set, the ε whose mean degradation over every net and seed is nearest 30%; a tie goes to the smaller ε';
export const TARGET_DEGRADATION = 0.3;

export interface Sweep {
  readonly dataset: DatasetName;
  readonly epsilons: readonly number[];
  /** Mean degradation over every net and seed, per ε. */
  readonly mean: readonly number[];
  /** Net → mean over seeds, per ε. */
  readonly perNet: Record<string, readonly number[]>;
  /** The index of the ε the rule picks. */
  readonly chosen: number;
}

/** SELECTION_RULE on the swept step sizes and their mean degradations. */
export function selectEpsilon(epsilons: readonly number[], means: readonly number[]): number {
  let best = -1;
  for (let i = 0; i < epsilons.length; i++) {
    if (!Number.isFinite(means[i]!)) continue;
    if (best < 0) best = i;
    const d = Math.abs(means[i]! - TARGET_DEGRADATION);
    const b = Math.abs(means[best]! - TARGET_DEGRADATION);
    if (d < b || (d === b && epsilons[i]! < epsilons[best]!)) best = i;
  }
  return best;
}

export function sweepOf(dataset: DatasetName, runs: readonly SeedRun[], c: ClaimConfig): Sweep {
  const rs = runs.filter((r) => r.dataset === dataset);
  const perNet = Object.fromEntries(c.nets.map((n) => [n.spec.name, c.epsilons.map((_, e) => mean(rs.map((r) => r.nets[n.spec.name]!.degradation[e]!)))]));
  const means = c.epsilons.map((_, e) => mean(rs.flatMap((r) => c.nets.map((n) => r.nets[n.spec.name]!.degradation[e]!))));
  return { dataset, epsilons: c.epsilons, mean: means, perNet, chosen: selectEpsilon(c.epsilons, means) };
}

export const TARGETS = [
  'degradation (calibrated ε)',
  'degradation (printed ε)',
  'clean accuracy',
  'generalization gap',
  'noise accuracy',
  'blur accuracy',
] as const;
export type Target = (typeof TARGETS)[number];
/** The sign the claim predicts: a better-aligned net degrades less, is more accurate, generalizes better and resists corruption. */
export const CLAIM_SIGN: Record<Target, 1 | -1> = {
  'degradation (calibrated ε)': -1,
  'degradation (printed ε)': -1,
  'clean accuracy': 1,
  'generalization gap': -1,
  'noise accuracy': 1,
  'blur accuracy': 1,
};

export function targetOf(t: NetTargets, target: Target, chosen: number, printed: number): number {
  switch (target) {
    case 'degradation (calibrated ε)':
      return t.degradation[chosen]!;
    case 'degradation (printed ε)':
      return t.degradation[printed]!;
    case 'clean accuracy':
      return t.clean;
    case 'generalization gap':
      return t.gap;
    case 'noise accuracy':
      return t.noise;
    case 'blur accuracy':
      return t.blur;
  }
}

export interface StatRow {
  readonly dataset: DatasetName;
  readonly setting: string;
  readonly predictor: Predictor;
  readonly kind: Kind;
  readonly target: Target;
  readonly n: number;
  /** The predictor and the target per MLP (seed means, in the configuration's order). */
  readonly x: readonly number[];
  readonly y: readonly number[];
  readonly rho: number;
  readonly ci: Interval;
  readonly p: number;
  /** Holm-adjusted over every row's p. */
  readonly pHolm: number;
  /** Controlling for clean accuracy (NaN for clean accuracy itself). */
  readonly partial: number;
  readonly partialP: number;
  readonly partialPHolm: number;
  readonly detectable: number;
}

/** Holm over the finite p-values, NaN kept. */
function holmFinite(ps: readonly number[]): number[] {
  const idx = ps.flatMap((p, i) => (Number.isFinite(p) ? [i] : []));
  const adj = holm(idx.map((i) => ps[i]!));
  const out = ps.map(() => NaN);
  idx.forEach((i, k) => (out[i] = adj[k]!));
  return out;
}

export interface SeedZoos {
  readonly run: SeedRun;
  readonly zoos: readonly ZooRun[];
}

export function statRows(all: readonly SeedZoos[], sweeps: readonly Sweep[], c: ClaimConfig): StatRow[] {
  const mlps = predicted(c).map((n) => n.spec.name);
  const printed = c.epsilons.indexOf(c.printed);
  const rows: Omit<StatRow, 'pHolm' | 'partialPHolm'>[] = [];
  for (const sweep of sweeps) {
    const rs = all.filter((s) => s.run.dataset === sweep.dataset);
    const seedMean = (f: (s: SeedZoos, net: string) => number) => mlps.map((net) => mean(rs.map((s) => f(s, net))));
    const clean = seedMean((s, net) => s.run.nets[net]!.clean);
    for (const setting of SETTINGS)
      for (const predictor of PREDICTORS)
        for (const kind of KINDS) {
          const x = seedMean((s, net) =>
            predictorOf(
              s.zoos.find((z) => z.setting === setting.name)!,
              mlps,
              net,
              predictor,
              kind,
            ),
          );
          for (const target of TARGETS) {
            const y = seedMean((s, net) => targetOf(s.run.nets[net]!, target, sweep.chosen, printed));
            const isClean = target === 'clean accuracy';
            rows.push({
              dataset: sweep.dataset,
              setting: setting.name,
              predictor,
              kind,
              target,
              n: mlps.length,
              x,
              y,
              rho: spearman(x, y),
              ci: bootstrapSpearmanCI(x, y, { resamples: c.bootstrap, seed: 1 }),
              p: spearmanPermutationP(x, y, { permutations: c.permutations, seed: 1 }),
              partial: isClean ? NaN : partialSpearman(x, y, clean),
              partialP: isClean ? NaN : partialSpearmanP(x, y, clean, { permutations: c.permutations, seed: 1 }),
              detectable: detectableRho(mlps.length),
            });
          }
        }
  }
  const pHolm = holmFinite(rows.map((r) => r.p));
  const partialPHolm = holmFinite(rows.map((r) => r.partialP));
  return rows.map((r, i) => ({ ...r, pHolm: pHolm[i]!, partialPHolm: partialPHolm[i]! }));
}
