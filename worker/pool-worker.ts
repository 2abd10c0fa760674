/**
 * Piscina thread entry for embedded runs. Both models' z arrays arrive once,
 * as SharedArrayBuffer views in workerData; a task names two blocks, and the
 * thread reads them in place.
 */
import { move, workerData } from 'piscina';
import type { Kernel } from './kernel.js';
import { loadKernel, type KernelOptions } from './loader.js';

export interface PoolData {
  readonly kernel: KernelOptions;
  readonly fz: Float32Array;
  readonly gz: Float32Array;
  readonly m: number;
}

export type PoolTask =
  | { readonly kind: 'describe' }
  | {
      readonly kind: 'tile';
      readonly fStart: number;
      readonly fCount: number;
      readonly gStart: number;
      readonly gCount: number;
      /** The blocks themselves (SharedArrayBuffer views), for models streamed from shards rather than held in workerData. */
      readonly f?: Float32Array;
      readonly g?: Float32Array;
      /** For pools shared by several jobs (cluster workers): the job's m, and a key unique to the job's F block. */
      readonly m?: number;
      readonly fKey?: number;
    };

export type KernelDescription = { readonly name: string; readonly notes: readonly string[] } | { readonly error: string };

const data = workerData as PoolData;
// A load failure is reported through 'describe': errors crossing the thread boundary lose their type.
const loaded = await loadKernel(data.kernel).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));

export default async function run(task: PoolTask): Promise<KernelDescription | ArrayBuffer> {
  if (loaded instanceof Error) {
    if (task.kind === 'describe') return { error: loaded.message };
    throw loaded;
  }
  const kernel: Kernel = loaded.kernel;
  if (task.kind === 'describe') return { name: kernel.name, notes: loaded.notes };
  const { fStart, fCount, gStart, gCount } = task;
  const m = task.m ?? data.m;
  const result = await kernel.computeTile({
    f: task.f ?? data.fz.subarray(fStart * m, (fStart + fCount) * m),
    g: task.g ?? data.gz.subarray(gStart * m, (gStart + gCount) * m),
    fCount,
    gCount,
    m,
    fStart,
    gStart,
    // Within one job z never changes, so an F block is identified by where it starts.
    fKey: task.fKey ?? fStart + 1,
  });
  return move(result.rowBest.buffer as ArrayBuffer) as unknown as ArrayBuffer;
}
