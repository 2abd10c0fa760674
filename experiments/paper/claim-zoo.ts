/**
 * Every ordered pair of one data set and seed's nets, scored by ONE zoo job
 * per setting (neurocorr's library `zoo`, with its permutation null), and
 * the predictors read from its matrix: a net's score against the CNN
 * (Table 3's use) and its mean score against the other MLPs (Table 2's use),
 * raw and corrected. A zoo's folder holds its results store, so a rerun
 * computes no pair again.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { zoo, type ZooPair } from '#dist/index.js';
import { cacheFile, keyOf, log } from './common.js';
import type { ClaimConfig } from './claim-family.js';
import type { SeedRun } from './claim-run.js';
import { CNN } from './nets.js';
import { SETTINGS, type Setting } from './scores.js';
import { mean } from './stats.js';

export const KINDS = ['raw', 'corrected'] as const;
export type Kind = (typeof KINDS)[number];
export const PREDICTORS = ['cnn', 'others'] as const;
export type Predictor = (typeof PREDICTORS)[number];

export interface PairValue {
  readonly raw: number;
  readonly corrected: number;
}

export interface ZooRun {
  readonly setting: Setting['name'];
  readonly out: string;
  /** F → G → the setting's score (its match mode and direction). */
  readonly matrix: Record<string, Record<string, PairValue>>;
  readonly computed: number;
  readonly reused: number;
  /** Each pair's compute time and its size (probes x neurons of F x neurons of G), for the time estimate. */
  readonly pairTimes: readonly (readonly [number, number])[];
  /** The zoo's wall time when it computed its pairs (kept beside its folder), NaN if unknown. */
  readonly wallSeconds: number;
}

/** The setting's value of one zoo pair, as the zoo's report holds it. */
export function pairValue(pair: ZooPair, setting: Setting): PairValue {
  const nul = pair.report.null?.scores[setting.match][setting.direction];
  if (nul === undefined) throw new Error(`zoo pair ${pair.f} ${pair.g}: no null in its report`);
  return { raw: pair.report.scores[setting.match][setting.direction], corrected: nul.corrected };
}

export async function runZoo(run: SeedRun, setting: Setting, c: ClaimConfig): Promise<ZooRun> {
  const models = c.nets.map((n) => ({ name: n.spec.name, path: run.activations[n.spec.name]! }));
  const options = { probes: setting.probes, null: { permutations: c.nullPermutations, seed: 1 } };
  const out = cacheFile(
    'claim-zoo',
    `${run.dataset}-${run.seed}-${setting.name}-${keyOf({ models: models.map((m) => [m.name, m.path.split('/').pop()]), options })}`,
  );
  const { result } = await zoo({
    models,
    out,
    ...(setting.probes !== null ? { probes: setting.probes } : {}),
    null: options.null,
  });
  const wallFile = `${out}.seconds.json`;
  if (result.computed > 0) {
    log(`claim ${run.dataset} seed ${run.seed}: zoo (${setting.name}) computed ${result.computed} pairs in ${result.seconds.toFixed(1)} s`);
    if (result.reused === 0) writeFileSync(wallFile, JSON.stringify({ seconds: result.seconds }));
  }
  const wallSeconds = existsSync(wallFile) ? (JSON.parse(readFileSync(wallFile, 'utf8')) as { seconds: number }).seconds : NaN;
  const matrix: Record<string, Record<string, PairValue>> = {};
  const pairTimes: [number, number][] = [];
  for (const p of result.pairs) {
    (matrix[p.f] ??= {})[p.g] = pairValue(p, setting);
    pairTimes.push([p.report.seconds, p.report.probes * p.report.neurons[0] * p.report.neurons[1]]);
  }
  return { setting: setting.name, out, matrix, computed: result.computed, reused: result.reused, pairTimes, wallSeconds };
}

export const runZoos = async (run: SeedRun, c: ClaimConfig): Promise<ZooRun[]> => {
  const out: ZooRun[] = [];
  for (const s of SETTINGS) out.push(await runZoo(run, s, c));
  return out;
};

/** A net's predictor from a zoo's matrix: its score with the CNN, or its mean score with every other MLP (the net as F). */
export function predictorOf(z: ZooRun, mlps: readonly string[], net: string, p: Predictor, kind: Kind): number {
  const row = z.matrix[net]!;
  if (p === 'cnn') return row[CNN.name]![kind];
  return mean(mlps.filter((m) => m !== net).map((m) => row[m]![kind]));
}
