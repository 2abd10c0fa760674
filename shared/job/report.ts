/** One report writer for every path: a pair's report from the job's reduction, and the output files written together, whole or not at all. */
import { buildReport, matchesCsv, type MatchMode, type Report, type RunInfo, type Scored } from '../core/index.js';
import { checkOutputFiles, writeAtomic, writeFilesSteps, type FileOutput, type OutputFile } from '../formats/index.js';
import { runSteps, runStepsAsync, type Steps } from '../steps.js';
import type { JobProgress } from './progress.js';

export type PairRunInfo = Omit<RunInfo, 'null'> & {
  /** The null's share of the wall time, as NullReport.seconds states it. */
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

/** Fails before any compute when an output could not or must not be written (shared/formats/outputs.ts); `inputs` are the job's activation sets. */
export function checkOutputs(options: OutputOptions, inputs: readonly string[]): void {
  const outputs: FileOutput[] = [];
  if (options.out !== null) outputs.push({ path: options.out, option: 'out' });
  if (options.matches !== null) outputs.push({ path: options.matches, option: 'matches' });
  checkOutputFiles(outputs, inputs);
}

/** Writes a report as JSON, atomically. */
export function writeReport(path: string, report: Report): void {
  writeAtomic(path, [`${JSON.stringify(report, null, 2)}\n`]);
}

function* outputSteps(progress: JobProgress, index: number, scored: Scored, options: OutputOptions): Steps<void> {
  const files: OutputFile[] = [];
  if (options.out !== null) files.push({ path: options.out, chunks: [`${JSON.stringify(scored.report, null, 2)}\n`] });
  if (options.matches !== null) {
    const pair = progress.plan.pairs[index]!;
    const { reduction } = progress.pairs[index]!;
    const f = progress.model(pair.f);
    const g = progress.model(pair.g);
    const sides = [
      { label: 'F' as const, self: f, other: g, state: reduction.forward, scores: scored.forward },
      { label: 'G' as const, self: g, other: f, state: reduction.backward, scores: scored.backward },
    ];
    files.push({ path: options.matches, chunks: matchesCsv(sides, options.match) });
  }
  yield* writeFilesSteps(files);
}

/** Writes the report and the matches of pair `index`: both, or neither. */
export function writeOutputs(progress: JobProgress, index: number, scored: Scored, options: OutputOptions): void {
  runSteps(outputSteps(progress, index, scored, options));
}

/** As writeOutputs, letting the event loop in between chunks, so a signal stops it (and the CLI removes the temps). */
export function writeOutputsAsync(progress: JobProgress, index: number, scored: Scored, options: OutputOptions): Promise<void> {
  return runStepsAsync(outputSteps(progress, index, scored, options));
}
