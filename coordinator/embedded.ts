/**
 * Embedded execution: one process, a piscina pool with one thread per core,
 * both models' z arrays shared with every thread through SharedArrayBuffer.
 */
import type { Model } from '../shared/core/index.js';
import { NullReduction, gatherSample, nullKey, planNull, type NullOptions, type NullTile } from '../shared/core/index.js';
import { Reduction } from '../shared/core/index.js';
import { defaultBlockSize } from '../shared/core/index.js';
import { planTiles, splitBlocks, type Tile, type TileResult } from '../shared/core/index.js';
import type { KernelOptions } from '../worker/loader.js';
import { startPool, type EmbeddedPool, type LoadedKernelInfo } from '../worker/pool.js';
import { runTiles } from './engine.js';
import type { BlockSource } from '../shared/formats/index.js';

export interface EmbeddedOptions {
  readonly kernel: KernelOptions;
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
  /** The permutation null, run after the main tiles (none when absent or 0 permutations). */
  readonly null?: NullOptions;
}

export interface NullRun {
  readonly reduction: NullReduction;
  readonly tiles: number;
  readonly seconds: number;
}

export interface EmbeddedResult {
  readonly reduction: Reduction;
  readonly kernel: LoadedKernelInfo;
  readonly tiles: number;
  readonly block: number;
  readonly threads: number;
  readonly null: NullRun | null;
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
    const reduction = new Reduction(f, g);
    await runTiles(tiles, compute, (tile, result) => reduction.merge(tile, result), {
      concurrency: threads * 2,
      ...(onTile ? { onTile } : {}),
      ...(gate ? { gate } : {}),
    });
    const nullRun = options.null && options.null.permutations > 0 ? await runNull(f, g, options.null, block, pool, sources, threads) : null;
    return { reduction, kernel, tiles: tiles.length, block, threads, null: nullRun };
  } finally {
    await pool.destroy();
  }
}

/** The null's tiles on the same pool: each sample block gathered (and permuted) here, the other side's block as in the main run. */
async function runNull(
  f: Model,
  g: Model,
  options: NullOptions,
  block: number,
  pool: EmbeddedPool,
  sources: { readonly f?: BlockSource; readonly g?: BlockSource },
  threads: number,
): Promise<NullRun> {
  const started = performance.now();
  const plan = planNull(f, g, options, block, [sources.f?.cuts ?? [], sources.g?.cuts ?? []]);
  const reduction = new NullReduction(plan, f, g);
  const m = f.m;
  const models = [f, g] as const;
  const source = [sources.f, sources.g] as const;
  const row = (side: 0 | 1) => (i: number) => {
    const stream = source[side];
    if (stream === undefined) return models[side].z.subarray(i * m, (i + 1) * m);
    const copy = stream.acquire(i, 1).slice();
    stream.release(i);
    return copy;
  };
  // A sample block is gathered once and serves every block of the other side; freed after its last tile.
  const gathered = new Map<string, { rows: Float32Array; left: number }>();
  const keyOf = (tile: NullTile) => `${tile.k}:${tile.side}:${tile.sample.start}`;
  const otherBlocks = ([0, 1] as const).map((side) => new Set(plan.tiles.filter((t) => t.side === side).map((t) => t.other.start)).size);
  const compute = async (tile: NullTile): Promise<TileResult> => {
    let entry = gathered.get(keyOf(tile));
    if (entry === undefined) {
      const rows = gatherSample(plan, tile, row(tile.side), new Float32Array(new SharedArrayBuffer(tile.sample.count * m * 4)));
      entry = { rows, left: otherBlocks[tile.side]! };
      gathered.set(keyOf(tile), entry);
    }
    const sample = entry.rows;
    const otherSide = tile.side === 0 ? 1 : 0;
    const stream = source[otherSide];
    const other = stream
      ? stream.acquire(tile.other.start, tile.other.count)
      : models[otherSide].z.subarray(tile.other.start * m, (tile.other.start + tile.other.count) * m);
    try {
      return await pool.run({ id: tile.id, f: tile.other, g: tile.sample }, other, sample, { m, fKey: nullKey(tile) });
    } finally {
      stream?.release(tile.other.start);
    }
  };
  const merge = (tile: NullTile, result: TileResult) => {
    reduction.merge(tile, result.colBest, result.colArg);
    const entry = gathered.get(keyOf(tile))!;
    if (--entry.left === 0) gathered.delete(keyOf(tile));
  };
  await runTiles(plan.tiles, compute, merge, { concurrency: threads * 2 });
  return { reduction, tiles: plan.tiles.length, seconds: (performance.now() - started) / 1000 };
}
