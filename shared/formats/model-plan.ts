/**
 * A model before its values: sizes and layers are known from headers, and
 * its standardized values are produced a layer at a time into a buffer the
 * caller provides. Activation sets (standardize.ts) and shard sets
 * (shard-model.ts) both plan this way.
 */
import type { Model } from '../core/index.js';

/** Everything about a model that does not need its values: sizes, layers, sampling. */
export interface ModelPlan {
  readonly n: number;
  readonly m: number;
  /** Standardizes every layer into `z` (n x m) and returns the finished model. */
  build(z: Float32Array): Model;
  /**
   * The model over `z` before any value is written, and a step that
   * standardizes its next layer (false once all are done). Its layers' sizes
   * and depths are final from the start; each layer's constant count is set
   * when that layer is standardized.
   */
  start(z: Float32Array): ModelBuild;
  /** The model's layout with no values: empty z, no constants marked yet (what a cluster coordinator reduces into). */
  skeleton(): Model;
}

export interface ModelBuild {
  readonly model: Model;
  step(): boolean;
}

/** A plan from its sizes and a layout: the model over a given z, and a step that fills its next layer. */
export function modelPlan<Extra extends object = object>(n: number, m: number, layout: (z: Float32Array) => ModelBuild, extra?: Extra): ModelPlan & Extra {
  const start = (z: Float32Array): ModelBuild => {
    if (z.length !== n * m) throw new RangeError(`z holds ${z.length} values, the model needs ${n * m}`);
    return layout(z);
  };
  const build = (z: Float32Array): Model => {
    const run = start(z);
    while (run.step());
    return run.model;
  };
  return { ...(extra as Extra), n, m, build, start, skeleton: () => layout(new Float32Array(0)).model };
}
