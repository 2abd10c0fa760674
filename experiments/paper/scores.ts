/**
 * Scores between nets, computed by neurocorr's library API (`score`) on the
 * nets' activations over the test split, each with its permutation null, in
 * the two settings the report compares:
 * - published: what the published code computes: one direction (F → G),
 *   the argmax of the depth-penalized |r| (`penalized`, constant neurons
 *   S = 0 as its NaN → 0), on the first 10 test images;
 * - corrected: what the text defines: argmax |r|, then the depth penalty,
 *   both directions averaged (`paper`, symmetric), on every test image.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { score } from '#dist/index.js';
import { encodeSafetensors } from '#dist/shared/formats/index.js';

export interface Setting {
  readonly name: 'published' | 'corrected';
  readonly match: 'penalized' | 'paper';
  readonly direction: 'forward' | 'symmetric';
  /** Probes used; null for every test image. */
  readonly probes: number | null;
}

export const SETTINGS: readonly Setting[] = [
  { name: 'published', match: 'penalized', direction: 'forward', probes: 10 },
  { name: 'corrected', match: 'paper', direction: 'symmetric', probes: null },
];

export const NULL_PERMUTATIONS = 10;

export interface PairScore {
  readonly raw: number;
  readonly nullMean: number;
  readonly nullSd: number;
  readonly z: number;
  readonly corrected: number;
  readonly correctedSe: number;
  readonly seconds: number;
  /** Neurons of F and G, and how many of them are constant over the probes (S = 0 in the means). */
  readonly neurons: readonly [number, number];
  readonly constant: readonly [number, number];
}

/** One net's activations as a .safetensors activation set: one tensor per hidden layer, depth = its index. */
export function writeActivationSet(file: string, layers: readonly { shape: [number, number]; data: Float32Array }[]): void {
  const names = layers.map((_, i) => `h${i}`);
  const tensors = layers.map((l, i) => ({ name: names[i]!, shape: l.shape, data: l.data }));
  writeFileSync(file, encodeSafetensors(tensors, { layers: JSON.stringify(names), depths: JSON.stringify(names.map((_, i) => i)) }));
}

/** The score of F against G in `setting`, cached in `cacheFile` (its inputs are in the file name's key). */
export async function scorePair(f: string, g: string, setting: Setting, cacheFile: string): Promise<PairScore> {
  if (existsSync(cacheFile)) return JSON.parse(readFileSync(cacheFile, 'utf8')) as PairScore;
  const { report } = await score({
    f,
    g,
    ...(setting.probes !== null ? { probes: setting.probes } : {}),
    null: { permutations: NULL_PERMUTATIONS, seed: 1 },
  });
  const nul = report.null?.scores[setting.match][setting.direction];
  if (nul === undefined) throw new Error(`score ${f} ${g}: the report has no null`);
  const out: PairScore = {
    raw: report.scores[setting.match][setting.direction],
    nullMean: nul.mean,
    nullSd: nul.sd,
    z: nul.z,
    corrected: nul.corrected,
    correctedSe: nul.correctedSe,
    seconds: report.seconds,
    neurons: report.neurons,
    constant: report.constant,
  };
  writeFileSync(cacheFile, JSON.stringify(out));
  return out;
}
