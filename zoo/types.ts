/**
 * The zoo's data contract: what a zoo run produces (every ordered pair's
 * single-pair report), what the results store keeps, and what the outputs
 * (matrix files, heatmaps, report.html) are drawn from.
 */
import type { MatchMode, Report } from '../shared/core/index.js';

/** One model of the zoo, as the zoo file (or the command line) names it. */
export interface ZooModel {
  /** Unique within the zoo: letters, digits, `.`, `_`, `-` (it names files and rows). */
  readonly name: string;
  /** The activation set: an npy folder, a .safetensors file or a shard set (for a model entry, its extracted set in the zoo's folder). */
  readonly path: string;
  /** A model entry's model file, which the zoo extracted to `path`; absent for an activation set entry. */
  readonly model?: string;
  readonly tags: readonly string[];
  /** The content key of the activation set (content-key.ts): equal keys mean equal activations. */
  readonly key: string;
  readonly probes: number;
  /** The probe fingerprint the set declares, or null. */
  readonly fingerprint: string | null;
  readonly neurons: number;
}

/** One ordered pair: rows (forward) are F, columns G. The diagonal (F = G) is included. */
export interface ZooPair {
  readonly f: string;
  readonly g: string;
  /** Exactly what `neurocorr score F G --json` with the zoo's options reports, bit for bit in scores and null. */
  readonly report: Report;
  /** Taken from the results store rather than computed in this run. */
  readonly reused: boolean;
}

export interface ZooResult {
  readonly version: 1;
  readonly models: readonly ZooModel[];
  /** Every ordered pair, F-major in model order (K x K entries). */
  readonly pairs: readonly ZooPair[];
  /** The headline match mode: the heatmaps and the ordering use its forward scores (row F, column G). */
  readonly match: MatchMode;
  /** The options that change a score, as the store keys them (canonical JSON object). */
  readonly options: Readonly<Record<string, unknown>>;
  readonly computed: number;
  readonly reused: number;
  readonly seconds: number;
  /** With model entries: models extracted in this run, extracted sets reused, and the models left out (their entries' names). */
  readonly extraction?: ZooExtractionCounts;
}

export interface ZooExtractionCounts {
  readonly extracted: number;
  readonly reused: number;
  readonly failed: readonly string[];
}
