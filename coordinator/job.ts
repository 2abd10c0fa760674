/**
 * The job driver: one function runs a job (a set of pairs over some models)
 * for `score` and `zoo`, on this machine's pool or on a cluster. Everything
 * but the executor is here, once: the options a cluster cannot honour, the
 * planner (job-plan.ts), the clock behind every timing (job-timing.ts), the
 * progress bar, the trace and each pair's report.
 */
import type { ClusterInfo, IoInfo, Report, Scored } from '../shared/core/index.js';
import { UsageError } from '../shared/errors.js';
import { pairReport, type JobProgress } from '../shared/job/index.js';
import { openJobSources, runEmbedded } from './embedded.js';
import { jobPlanner, planCuts } from './job-plan.js';
import { JobClock } from './job-timing.js';
import type { Job, JobRuntime } from './job-runtime.js';
import type { ClusterSettings, RunSettings } from './options.js';
import { createProgress, type Progress } from './progress.js';

export interface JobHooks {
  /** Pair `index`'s report: as soon as its last tile is in (a cluster run: once every tile is). */
  readonly onPair?: (index: number, scored: Scored, progress: JobProgress) => void;
  /** Every pair is reported: write the outputs (a cluster job is recorded as done after this). */
  readonly finish?: (scored: readonly Scored[], progress: JobProgress) => Promise<void>;
  /** The job had finished in an earlier run: its stored reports stand for it. */
  readonly restored?: (reports: readonly Report[], job: string) => void;
}

/** What the executor tells about a run beyond the reduction. */
export interface ExecutorInfo {
  readonly kernel: string;
  /** Kernel threads (embedded) or workers (cluster). */
  readonly threads: number;
  readonly block: number;
  readonly io: IoInfo | null;
  readonly cluster: ClusterInfo | null;
}

/**
 * Options a cluster run cannot honour, refused (exit 2, naming the option):
 * `threads` and `kernel` (its choice, ISA or tfjs backend) are each worker's
 * (`neurocorr worker --threads`, `--kernel`). The others hold on a cluster
 * too: `memory`, `nativeStandardize` and `kernel.addon` for the
 * coordinator's own reads of the models (to check results, `verify`),
 * `trace` for the driver's phases.
 */
export function refuseOnCluster(s: RunSettings): void {
  if (s.cluster === null) return;
  const worker = (option: string, flag: string) =>
    new UsageError(
      (o) =>
        `${o(option)} applies to this machine's pool, and a cluster run computes on its workers: leave it out with ${o('cluster.nats')}, and give it to each worker instead (\`neurocorr worker ${flag}\`)`,
    );
  if (s.threads !== undefined) throw worker('threads', '--threads');
  // The addon also serves the coordinator's own standardization: only the kernel's choice and variant are the workers'.
  const { choice, isa, tfjsBackend } = s.kernel;
  if (choice !== 'auto' || isa !== undefined || tfjsBackend !== undefined) throw worker('kernel', '--kernel');
}

export type { Job, JobRuntime } from './job-runtime.js';

/** Runs the job on the executor the settings name and returns each pair's report, in the order of `job.pairs`. */
export async function runJob(s: RunSettings, job: Job, hooks: JobHooks = {}): Promise<readonly Report[]> {
  refuseOnCluster(s);
  const clock = new JobClock();
  const trace = s.trace ? (phase: string) => s.log(`trace: ${phase} at ${(clock.elapsed() * 1000).toFixed(0)} ms`) : () => undefined;
  const models = job.planned.models.map((p) => p.skeleton());
  const planner = jobPlanner(models, job.planned.models.map(planCuts), job.pairs, s.null);
  let bar: Progress | null = null;
  let reported = 0;
  const runtime: JobRuntime = {
    planner,
    clock,
    onStart: (plan, done) => {
      trace('planned');
      const pairs = plan.pairs.reduce((sum, p) => sum + plan.models[p.f]!.n * plan.models[p.g]!.n, 0);
      bar = createProgress({
        total: plan.tiles.length,
        pairsPerUnit: pairs / Math.max(1, plan.tiles.length),
        label: 'tiles',
        enabled: s.progress,
        intervalMs: s.progressInterval,
        ...(job.pairs.length > 1 ? { detail: () => `model pairs ${reported}/${job.pairs.length}` } : {}),
      });
      bar.update(done);
    },
    onTile: (done) => bar?.update(done),
  };
  const scored: Scored[] = [];
  const report = (progress: JobProgress, index: number, info: ExecutorInfo): void => {
    scored[index] = reportOf(s, job, progress, index, info, clock);
    reported++;
    hooks.onPair?.(index, scored[index], progress);
  };
  const done = () => {
    (bar as Progress | null)?.finish();
    trace('tiles done');
  };
  const reporting: Reporting = { report, done, scored, hooks, trace };
  return s.cluster !== null ? runCluster(s, s.cluster, job, runtime, reporting) : runLocal(s, job, runtime, reporting);
}

/** Pair `index`'s report: the one place every path builds it. */
function reportOf(s: RunSettings, job: Job, progress: JobProgress, index: number, info: ExecutorInfo, clock: JobClock): Scored {
  const { seconds, nullSeconds } = clock.pair(index);
  return pairReport(progress, index, {
    match: s.match,
    constantMode: s.constant,
    conv: s.pair.conv,
    spatial: job.planned.spatial,
    partial: job.planned.partial,
    kernel: info.kernel,
    threads: info.threads,
    block: info.block,
    tiles: progress.plan.tiles.filter((t) => t.kind !== 'null' && t.pair === index).length,
    seconds,
    io: info.io,
    cluster: info.cluster,
    nullSeconds,
  });
}

/** The driver's side of a run, handed to the executor's glue below. */
interface Reporting {
  readonly report: (progress: JobProgress, index: number, info: ExecutorInfo) => void;
  /** Every tile is in. */
  readonly done: () => void;
  readonly scored: readonly Scored[];
  readonly hooks: JobHooks;
  readonly trace: (phase: string) => void;
}

/** The job on this machine's pool, its models opened here (coordinator/embedded.ts). */
async function runLocal(s: RunSettings, job: Job, runtime: JobRuntime, r: Reporting): Promise<readonly Report[]> {
  const sources = openJobSources(job, s.memory, s.kernel);
  let info: ExecutorInfo | null = null;
  const run = await runEmbedded(sources, job.pairs, {
    kernel: s.kernel,
    ...(s.threads !== undefined ? { threads: s.threads } : {}),
    ...(s.tile !== undefined ? { block: s.tile } : {}),
    memory: s.memory,
    planner: runtime.planner,
    clock: runtime.clock,
    onPoolStart: () => r.trace('pool starting'),
    onStart: ({ kernel, plan, threads }) => {
      r.trace('pool ready');
      for (const note of kernel.notes) s.log(`kernel: ${note}`);
      info = { kernel: kernel.name, threads, block: plan.block, io: null, cluster: null };
      runtime.onStart(plan, 0);
    },
    onTile: (count) => runtime.onTile(count),
    // Shard-set reads are the first pair's models': a report states them for a one-pair job only.
    onPairDone: (index, progress, io) => r.report(progress, index, { ...info!, io: job.pairs.length === 1 ? io() : null }),
  });
  r.done();
  await r.hooks.finish?.(r.scored, run.progress);
  return r.scored.map((x) => x.report);
}

/** The same job with JetStream as the executor and Redis holding its state (coordinator/cluster/coordinator.ts). */
async function runCluster(s: RunSettings, c: ClusterSettings, job: Job, runtime: JobRuntime, r: Reporting): Promise<readonly Report[]> {
  const { ClusterCoordinator } = await import('./cluster/coordinator.js');
  const { isStoredResult } = await import('./cluster/stored.js');
  return new ClusterCoordinator<readonly Report[]>(
    {
      ...job,
      options: s.pair,
      tile: s.tile,
      memory: s.memory,
      log: s.log,
      runtime,
      finish: async (progress, run) => {
        r.done();
        for (let index = 0; index < job.pairs.length; index++) {
          r.report(progress, index, { kernel: run.kernel, threads: run.cluster.workers.length, block: run.block, io: null, cluster: run.cluster });
        }
        await r.hooks.finish?.(r.scored, progress);
        const reports = r.scored.map((x) => x.report);
        return { result: reports, stored: JSON.stringify(reports) };
      },
      restore: (parse, name) => {
        const stored = parse(isStoredResult);
        const reports = Array.isArray(stored) ? stored : [stored];
        r.hooks.restored?.(reports, name);
        return reports;
      },
    },
    c,
  ).run();
}
