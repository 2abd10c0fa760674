/**
 * A cluster worker's view of one job: its models opened from the spec's
 * inputs and planned exactly as the coordinator planned them, and a tile
 * runner over them. Opening comes in two steps, so that the worker's cache
 * can make room for a job before reading it: `planWorkerJob` resolves the
 * inputs and reads their layouts (what the job will hold), `loadWorkerJob`
 * reads and standardizes them.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { JobSpec } from '../../shared/cluster/index.js';
import { InternalError } from '../../shared/errors.js';
import { isShardPlan, planModels, type ModelPlan } from '../../shared/formats/index.js';
import { openSource, planJob, type JobPlan, type ModelSource } from '../../shared/job/index.js';
import { hugePageAllocate, nativeLoops, type NativeLoopsOptions } from '../native/assist.js';
import type { EmbeddedPool } from '../pool.js';
import { TileRunner } from '../tile-runner.js';
import { resolveInput } from './inputs.js';

/** What a shard set's cache may hold: at least `least` bytes (the shards tiles in flight pin, and one more), at most `full` (the whole set). */
export interface ShardNeed {
  readonly least: number;
  readonly full: number;
  /** The set's largest shard, decoded, for messages. */
  readonly shardBytes: number;
  readonly path: string;
}

export interface PlannedJob {
  readonly spec: JobSpec;
  readonly paths: readonly string[];
  readonly plans: readonly ModelPlan[];
  /** Bytes of the models held whole (standardized, for the job's life). */
  readonly fixedBytes: number;
  /** Per model: a shard set's cache needs; null for a model held whole. */
  readonly shards: readonly (ShardNeed | null)[];
}

export interface WorkerJob {
  readonly spec: JobSpec;
  readonly plan: JobPlan;
  readonly sources: readonly ModelSource[];
  readonly runner: TileRunner;
}

export interface PlanJobOptions {
  readonly cacheDir: string;
  /** Folders whose files a job may name by path. */
  readonly dataRoots: readonly string[];
  /** Native standardization loops (and the addon they come from). */
  readonly standardize: NativeLoopsOptions;
  /** Kernel tiles this worker runs at once at most (its lanes, times a super-tile's spread over the pool). */
  readonly kernelTiles: (span: number) => number;
}

export interface LoadJobOptions {
  /** Per model: a shard set's cache budget in bytes (null for a model held whole). */
  readonly budgets: readonly (number | null)[];
  /** Separates this job's kernel keys from other jobs' on the same pool (see TileRunner). */
  readonly keyBase: number;
  /** Runs between the layers of a long standardization: it counts as progress. */
  readonly beat: () => void;
  readonly standardize: NativeLoopsOptions;
}

export async function planWorkerJob(nc: NatsConnection, spec: JobSpec, options: PlanJobOptions): Promise<PlannedJob> {
  const paths = await Promise.all(spec.inputs.map((ref) => resolveInput(nc, ref, options.dataRoots, options.cacheDir)));
  const loops = nativeLoops(options.standardize);
  const plans = planModels(paths, { ...spec.options, ...(loops ? { loops } : {}) }).models;
  if (plans.some((p, k) => p.m !== spec.m || p.n !== spec.n[k])) {
    throw new InternalError(
      `job ${spec.job}: this worker plans ${plans.map((p) => p.n).join('x')} neurons at m=${plans[0]?.m}, the coordinator ${spec.n.join('x')} at m=${spec.m}; are both reading the same files?`,
    );
  }
  const kernelTiles = options.kernelTiles(spec.span);
  let fixedBytes = 0;
  const shards = plans.map((plan, k): ShardNeed | null => {
    if (!isShardPlan(plan)) {
      fixedBytes += plan.n * plan.m * 4;
      return null;
    }
    // A tile pins one shard of each side it reads; a model on both sides of a pair (or of different pairs) is pinned twice.
    const sides = Math.min(
      2,
      spec.pairs.reduce((n, p) => n + (p.f === k ? 1 : 0) + (p.g === k ? 1 : 0), 0),
    );
    const shardBytes = Math.max(...plan.manifest.shards.map((s) => s.count)) * plan.m * 4;
    return { least: shardBytes * (kernelTiles * sides + 1), full: shardBytes * plan.manifest.shards.length, shardBytes, path: paths[k]! };
  });
  return { spec, paths, plans, fixedBytes, shards };
}

export async function loadWorkerJob(planned: PlannedJob, pool: EmbeddedPool, options: LoadJobOptions): Promise<WorkerJob> {
  const { spec, paths, plans } = planned;
  const sources = plans.map((plan, k) =>
    openSource(paths[k]!, plan, { budget: options.budgets[k] ?? 0, allocate: (bytes) => hugePageAllocate(bytes, options.standardize) }),
  );
  for (const source of sources) await source.load(options.beat);
  const plan = planJob(
    sources.map((s) => s.model),
    spec.pairs,
    { block: spec.block, span: spec.span, nulls: spec.nulls, cuts: sources.map((s) => s.cuts) },
  );
  if (plan.tiles.length !== spec.tiles) throw new InternalError(`job ${spec.job}: this worker plans ${plan.tiles.length} tiles, the coordinator ${spec.tiles}`);
  return { spec, plan, sources, runner: new TileRunner(pool, plan, sources, options.keyBase) };
}
