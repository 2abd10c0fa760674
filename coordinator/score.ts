/**
 * `score`: the exact score of two activation sets, on this machine or on a
 * cluster: one job of one pair, run by the job driver (coordinator/job.ts),
 * its report written out here.
 */
import { chanceWarning, humanSummary, warnChance, type Report } from '../shared/core/index.js';
import { planPair } from '../shared/formats/index.js';
import { checkOutputs, writeOutputsAsync, writeReport } from '../shared/job/index.js';
import { nativeLoops } from '../worker/native/assist.js';
import { runJob } from './job.js';
import { scoreSettings, type ScoreOptions, type ScoreResult } from './options.js';

export type { ScoreResult } from './options.js';

/** Scores two activation sets; rejects with a NeurocorrError (bad input, a service down, a failed job) or a TypeError/RangeError (bad options). */
export async function score(options: ScoreOptions): Promise<ScoreResult> {
  const s = scoreSettings(options);
  checkOutputs(s, [s.f, s.g]);
  const loops = nativeLoops(s.standardize);
  const planned = planPair(s.f, s.g, { ...s.pair, ...(loops ? { loops } : {}) });
  const [f, g] = [planned.f.skeleton(), planned.g.skeleton()];
  warnChance(f.m, f.probes, f.n, g.n, s.null.permutations > 0, s.log);
  const job = {
    paths: [s.f, s.g],
    labels: ['F', 'G'],
    planned: { models: [planned.f, planned.g], partial: planned.partial, spatial: planned.spatial },
    pairs: [{ f: 0, g: 1 }],
  };
  const [report] = await runJob(s, job, {
    finish: async ([scored], progress) => {
      await writeOutputsAsync(progress, 0, scored!, s);
      const warning = scored!.report.null === null ? null : chanceWarning(scored!.report);
      if (warning !== null) s.log(warning);
    },
    restored: ([stored], name) => {
      s.log(`job ${name} is already done; its stored report follows`);
      if (s.out !== null) writeReport(s.out, stored!);
      if (s.matches !== null) s.log(`the stored report has no matches; run the job again under another name to write ${s.matches}`);
    },
  });
  return { report: report!, summary: humanSummary(report as Report) };
}
