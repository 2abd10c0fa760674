/**
 * `neurocorr plan F G`: what a score would cost and mean, before any compute.
 * It reads the inputs' headers only and plans the job's tiles as the
 * embedded run would (same threads, block size and null). Its time estimate
 * is measured on this machine, in a second or two, on synthetic data: each
 * distinct tile shape on the job's own pool (plan-tiles.ts), what the main
 * thread does for the tiles, loading a replica of each model, and a fresh
 * process scoring a tiny job (plan-calibrate.ts); the tiles are then
 * scheduled on the threads (plan-cost.ts). It gives the pair count, the
 * FLOPs (main job and permutation null), the wall time `score` would take
 * and where it goes, and the analytic chance level with the probes needed
 * to bring it under 0.1.
 */
import { chanceLevel, samplesForChance, type ChanceLevel } from '../shared/core/index.js';
import { isShardPlan, planPair } from '../shared/formats/index.js';
import { defaultBlockSize } from '../shared/tiles/index.js';
import { hugePageAllocate, nativeLoops } from '../worker/native/assist.js';
import { defaultThreads, startPool } from '../worker/pool.js';
import { jobPlanner, planCuts } from './job-plan.js';
import { planSettings, type PlanOptions } from './options.js';
import { sampleGather, timeGather, timeLoading, timeMerges, timeShardReading, timeStartUp } from './plan-calibrate.js';
import { timeTiles } from './plan-tiles.js';
import { fillUntimed, kernelTime, shapeClasses } from './plan-cost.js';
import { jobThreads } from './threads.js';

export interface Plan {
  readonly models: { readonly F: string; readonly G: string };
  readonly neurons: readonly [number, number];
  readonly layers: readonly [number, number];
  readonly probes: number;
  readonly samples: number;
  readonly pairs: number;
  readonly flops: { readonly main: number; readonly null: number };
  /** Permutations, and the neurons sampled from F and from G. */
  readonly null: { readonly permutations: number; readonly sample: readonly [number, number] };
  readonly kernel: string;
  readonly threads: number;
  /** The job's FLOPs over its kernel seconds (main and null tiles). */
  readonly gflopsPerSecond: number;
  /** Wall seconds of `neurocorr score` on this machine: the sum of `breakdown`. */
  readonly seconds: number;
  /** Where the seconds go. */
  readonly breakdown: {
    /** Main and null (permutation null) tiles: the kernel on the job's threads, plus the main thread's work for them (merging results, gathering null samples). */
    readonly kernel: { readonly main: number; readonly null: number };
    /** Reading and standardizing both models. */
    readonly load: number;
    /** What any run pays: starting Node and its kernel threads, the report, stopping (a tiny job, timed). */
    readonly fixed: number;
  };
  /** How the estimate was made: the job's tiles, the tile shapes timed, and what was measured. */
  readonly calibration: {
    /** Neurons per block, as the embedded run chooses it. */
    readonly block: number;
    readonly tiles: { readonly main: number; readonly null: number };
    /** Distinct tile shapes, and how many were timed (the others scaled from the nearest timed). */
    readonly shapes: number;
    readonly timed: number;
    /** Nanoseconds per value (neuron x sample) to read and standardize F's and G's inputs (to read and check them, for a shard set). */
    readonly loadNanoseconds: readonly [number, number];
    /** Seconds of a fresh process scoring a tiny job on as many threads (the fixed cost), and of starting and stopping this plan's threads. */
    readonly startUp: number;
    readonly pool: number;
    /** Seconds this plan spent measuring. */
    readonly seconds: number;
  };
  readonly chance: ChanceLevel;
  readonly probesForTenth: number;
}

/** What scoring F against G would cost and mean, before any compute: the inputs' headers only, plus timings on synthetic data (a tiny job's inputs go to a temporary folder, removed after). */
export async function plan(options: PlanOptions): Promise<Plan> {
  const started = performance.now();
  const settings = planSettings(options);
  const fPath = settings.f;
  const gPath = settings.g;
  const addon = settings.kernel.addon !== undefined ? { addon: settings.kernel.addon } : {};
  const loops = nativeLoops(addon);
  const plans = planPair(fPath, gPath, { ...settings.pair, ...(loops ? { loops } : {}) });
  const f = plans.f.skeleton();
  const g = plans.g.skeleton();
  const cuts = [plans.f, plans.g].map(planCuts);
  // The plan `score` runs: the same planner, once the block size is known.
  const planner = jobPlanner([f, g], cuts, [{ f: 0, g: 1 }], settings.null);
  const threads = jobThreads(settings.threads, settings.kernel.choice, { models: [f, g], pairs: [{ f: 0, g: 1 }], cuts });

  const startUp = timeStartUp(threads, settings.kernel, [isShardPlan(plans.f), isShardPlan(plans.g)]);
  // G first, as the run loads them: the first replica pays what a cold start pays.
  const loadings = [plans.g, plans.f].map((p) => {
    const allocate = (bytes: number) => hugePageAllocate(bytes, addon);
    const timed = timeLoading(p === plans.f ? f : g, settings.pair.conv, allocate, loops);
    return { ...timed, load: isShardPlan(p) ? timeShardReading(timed.replica, allocate) : timed.standardize };
  });
  const [gLoad, fLoad] = [loadings[0]!.load, loadings[1]!.load];

  let t = performance.now();
  const pool = await startPool(settings.kernel, threads);
  let poolSeconds = 0;
  let stopped = false;
  try {
    const kernel = await pool.kernel;
    await pool.warm();
    poolSeconds = (performance.now() - t) / 1000;
    const block = defaultBlockSize({ kernel: kernel.name, m: f.m, nF: f.n, nG: g.n, threads });
    const { plan: job, nulls } = planner({ block });
    const nul = nulls[0]!;
    const shapes = shapeClasses(job);
    const timed = await timeTiles(pool, shapes.classes, f.m);
    t = performance.now();
    stopped = true;
    await pool.destroy();
    poolSeconds += (performance.now() - t) / 1000;
    const sample = [Math.min(nul.sample, f.n), Math.min(nul.sample, g.n)] as const;
    // The main thread folds every result into the reduction, and gathers and permutes each permutation's sample rows once.
    const merges = timeMerges(job, shapes);
    const gather = nul.permutations > 0 ? nul.permutations * (sample[0] + sample[1]) * f.m * timeGather(sampleGather(loadings[1]!.replica)) : 0;
    const serial = { main: merges.main, null: merges.null + gather };
    const kernelSeconds = kernelTime(job, shapes, fillUntimed(shapes.classes, timed.seconds), threads, serial, defaultThreads());
    const load = f.n * f.m * fLoad + g.n * g.m * gLoad;
    const fixed = startUp;
    const main = 2 * f.n * g.n * f.m;
    const nullFlops = 2 * nul.permutations * (sample[0] * g.n + sample[1] * f.n) * f.m;
    const spatial = f.m / f.probes;
    const mainTiles = job.tiles.filter((tile) => tile.kind === 'main').length;
    const arithmetic = kernelSeconds.main + kernelSeconds.null;
    return {
      models: { F: fPath, G: gPath },
      neurons: [f.n, g.n],
      layers: [f.layers.length, g.layers.length],
      probes: f.probes,
      samples: f.m,
      pairs: f.n * g.n,
      flops: { main, null: nullFlops },
      null: { permutations: nul.permutations, sample },
      kernel: kernel.name,
      threads,
      gflopsPerSecond: arithmetic > 0 ? (main + nullFlops) / arithmetic / 1e9 : 0,
      seconds: fixed + load + arithmetic,
      breakdown: { kernel: kernelSeconds, load, fixed },
      calibration: {
        block,
        tiles: { main: mainTiles, null: job.tiles.length - mainTiles },
        shapes: shapes.classes.length,
        timed: timed.seconds.filter((s) => s !== null).length,
        loadNanoseconds: [fLoad * 1e9, gLoad * 1e9],
        startUp,
        pool: poolSeconds,
        seconds: (performance.now() - started) / 1000,
      },
      chance: chanceLevel(f.m, f.n, g.n),
      probesForTenth: Math.ceil(samplesForChance(0.1, f.n, g.n) / spatial),
    };
  } finally {
    if (!stopped) await pool.destroy();
  }
}

const seconds = (s: number): string =>
  s < 0.001
    ? 'under 1 ms'
    : s < 1
      ? `${(s * 1000).toFixed(0)} ms`
      : s < 120
        ? `${s.toFixed(1)} s`
        : s < 7200
          ? `${(s / 60).toFixed(1)} min`
          : `${(s / 3600).toFixed(1)} h`;

export function planSummary(p: Plan): string {
  const b = p.breakdown;
  const nullLine =
    p.null.permutations === 0
      ? '  permutation null: off (--null 0)'
      : `  permutation null: ${p.null.permutations} permutations x ${p.null.sample[0]}+${p.null.sample[1]} sampled neurons: ${p.flops.null.toExponential(2)} FLOP (${((100 * p.flops.null) / p.flops.main).toFixed(1)}% of the main job)`;
  const advice =
    p.probes >= p.probesForTenth
      ? `enough probes: chance is under 0.1 from ${p.probesForTenth}`
      : `use at least ${p.probesForTenth} probes to bring it under 0.1 (you have ${p.probes})`;
  return [
    `neurocorr plan: ${p.models.F} (F, ${p.neurons[0]} neurons in ${p.layers[0]} layers) vs ${p.models.G} (G, ${p.neurons[1]} neurons in ${p.layers[1]} layers)`,
    `  probes ${p.probes}${p.samples !== p.probes ? ` (${p.samples} samples per neuron)` : ''}`,
    `  pairs ${p.pairs.toExponential(2)}, main job ${p.flops.main.toExponential(2)} FLOP`,
    nullLine,
    `  this machine: ${p.kernel} on ${p.threads} thread(s), blocks of ${p.calibration.block}: about ${seconds(p.seconds)} in all = ${seconds(b.fixed)} start-up + ${seconds(b.load)} reading the inputs + ${seconds(b.kernel.main)} main tiles + ${seconds(b.kernel.null)} null tiles (${p.gflopsPerSecond.toFixed(0)} GFLOP/s)`,
    `  chance level (analytic, independent samples): forward ${p.chance.forward.toFixed(3)}, backward ${p.chance.backward.toFixed(3)}, symmetric ${p.chance.symmetric.toFixed(3)}`,
    `  ${advice}`,
  ].join('\n');
}
