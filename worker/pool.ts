/**
 * A piscina pool of kernel threads. Blocks reach the threads as
 * SharedArrayBuffer views (never copied) and results come back as one moved
 * buffer per tile.
 */
import { availableParallelism } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { KernelUnavailableError } from '../shared/errors.js';
import { tileResultView, type Tile, type TileResult } from '../shared/core/index.js';
import type { KernelOptions } from './loader.js';
import type { KernelDescription, PoolData, PoolTask } from './pool-worker.js';

export interface LoadedKernelInfo {
  readonly name: string;
  readonly notes: readonly string[];
}

const WORKER = fileURLToPath(new URL('./pool-worker.js', import.meta.url));

export function defaultThreads(): number {
  return availableParallelism();
}

/** A warm (or warming) pool holding both models' z buffers. */
export interface EmbeddedPool {
  readonly threads: number;
  /** Resolves once every thread has tried to load its kernel. */
  readonly kernel: Promise<LoadedKernelInfo>;
  /**
   * Runs a tile; `f`/`g` are the blocks when they are not in the pool's z
   * buffers, and `job` gives m and an F-block key for pools that serve many jobs.
   */
  run(tile: Tile, f?: Float32Array, g?: Float32Array, job?: { readonly m: number; readonly fKey: number }): Promise<TileResult>;
  /** Resolves once every thread is idle: started, kernel loaded, queue empty. */
  warm(): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * Starts the threads at once, so they load their kernel while the caller is
 * still filling `fz` and `gz` (they are shared, not copied).
 */
export async function startPool(fz: Float32Array, gz: Float32Array, m: number, kernel: KernelOptions, threads = defaultThreads()): Promise<EmbeddedPool> {
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  const { Piscina } = await import('piscina');
  const workerData: PoolData = { kernel, fz, gz, m };
  // Two tasks queued per thread, so a thread never waits on the main thread for its next tile.
  const pool = new Piscina<PoolTask, KernelDescription | ArrayBuffer>({
    filename: WORKER,
    workerData,
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: 1000,
    concurrentTasksPerWorker: 2,
    atomics: 'disabled',
  });
  const described = pool.run({ kind: 'describe' }).then(async (d) => {
    const description = d as KernelDescription;
    if ('error' in description) throw new KernelUnavailableError(description.error);
    return description;
  });
  described.catch(() => undefined);
  return {
    threads,
    kernel: described,
    async run(tile, f, g, job) {
      const task: PoolTask = {
        kind: 'tile',
        fStart: tile.f.start,
        fCount: tile.f.count,
        gStart: tile.g.start,
        gCount: tile.g.count,
        ...(f ? { f } : {}),
        ...(g ? { g } : {}),
        ...(job ?? {}),
      };
      return tileResultView((await pool.run(task)) as ArrayBuffer, tile.f.count, tile.g.count);
    },
    async warm() {
      await described;
      for (let waited = 0; pool.idleThreads < threads && waited < 10_000; waited += 5) await delay(5);
    },
    destroy: () => pool.destroy(),
  };
}
