/** `score` on a cluster: one pair as a cluster job, its report and outputs built as an embedded run builds them. */
import { chanceWarning, humanSummary, warnChance } from '../../shared/core/index.js';
import { planPair } from '../../shared/formats/index.js';
import { pairReport, writeOutputs, writeReport } from '../../shared/job/index.js';
import type { ClusterSettings, ScoreResult, ScoreSettings } from '../options.js';
import { runFields } from './cluster-job.js';
import { ClusterCoordinator } from './coordinator.js';
import { isStoredReport } from './stored.js';

export function clusterScore(s: ScoreSettings, c: ClusterSettings): Promise<ScoreResult> {
  const planned = planPair(s.f, s.g, s.pair);
  const [f, g] = [planned.f.skeleton(), planned.g.skeleton()];
  warnChance(f.m, f.probes, f.n, g.n, s.null.permutations > 0, s.log);
  const coordinator = new ClusterCoordinator<ScoreResult>(
    {
      paths: [s.f, s.g],
      labels: ['F', 'G'],
      planned: { models: [planned.f, planned.g], partial: planned.partial, spatial: planned.spatial },
      pairs: [{ f: 0, g: 1 }],
      ...runFields(s),
      finish: (progress, run) => {
        const scored = pairReport(progress, 0, {
          match: s.match,
          constantMode: s.constant,
          conv: s.pair.conv,
          spatial: planned.spatial,
          partial: planned.partial,
          kernel: run.kernel,
          threads: run.cluster.workers.length,
          block: run.block,
          tiles: progress.plan.tiles.filter((t) => t.kind !== 'null').length,
          seconds: run.seconds,
          cluster: run.cluster,
          nullSeconds: run.nullSeconds,
        });
        writeOutputs(progress, 0, scored, s);
        const warning = scored.report.null === null ? null : chanceWarning(scored.report);
        if (warning !== null) s.log(warning);
        return { result: { report: scored.report, summary: humanSummary(scored.report) }, stored: JSON.stringify(scored.report, null, 2) };
      },
      restore: (parse, job) => {
        const report = parse(isStoredReport);
        s.log(`job ${job} is already done; its stored report follows`);
        if (s.out !== null) writeReport(s.out, report);
        if (s.matches !== null) s.log(`the stored report has no matches; run the job again under another name to write ${s.matches}`);
        return { report, summary: humanSummary(report) };
      },
    },
    c,
  );
  return coordinator.run();
}
