/**
 * How many kernel threads a job runs on: the request (default one per core),
 * at most THREADS_PER_CORE per core, and never more than the job's main
 * tiles, so no thread starts with nothing to compute. The pool starts before
 * the kernel is known, so tiles are counted with the largest block any
 * candidate kernel would choose (the fewest tiles); with those threads the
 * plan then has at least that many.
 */
import type { Model } from '../shared/core/index.js';
import type { JobPairInput } from '../shared/job/index.js';
import { defaultBlockSize, splitBlocks } from '../shared/tiles/index.js';
import type { KernelChoice } from '../worker/kernel-options.js';
import { defaultThreads, maxThreads } from '../worker/pool.js';

export { THREADS_PER_CORE } from '../worker/pool.js';

export interface JobShape {
  readonly models: readonly Pick<Model, 'm' | 'n' | 'layers'>[];
  readonly pairs: readonly JobPairInput[];
  /** Per model, where blocks must be cut (shard starts). */
  readonly cuts?: readonly (readonly number[])[];
  /** Neurons per block, when set; otherwise chosen per kernel as the embedded run does. */
  readonly block?: number;
}

const KERNELS: Readonly<Record<KernelChoice, readonly string[]>> = {
  auto: ['native', 'tfjs', 'reference'],
  native: ['native'],
  tfjs: ['tfjs'],
  reference: ['reference'],
};

/** The threads a job runs on, `requested` capped as above. */
export function jobThreads(requested: number | undefined, kernel: KernelChoice, job: JobShape): number {
  let threads = Math.min(requested ?? defaultThreads(), maxThreads());
  for (;;) {
    const tiles = Math.min(...KERNELS[kernel].map((name) => mainTiles(job, name, threads)));
    if (tiles >= threads || threads === 1) return threads;
    threads = Math.max(1, tiles);
  }
}

/** The main tiles of every pair with the block `kernel` would choose at `threads` (the embedded run's choice). */
function mainTiles(job: JobShape, kernel: string, threads: number): number {
  const first = job.pairs[0];
  if (first === undefined) return 0;
  const [f, g] = [job.models[first.f]!, job.models[first.g]!];
  const block = job.block ?? defaultBlockSize({ kernel, m: f.m, nF: f.n, nG: g.n, threads });
  const blocks = job.models.map((model, k) => splitBlocks(model.layers, block, job.cuts?.[k] ?? []).length);
  return job.pairs.reduce((sum, pair) => sum + blocks[pair.f]! * blocks[pair.g]!, 0);
}
