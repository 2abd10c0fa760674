/**
 * A cluster worker's view of one job: its models opened from the spec's
 * inputs and planned exactly as the coordinator planned them, and a tile
 * runner over them.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { JobSpec } from '../../shared/cluster/index.js';
import { InternalError } from '../../shared/errors.js';
import { planModels } from '../../shared/formats/index.js';
import { openSource, planJob, type JobPlan, type ModelSource } from '../../shared/job/index.js';
import { hugePageAllocate, nativeLoops, type NativeLoopsOptions } from '../native/assist.js';
import type { EmbeddedPool } from '../pool.js';
import { TileRunner } from '../tile-runner.js';
import { resolveInput } from './inputs.js';

export interface WorkerJob {
  readonly spec: JobSpec;
  readonly plan: JobPlan;
  readonly sources: readonly ModelSource[];
  readonly runner: TileRunner;
  /** Bytes its models hold at most. */
  readonly bytes: number;
}

export interface OpenJobOptions {
  /** Bytes of streamed shard data per job, split over its shard-set models. */
  readonly cacheBytes: number;
  readonly cacheDir: string;
  /** Folders whose files a job may name by path. */
  readonly dataRoots: readonly string[];
  /** Separates this job's kernel keys from other jobs' on the same pool (see TileRunner). */
  readonly keyBase: number;
  /** Runs between the layers of a long standardization, so the tile that asked keeps its lease. */
  readonly beat: () => void;
  /** Native standardization loops (and the addon they come from). */
  readonly standardize: NativeLoopsOptions;
}

export async function openJob(nc: NatsConnection, spec: JobSpec, pool: EmbeddedPool, options: OpenJobOptions): Promise<WorkerJob> {
  const paths = await Promise.all(spec.inputs.map((ref) => resolveInput(nc, ref, options.dataRoots, options.cacheDir)));
  const loops = nativeLoops(options.standardize);
  const plans = planModels(paths, { ...spec.options, ...(loops ? { loops } : {}) }).models;
  if (plans.some((p, k) => p.m !== spec.m || p.n !== spec.n[k])) {
    throw new InternalError(
      `job ${spec.job}: this worker plans ${plans.map((p) => p.n).join('x')} neurons at m=${plans[0]?.m}, the coordinator ${spec.n.join('x')} at m=${spec.m}; are both reading the same files?`,
    );
  }
  const shardSets = plans.filter((p) => 'manifest' in p).length;
  const sources = plans.map((plan, k) =>
    openSource(paths[k]!, plan, { budget: options.cacheBytes / Math.max(1, shardSets), allocate: (bytes) => hugePageAllocate(bytes, options.standardize) }),
  );
  for (const source of sources) await source.load(options.beat);
  const plan = planJob(
    sources.map((s) => s.model),
    spec.pairs,
    { block: spec.block, span: spec.span, nulls: spec.nulls, cuts: sources.map((s) => s.cuts) },
  );
  if (plan.tiles.length !== spec.tiles) throw new InternalError(`job ${spec.job}: this worker plans ${plan.tiles.length} tiles, the coordinator ${spec.tiles}`);
  return { spec, plan, sources, runner: new TileRunner(pool, plan, sources, options.keyBase), bytes: sources.reduce((sum, s) => sum + s.bytes, 0) };
}
