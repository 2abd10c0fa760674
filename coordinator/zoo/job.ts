/**
 * A zoo's pairs as one job: every pair still to compute, over the models they
 * need (each opened and standardized once), on one pool (embedded) or in one
 * JetStream job (cluster). Each pair's report is what `score F G` reports;
 * embedded runs hand each over as soon as its last tile is in.
 */
import type { Report } from '../../shared/core/index.js';
import type { PlannedSet } from '../../shared/formats/index.js';
import { pairReport, type JobPairInput, type JobProgress, type PairRunInfo } from '../../shared/job/index.js';
import { runFields } from '../cluster/cluster-job.js';
import { isStoredReports } from '../cluster/stored.js';
import { openSources, runEmbedded } from '../embedded.js';
import { createProgress, type Progress } from '../progress.js';
import type { ClusterSettings } from '../options.js';
import type { ZooSettings } from './options.js';

export interface ZooJob {
  /** The models the pairs need, and how they are named. */
  readonly paths: readonly string[];
  readonly labels: readonly string[];
  readonly planned: PlannedSet;
  readonly pairs: readonly JobPairInput[];
}

/** Called once per pair, as soon as its report is known. */
export type OnPair = (index: number, report: Report) => void;

type RunInfo = Omit<PairRunInfo, 'tiles' | 'match' | 'constantMode' | 'conv' | 'spatial' | 'partial'>;

function reportOf(s: ZooSettings, job: ZooJob, progress: JobProgress, index: number, run: RunInfo): Report {
  return pairReport(progress, index, {
    ...run,
    match: s.match,
    constantMode: s.constant,
    conv: s.pair.conv,
    spatial: job.planned.spatial,
    partial: job.planned.partial,
    tiles: progress.plan.tiles.filter((t) => t.kind !== 'null' && t.pair === index).length,
  }).report;
}

export async function runZooJob(s: ZooSettings, job: ZooJob, onPair: OnPair): Promise<Report[]> {
  if (s.cluster !== null) return runZooCluster(s, s.cluster, job, onPair);
  const started = performance.now();
  const sources = openSources(
    job.paths.map((path, k) => ({ path, plan: job.planned.models[k]! })),
    job.pairs,
    s.memory,
    s.kernel,
  );
  const reports: Report[] = [];
  let bar: Progress | null = null;
  let finished = 0;
  let onTileDone: (done: number, pair: number) => void = () => undefined;
  await runEmbedded(sources, job.pairs, {
    kernel: s.kernel,
    ...(s.threads !== undefined ? { threads: s.threads } : {}),
    ...(s.tile !== undefined ? { block: s.tile } : {}),
    memory: s.memory,
    null: s.null,
    onStart: ({ kernel, plan, threads, progress }) => {
      for (const note of kernel.notes) s.log(`kernel: ${note}`);
      const left = job.pairs.map((_, index) => plan.tiles.filter((t) => t.pair === index).length);
      const pairs = plan.pairs.reduce((sum, p) => sum + plan.models[p.f]!.n * plan.models[p.g]!.n, 0);
      bar = createProgress({
        total: plan.tiles.length,
        pairsPerUnit: pairs / Math.max(1, plan.tiles.length),
        label: 'tiles',
        enabled: s.progress,
        intervalMs: s.progressInterval,
        detail: () => `model pairs ${finished}/${job.pairs.length}`,
      });
      onTileDone = (done, pair) => {
        if (--left[pair]! === 0) {
          const report = reportOf(s, job, progress, pair, {
            kernel: kernel.name,
            threads,
            block: plan.block,
            seconds: (performance.now() - started) / 1000,
            nullSeconds: 0,
          });
          reports[pair] = report;
          finished++;
          onPair(pair, report);
        }
        bar?.update(done);
      };
    },
    onTile: (done, tile) => onTileDone(done, tile.pair),
  });
  (bar as Progress | null)?.finish();
  return reports;
}

async function runZooCluster(s: ZooSettings, c: ClusterSettings, job: ZooJob, onPair: OnPair): Promise<Report[]> {
  const { ClusterCoordinator } = await import('../cluster/coordinator.js');
  const reports = await new ClusterCoordinator<Report[]>(
    {
      paths: job.paths,
      labels: job.labels,
      planned: job.planned,
      pairs: job.pairs,
      ...runFields(s),
      finish: (progress, run) => {
        const all = job.pairs.map((_, index) =>
          reportOf(s, job, progress, index, {
            kernel: run.kernel,
            threads: run.cluster.workers.length,
            block: run.block,
            seconds: run.seconds,
            cluster: run.cluster,
            nullSeconds: run.nullSeconds,
          }),
        );
        return { result: all, stored: JSON.stringify(all) };
      },
      restore: (parse, name) => {
        s.log(`job ${name} is already done; its stored results are used`);
        return parse(isStoredReports);
      },
    },
    c,
  ).run();
  reports.forEach((report, index) => onPair(index, report));
  return reports;
}
