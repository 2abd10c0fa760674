/**
 * Embedded execution: one process, a piscina pool with one thread per core,
 * both models' z arrays shared with every thread through SharedArrayBuffer.
 */
import { availableParallelism } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Model } from '../shared/model.js';
import type { Reduction } from '../shared/reduce.js';
import { defaultBlockSize } from '../shared/blocking.js';
import { planTiles, splitBlocks, tileResultView, type Tile, type TileResult } from '../shared/tile.js';
import type { KernelChoice } from '../worker/loader.js';
import { KernelUnavailableError } from '../shared/errors.js';
import type { KernelDescription, PoolData, PoolTask } from '../worker/pool-worker.js';
import { runTiles } from './engine.js';
import type { BlockSource } from './shard-stream.js';

export interface LoadedKernelInfo {
  readonly name: string;
  readonly notes: readonly string[];
}

export interface EmbeddedOptions {
  readonly kernel: KernelChoice;
  /** Worker threads; default one per core. */
  readonly threads?: number;
  /** Neurons per block; default chosen from the kernel and m. */
  readonly block?: number;
  /** Reorders the plan before it runs (tests use it to shuffle arrival order). */
  readonly order?: (tiles: Tile[]) => Tile[];
  readonly onStart?: (info: { kernel: LoadedKernelInfo; tiles: number; block: number; threads: number }) => void;
  readonly onTile?: (done: number, tile: Tile) => void;
  /** Wait until every thread is up before the first tile (for timing the kernel alone). */
  readonly warm?: boolean;
  /** Models streamed from shard sets: blocks come from these instead of the pool's z buffers. */
  readonly sources?: { readonly f?: BlockSource; readonly g?: BlockSource };
  /** Holds a tile back until its inputs are ready (used to overlap loading with compute). */
  readonly gate?: (tile: Tile) => Promise<void> | null;
}

export interface EmbeddedResult {
  readonly reduction: Reduction;
  readonly kernel: LoadedKernelInfo;
  readonly tiles: number;
  readonly block: number;
  readonly threads: number;
}

const WORKER = fileURLToPath(new URL('../worker/pool-worker.js', import.meta.url));

export function defaultThreads(): number {
  return availableParallelism();
}

/** A warm (or warming) pool holding both models' z buffers. */
export interface EmbeddedPool {
  readonly threads: number;
  /** Resolves once every thread has tried to load its kernel. */
  readonly kernel: Promise<LoadedKernelInfo>;
  /** Runs a tile; `f`/`g` are the blocks when they are not in the pool's z buffers. */
  run(tile: Tile, f?: Float32Array, g?: Float32Array): Promise<TileResult>;
  /** Resolves once every thread is idle: started, kernel loaded, queue empty. */
  warm(): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * Starts the threads at once, so they load their kernel while the caller is
 * still filling `fz` and `gz` (they are shared, not copied).
 */
export async function startPool(fz: Float32Array, gz: Float32Array, m: number, kernel: KernelChoice, threads = defaultThreads()): Promise<EmbeddedPool> {
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
    async run(tile, f, g) {
      const task: PoolTask = {
        kind: 'tile',
        fStart: tile.f.start,
        fCount: tile.f.count,
        gStart: tile.g.start,
        gCount: tile.g.count,
        ...(f ? { f } : {}),
        ...(g ? { g } : {}),
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

/** Runs every tile of f x g on the pool (started here unless given) and destroys it. */
export async function runEmbedded(f: Model, g: Model, options: EmbeddedOptions, started?: EmbeddedPool): Promise<EmbeddedResult> {
  const pool = started ?? (await startPool(f.z, g.z, f.m, options.kernel, options.threads));
  try {
    const kernel = await pool.kernel;
    const threads = pool.threads;
    // Benchmarks time from a pool whose every thread has loaded its kernel.
    if (options.warm) await pool.warm();
    const block = options.block ?? defaultBlockSize({ kernel: kernel.name, m: f.m, nF: f.n, nG: g.n, threads });
    const sources = options.sources ?? {};
    const plan = planTiles(splitBlocks(f.layers, block, sources.f?.cuts), splitBlocks(g.layers, block, sources.g?.cuts));
    const tiles = options.order ? options.order(plan) : plan;
    options.onStart?.({ kernel, tiles: tiles.length, block, threads });
    const { onTile, gate } = options;
    const compute = async (tile: Tile): Promise<TileResult> => {
      const fBlock = sources.f?.acquire(tile.f.start, tile.f.count);
      const gBlock = sources.g?.acquire(tile.g.start, tile.g.count);
      try {
        return await pool.run(tile, fBlock, gBlock);
      } finally {
        if (fBlock) sources.f!.release(tile.f.start);
        if (gBlock) sources.g!.release(tile.g.start);
      }
    };
    const reduction = await runTiles(f, g, tiles, compute, {
      concurrency: threads * 2,
      ...(onTile ? { onTile } : {}),
      ...(gate ? { gate } : {}),
    });
    return { reduction, kernel, tiles: tiles.length, block, threads };
  } finally {
    await pool.destroy();
  }
}
