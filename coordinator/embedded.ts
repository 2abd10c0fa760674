/**
 * Embedded execution: one process, a piscina pool with one thread per core.
 * The job's models are opened here (shard sets streamed, other sets
 * standardized into SharedArrayBuffers that every thread reads in place),
 * and the tiles run on the pool as soon as the layers they read are in.
 */
import type { IoInfo, NullRequest } from '../shared/core/index.js';
import { defaultBlockSize } from '../shared/tiles/index.js';
import { isShardPlan, type ModelPlan, type PlannedSet } from '../shared/formats/index.js';
import {
  JobProgress,
  openSource,
  operands,
  type Accept,
  type JobPairInput,
  type JobPlan,
  type JobTile,
  type ModelSource,
  type TileExecutor,
  type TileOutcome,
} from '../shared/job/index.js';
import type { KernelOptions } from '../worker/kernel-options.js';
import { hugePageAllocate } from '../worker/native/assist.js';
import type { AddonOptions } from '../worker/native/addon.js';
import { startPool, type EmbeddedPool, type LoadedKernelInfo } from '../worker/pool.js';
import { TileRunner } from '../worker/tile-runner.js';
import { runTiles } from '../worker/run-tiles.js';
import { checkShardBudget } from './budget.js';
import { jobPlanner, type Planner } from './job-plan.js';
import { JobClock } from './job-timing.js';
import { ShardGate } from './shard-gate.js';
import { streamSchedule } from './stream-schedule.js';
import { jobThreads } from './threads.js';

/** The tile executor of embedded runs: the local pool, a few tiles in flight per thread. */
export class LocalExecutor implements TileExecutor {
  constructor(
    private readonly runner: TileRunner,
    private readonly options: {
      readonly concurrency: number;
      /** Holds a tile back until its inputs are ready. */
      readonly gate?: (tile: JobTile) => Promise<unknown>;
      readonly onTile?: (done: number, tile: JobTile) => void;
      readonly onFailure?: (error: unknown) => void;
    },
  ) {}

  execute(tiles: readonly JobTile[], accept: Accept): Promise<void> {
    const { concurrency, gate, onTile, onFailure } = this.options;
    return runTiles(
      tiles,
      (tile: JobTile) => this.runner.run(tile),
      (tile: JobTile, outcome: TileOutcome) => void accept(tile, outcome),
      { concurrency, ...(gate ? { gate } : {}), ...(onTile ? { onTile } : {}), ...(onFailure ? { onFailure } : {}) },
    );
  }
}

export interface EmbeddedOptions {
  readonly kernel: KernelOptions;
  /** Worker threads; default one per core; capped by coordinator/threads.ts. */
  readonly threads?: number;
  /** Neurons per block; default chosen from the kernel and m. */
  readonly block?: number;
  /**
   * The job's memory budget (`--memory`), the one the sources were opened
   * with: the out-of-core schedule splits it between its arena and its
   * window; reported in `io`.
   */
  readonly memory: number;
  /** The permutation null; none when absent. Unused when `planner` is given. */
  readonly null?: NullRequest;
  /** The job's planner (coordinator/job-plan.ts); default: one for these pairs and `null`. */
  readonly planner?: Planner;
  /** The clock the reports' timings come from (coordinator/job-timing.ts); default: a new one. */
  readonly clock?: JobClock;
  /** Bytes of one side's null sample kept as its shards pass (default KEEP_BUDGET; tests lower it to run the null in the schedule's tail). */
  readonly keepBudget?: number;
  /** Reorders the plan's tiles before they run (tests use it to shuffle arrival order). */
  readonly order?: (tiles: JobTile[]) => JobTile[];
  /** Wait until every thread is up before the first tile (for timing the kernel alone). */
  readonly warm?: boolean;
  /** Called once the threads are starting, before the models are read: light work here overlaps their boot. */
  readonly onPoolStart?: () => void;
  readonly onStart?: (info: { readonly kernel: LoadedKernelInfo; readonly plan: JobPlan; readonly threads: number; readonly progress: JobProgress }) => void;
  readonly onTile?: (done: number, tile: JobTile) => void;
  /** Pair `index`'s last tile is merged; `io` tells the shard-set reads of the first pair's models so far. */
  readonly onPairDone?: (index: number, progress: JobProgress, io: () => IoInfo | null) => void;
}

export interface EmbeddedRun {
  readonly progress: JobProgress;
  readonly kernel: LoadedKernelInfo;
  readonly threads: number;
  /** Shard-set reads of the first pair's models; null when neither streams. */
  readonly io: IoInfo | null;
  /** Each pair's timings (coordinator/job-timing.ts). */
  readonly clock: JobClock;
}

/**
 * Opens activation sets for an embedded run of these pairs: shard sets share
 * `memory` bytes of cache, other sets go into huge-page SharedArrayBuffers.
 * A budget below what the pairs' shard sets need is refused (a UsageError).
 */
export function openSources(
  inputs: readonly { readonly path: string; readonly plan: ModelPlan }[],
  pairs: readonly JobPairInput[],
  memory: number,
  addon: AddonOptions = {},
): ModelSource[] {
  checkShardBudget(inputs, pairs, memory);
  const budget = memory / Math.max(1, inputs.filter((i) => isShardPlan(i.plan)).length);
  return inputs.map((input) => openSource(input.path, input.plan, { budget, allocate: (bytes) => hugePageAllocate(bytes, addon) }));
}

/** Opens a job's models (job-runtime.ts) as openSources does: the local pool's, and the cluster coordinator's to check results. */
export function openJobSources(
  job: { readonly paths: readonly string[]; readonly planned: PlannedSet; readonly pairs: readonly JobPairInput[] },
  memory: number,
  addon: AddonOptions = {},
): ModelSource[] {
  return openSources(
    job.paths.map((path, k) => ({ path, plan: job.planned.models[k]! })),
    job.pairs,
    memory,
    addon,
  );
}

/** Runs a whole job over opened models on a local pool (started here unless given, destroyed at the end). */
export async function runEmbedded(
  sources: readonly ModelSource[],
  pairs: readonly JobPairInput[],
  options: EmbeddedOptions,
  started?: EmbeddedPool,
): Promise<EmbeddedRun> {
  // The threads boot and load their kernel while this thread standardizes the models.
  const pool = started ?? (await startPool(options.kernel, embeddedThreads(sources, pairs, options)));
  try {
    options.onPoolStart?.();
    const loaded = loadInOrder(sources, pairs);
    loaded.all.catch(() => undefined);
    const kernel = await pool.kernel;
    if (options.warm) await pool.warm();
    const threads = pool.threads;
    const first = pairs[0]!;
    const [f, g] = [sources[first.f]!.model, sources[first.g]!.model];
    const block = options.block ?? defaultBlockSize({ kernel: kernel.name, m: f.m, nF: f.n, nG: g.n, threads });
    const planner =
      options.planner ??
      jobPlanner(
        sources.map((s) => s.model),
        sources.map((s) => s.cuts),
        pairs,
        options.null,
      );
    const { plan } = planner({ block });
    const clock = options.clock ?? new JobClock();
    clock.start(plan);
    const progress = new JobProgress(plan);
    options.onStart?.({ kernel, plan, threads, progress });
    const schedule = options.order ? null : streamSchedule(plan, sources, options.memory, options.keepBudget);
    // Without the schedule, shard sets serve tiles from their LRU windows: tiles wait until their shards fit.
    const pins = schedule === null && ShardGate.needed(sources) ? new ShardGate(plan, sources) : null;
    const inputs = (tile: JobTile): Promise<unknown> => {
      const { rows, cols } = operands(plan, tile);
      if (tile.kind === 'null') return Promise.all([loaded.model(rows.model), loaded.model(cols.model)]);
      return Promise.all([sources[rows.model]!.ready(rows.block.layer), sources[cols.model]!.ready(cols.block.layer)]);
    };
    const executor = new LocalExecutor(new TileRunner(pool, plan, sources), {
      concurrency: threads * 2,
      gate: schedule ? (tile) => schedule.gate(tile).then(() => inputs(tile)) : pins ? (tile) => inputs(tile).then(() => pins.enter(tile)) : inputs,
      ...(options.onTile ? { onTile: options.onTile } : {}),
      onFailure: (error: unknown) => {
        schedule?.abort(error);
        pins?.abort(error);
      },
    });
    const stats = [sources[first.f]!.stats, sources[first.g]!.stats];
    const io = (): IoInfo | null =>
      stats.some((s) => s !== null)
        ? {
            F: stats[0] ?? null,
            G: stats[1] ?? null,
            memory: options.memory,
            bytesRead: (stats[0]?.bytesRead ?? 0) + (stats[1]?.bytesRead ?? 0),
            schedule: schedule?.info ?? null,
          }
        : null;
    const tiles = options.order ? options.order([...plan.tiles]) : (schedule?.tiles ?? plan.tiles);
    await Promise.all([
      loaded.all,
      executor.execute(tiles, (tile, outcome) => {
        const merged = progress.accept(tile, outcome);
        schedule?.done(tile);
        pins?.leave(tile);
        if (clock.merged(tile, outcome, merged)) options.onPairDone?.(tile.pair, progress, io);
        return merged;
      }),
    ]);
    return { progress, kernel, threads, io: io(), clock };
  } finally {
    await pool.destroy();
  }
}

/** The requested threads, capped by the cores and the job's tiles (coordinator/threads.ts). */
function embeddedThreads(sources: readonly ModelSource[], pairs: readonly JobPairInput[], options: EmbeddedOptions): number {
  const job = { models: sources.map((s) => s.model), pairs, cuts: sources.map((s) => s.cuts) };
  return jobThreads(options.threads, options.kernel.choice, options.block !== undefined ? { ...job, block: options.block } : job);
}

/**
 * Standardizes the models one after another, the pairs' column models first:
 * main tiles then start as soon as their row model's layer is in, so the rest
 * of it is standardized here while the pool computes.
 */
function loadInOrder(sources: readonly ModelSource[], pairs: readonly JobPairInput[]): { all: Promise<void>; model: (k: number) => Promise<void> } {
  const order = [...new Set([...pairs.map((p) => p.g), ...pairs.map((p) => p.f)])];
  const done = new Map<number, Promise<void>>();
  let chain = Promise.resolve();
  for (const k of order) {
    chain = chain.then(() => sources[k]!.load());
    done.set(k, chain);
  }
  return { all: chain, model: (k) => done.get(k) ?? Promise.resolve() };
}
