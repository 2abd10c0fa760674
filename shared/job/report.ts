/** One report writer for every path: a pair's report from the job's reduction, and the output files written whole or not at all. */
import { buildReport, matchesCsv, type MatchMode, type Report, type RunInfo, type Scored } from '../core/index.js';
import { checkOutputPath, writeAtomic } from '../formats/index.js';
import type { JobProgress } from './progress.js';

export type PairRunInfo = Omit<RunInfo, 'null'> & {
  /** Compute seconds of the null's tiles, summed over threads and workers. */
  readonly nullSeconds: number;
};

/** The report of pair `index`: models with the constant flags its results reported, the reduction, and its null. */
export function pairReport(progress: JobProgress, index: number, run: PairRunInfo): Scored {
  const pair = progress.plan.pairs[index]!;
  const state = progress.pairs[index]!;
  const nullTiles = progress.plan.tiles.filter((t) => t.kind === 'null' && t.pair === index).length;
  const { nullSeconds, ...info } = run;
  return buildReport(progress.model(pair.f), progress.model(pair.g), state.reduction, {
    ...info,
    null: state.nulls === null ? null : { reduction: state.nulls, tiles: nullTiles, seconds: nullSeconds },
  });
}

export interface OutputOptions {
  /** The full JSON report. */
  readonly out: string | null;
  /** Every neuron's best partner as CSV, under `match`. */
  readonly matches: string | null;
  readonly match: MatchMode;
}

/** Fails before any compute when an output could not be written. */
export function checkOutputs(options: OutputOptions): void {
  if (options.out !== null) checkOutputPath(options.out, 'out');
  if (options.matches !== null) checkOutputPath(options.matches, 'matches');
}

/** Writes a report as JSON, atomically. */
export function writeReport(path: string, report: Report): void {
  writeAtomic(path, [`${JSON.stringify(report, null, 2)}\n`]);
}

/** Writes the report and the matches of pair `index`, each atomically. */
export function writeOutputs(progress: JobProgress, index: number, scored: Scored, options: OutputOptions): void {
  if (options.out !== null) writeReport(options.out, scored.report);
  if (options.matches !== null) {
    const pair = progress.plan.pairs[index]!;
    const { reduction } = progress.pairs[index]!;
    const f = progress.model(pair.f);
    const g = progress.model(pair.g);
    const sides = [
      { label: 'F' as const, self: f, other: g, state: reduction.forward, scores: scored.forward },
      { label: 'G' as const, self: g, other: f, state: reduction.backward, scores: scored.backward },
    ];
    writeAtomic(options.matches, matchesCsv(sides, options.match));
  }
}
