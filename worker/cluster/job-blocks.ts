/**
 * A cluster worker's view of one job: both models planned exactly as the
 * coordinator planned them, and their blocks. Shard sets stream through a
 * ShardStream bounded in bytes; other sets are standardized whole, once.
 */
import { planNull, type NullModel, type NullPlan } from '../../shared/core/index.js';
import { planPair } from '../../shared/formats/index.js';
import type { JobSpec } from '../../shared/cluster/index.js';
import { isShardPlan } from '../../shared/formats/index.js';
import { ShardStream } from '../../shared/formats/index.js';
import type { ModelPlan } from '../../shared/formats/index.js';
import { hugePageAllocate, nativeLoops, type NativeLoopsOptions } from '../native/assist.js';

export interface SideBlocks {
  /** The side's layout (layers, sizes, constant flags), values aside. */
  readonly model: NullModel;
  /** Where blocks must be cut (shard starts). */
  readonly cuts: readonly number[];
  acquire(start: number, count: number): Float32Array;
  release(start: number): void;
  /** Constant flags; those of a block are final once it has been acquired. */
  readonly constant: Uint8Array;
  /** Bytes this side holds at most. */
  readonly bytes: number;
  readonly hits: () => { hits: number; loads: number };
}

export interface JobBlocks {
  readonly spec: JobSpec;
  readonly m: number;
  readonly f: SideBlocks;
  readonly g: SideBlocks;
  /** The permutation null as the coordinator planned it (samples and permutations from the same seed). */
  readonly nullPlan: NullPlan | null;
}

/**
 * Builds a side. `beat` runs between layers of a whole-model build, so the
 * tile that triggered it keeps its JetStream lease (in-progress acks).
 */
async function side(path: string, plan: ModelPlan, budget: number, beat: () => void, native: NativeLoopsOptions): Promise<SideBlocks> {
  if (isShardPlan(plan)) {
    const stream = new ShardStream(path, plan, budget);
    return {
      model: stream.model,
      cuts: stream.cuts,
      acquire: (start, count) => stream.acquire(start, count),
      release: (start) => stream.release(start),
      constant: stream.model.constant,
      bytes: budget,
      hits: () => ({ hits: stream.stats.hits, loads: stream.stats.loads }),
    };
  }
  const z = new Float32Array(hugePageAllocate(plan.n * plan.m * 4, native));
  const build = plan.start(z);
  while (build.step()) {
    beat();
    await new Promise((resolve) => setImmediate(resolve));
  }
  const m = plan.m;
  return {
    model: build.model,
    cuts: [],
    acquire: (start, count) => z.subarray(start * m, (start + count) * m),
    release: () => undefined,
    constant: build.model.constant,
    bytes: z.byteLength,
    hits: () => ({ hits: 0, loads: 0 }),
  };
}

/** Opens a job whose inputs are at `fPath` and `gPath` on this machine; `cacheBytes` bounds streamed shard data. */
export async function openJob(
  spec: JobSpec,
  fPath: string,
  gPath: string,
  cacheBytes: number,
  beat: () => void,
  native: NativeLoopsOptions = {},
): Promise<JobBlocks> {
  const loops = nativeLoops(native);
  const plans = planPair(fPath, gPath, { ...spec.pair, ...(loops ? { loops } : {}) });
  if (plans.f.m !== spec.m || plans.f.n !== spec.n[0] || plans.g.n !== spec.n[1]) {
    throw new Error(
      `job ${spec.job}: this worker plans ${plans.f.n}x${plans.g.n} neurons at m=${plans.f.m}, the coordinator ${spec.n[0]}x${spec.n[1]} at m=${spec.m}; are both reading the same files?`,
    );
  }
  const f = await side(fPath, plans.f, cacheBytes / 2, beat, native);
  const g = await side(gPath, plans.g, cacheBytes / 2, beat, native);
  const nullPlan = spec.null.permutations > 0 ? planNull(f.model, g.model, spec.null, spec.block, [f.cuts, g.cuts], spec.tiles) : null;
  return { spec, m: spec.m, f, g, nullPlan };
}
