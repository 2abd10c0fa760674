/**
 * Embedded execution: one process, a piscina pool with one thread per core,
 * both models' z arrays shared with every thread through SharedArrayBuffer.
 */
import type { Model } from '../shared/model.js';
import type { Reduction } from '../shared/reduce.js';
import { defaultBlockSize } from '../shared/blocking.js';
import { planTiles, splitBlocks, type Tile, type TileResult } from '../shared/tile.js';
import type { KernelChoice } from '../worker/loader.js';
import { startPool, type EmbeddedPool, type LoadedKernelInfo } from '../worker/pool.js';
import { runTiles } from './engine.js';
import type { BlockSource } from '../shared/shard-stream.js';

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
