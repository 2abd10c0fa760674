/**
 * The job's one planner: the tiles of a set of pairs and their nulls. Every
 * executor calls it once it knows its block size (the local pool from its
 * kernel and threads, JetStream from the server's max_payload), so an
 * embedded run and a cluster run of the same pairs and block plan the same.
 */
import type { Model, NullOptions, NullRequest } from '../shared/core/index.js';
import { isShardPlan, type ModelPlan } from '../shared/formats/index.js';
import { pairNulls, planJob, type JobPairInput, type JobPlan } from '../shared/job/index.js';

/** What the executor decides: neurons per block, and (cluster) blocks per super-tile side. */
export interface JobShape {
  readonly block: number;
  readonly span?: number;
}

export interface PlannedJob {
  readonly plan: JobPlan;
  /** Each pair's null (NO_NULL when it has none), as the plan holds it. */
  readonly nulls: readonly NullOptions[];
}

export type Planner = (shape: JobShape) => PlannedJob;

/** Where a model's tiles must not cross: a shard set's shard boundaries, none for a set held whole. */
export function planCuts(plan: ModelPlan): readonly number[] {
  return isShardPlan(plan) ? plan.manifest.shards.map((s) => s.first) : [];
}

/** The planner of these pairs over `models` (cut at `cuts`), with `request`'s null on every pair. */
export function jobPlanner(
  models: readonly Model[],
  cuts: readonly (readonly number[])[],
  pairs: readonly JobPairInput[],
  request: NullRequest | null | undefined,
): Planner {
  return ({ block, span }) => {
    const nulls = pairNulls(request, models, pairs);
    return { plan: planJob(models, pairs, { block, ...(span !== undefined ? { span } : {}), nulls, cuts }), nulls };
  };
}
