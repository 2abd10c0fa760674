/**
 * `score`: the exact score of two activation sets, on this machine or on a
 * cluster. Both run the same job model (docs/ARCHITECTURE.md): plan the
 * pair, run its tiles on an executor, reduce, report, write the outputs.
 */
import { chanceWarning, humanSummary, warnChance } from '../shared/core/index.js';
import { planPair } from '../shared/formats/index.js';
import { checkOutputs, pairReport, writeOutputsAsync } from '../shared/job/index.js';
import { nativeLoops } from '../worker/native/assist.js';
import { openSources, runEmbedded } from './embedded.js';
import { scoreSettings, type ScoreOptions, type ScoreResult, type ScoreSettings } from './options.js';

export type { ScoreResult } from './options.js';
import { createProgress, type Progress } from './progress.js';

/** Scores two activation sets; rejects with a NeurocorrError (bad input, a service down, a failed job) or a TypeError/RangeError (bad options). */
export async function score(options: ScoreOptions): Promise<ScoreResult> {
  const settings = scoreSettings(options);
  checkOutputs(settings, [settings.f, settings.g]);
  if (settings.cluster !== null) {
    const { clusterScore } = await import('./cluster/score-job.js');
    return clusterScore(settings, settings.cluster);
  }
  return scoreEmbedded(settings);
}

async function scoreEmbedded(s: ScoreSettings): Promise<ScoreResult> {
  const started = performance.now();
  const trace = s.trace ? (phase: string) => s.log(`trace: ${phase} at ${(performance.now() - started).toFixed(0)} ms`) : () => undefined;
  const loops = nativeLoops(s.standardize);
  const planned = planPair(s.f, s.g, { ...s.pair, ...(loops ? { loops } : {}) });
  trace('planned');
  const [f, g] = [planned.f.skeleton(), planned.g.skeleton()];
  let progress: Progress | null = null;
  const sources = openSources(
    [
      { path: s.f, plan: planned.f },
      { path: s.g, plan: planned.g },
    ],
    [{ f: 0, g: 1 }],
    s.memory,
    s.kernel,
  );
  const run = await runEmbedded(sources, [{ f: 0, g: 1 }], {
    kernel: s.kernel,
    ...(s.threads !== undefined ? { threads: s.threads } : {}),
    ...(s.tile !== undefined ? { block: s.tile } : {}),
    memory: s.memory,
    null: s.null,
    onPoolStart: () => {
      trace('pool starting');
      // A small sum: it runs while the threads boot.
      warnChance(f.m, f.probes, f.n, g.n, s.null.permutations > 0, s.log);
    },
    onStart: ({ kernel, plan }) => {
      trace('pool ready');
      for (const note of kernel.notes) s.log(`kernel: ${note}`);
      progress = createProgress({
        total: plan.tiles.length,
        pairsPerUnit: (f.n * g.n) / plan.tiles.length,
        label: 'tiles',
        enabled: s.progress,
        intervalMs: s.progressInterval,
      });
    },
    onTile: (done) => progress?.update(done),
  });
  trace('tiles done');
  (progress as Progress | null)?.finish();
  const { plan } = run.progress;
  const scored = pairReport(run.progress, 0, {
    match: s.match,
    constantMode: s.constant,
    conv: s.pair.conv,
    spatial: planned.spatial,
    partial: planned.partial,
    kernel: run.kernel.name,
    threads: run.threads,
    block: plan.block,
    tiles: plan.tiles.filter((t) => t.kind === 'main').length,
    seconds: (performance.now() - started) / 1000,
    io: run.io,
    nullSeconds: run.nullSeconds,
  });
  await writeOutputsAsync(run.progress, 0, scored, s);
  if (scored.report.null !== null) {
    const warning = chanceWarning(scored.report);
    if (warning !== null) s.log(warning);
  }
  return { report: scored.report, summary: humanSummary(scored.report) };
}
