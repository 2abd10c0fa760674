/**
 * A piscina pool of kernel threads. Blocks reach the threads as
 * SharedArrayBuffer views (never copied) and results come back as one moved
 * buffer per tile.
 */
import { availableParallelism } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { KernelUnavailableError } from '../shared/errors.js';
import { tileResultView, type TileResult } from '../shared/tiles/index.js';
import type { KernelOptions } from './kernel-options.js';
import type { TileInput } from './kernel.js';
import { LOADED, type KernelDescription, type PoolData, type PoolTask } from './pool-protocol.js';

export interface LoadedKernelInfo {
  readonly name: string;
  readonly notes: readonly string[];
}

const WORKER = fileURLToPath(new URL('./pool-worker.js', import.meta.url));

export function defaultThreads(): number {
  return availableParallelism();
}

/** More kernel threads than 4 per core only add memory and contention (an embedded run, coordinator/threads.ts, and a worker cap them so). */
export const THREADS_PER_CORE = 4;

/** The most kernel threads this machine runs: THREADS_PER_CORE per core. */
export const maxThreads = (): number => THREADS_PER_CORE * defaultThreads();

/** A warm (or warming) pool of kernel threads. */
export interface EmbeddedPool {
  readonly threads: number;
  /** Resolves once a thread has tried to load its kernel. */
  readonly kernel: Promise<LoadedKernelInfo>;
  /** Runs one tile: rows and columns are block views (never copied), `fKey` as in TileInput. */
  run(input: TileInput): Promise<TileResult>;
  /** Resolves once every thread is idle: started, kernel loaded, queue empty. */
  warm(): Promise<void>;
  /** Waits for threads still starting (a thread stopped while it loads modules can abort the process), then stops them. */
  destroy(): Promise<void>;
}

/** Starts the threads at once, so they load their kernel while the caller reads and standardizes the models. */
export async function startPool(kernel: KernelOptions, threads = defaultThreads()): Promise<EmbeddedPool> {
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  const { Piscina } = await import('piscina');
  const workerData: PoolData = { kernel };
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
  // Piscina counts its first threads as ready before they have loaded anything.
  let loaded = 0;
  pool.on('message', (message: unknown) => void (message === LOADED && loaded++));
  const allIdle = async () => {
    await described.catch(() => undefined);
    for (let waited = 0; (loaded < threads || pool.idleThreads < threads) && waited < 10_000; waited += 5) await delay(5);
  };
  return {
    threads,
    kernel: described,
    async run(input) {
      return tileResultView((await pool.run({ kind: 'tile', ...input })) as ArrayBuffer, input.fCount, input.gCount);
    },
    async warm() {
      await described;
      await allIdle();
    },
    async destroy() {
      await allIdle();
      await pool.destroy();
    },
  };
}
