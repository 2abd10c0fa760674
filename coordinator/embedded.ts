/**
 * Embedded execution: one process, a piscina pool with one thread per core,
 * both models' z arrays shared with every thread through SharedArrayBuffer.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Model } from '../shared/model.js';
import type { Reduction } from '../shared/reduce.js';
import { defaultBlockSize } from '../shared/blocking.js';
import { planTiles, splitBlocks, tileResultView, type Tile } from '../shared/tile.js';
import type { KernelChoice } from '../worker/loader.js';
import { KernelUnavailableError } from '../shared/errors.js';
import type { KernelDescription, PoolData, PoolTask } from '../worker/pool-worker.js';
import { runTiles } from './engine.js';

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

export async function runEmbedded(f: Model, g: Model, options: EmbeddedOptions): Promise<EmbeddedResult> {
  const threads = options.threads ?? defaultThreads();
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  const { Piscina } = await import('piscina');
  const workerData: PoolData = { kernel: options.kernel, fz: f.z, gz: g.z, m: f.m };
  const pool = new Piscina<PoolTask, KernelDescription | ArrayBuffer>({
    filename: WORKER,
    workerData,
    minThreads: threads,
    maxThreads: threads,
    idleTimeout: 1000,
  });
  try {
    const described = (await pool.run({ kind: 'describe' })) as KernelDescription;
    if ('error' in described) throw new KernelUnavailableError(described.error);
    const kernel = described;
    const block = options.block ?? defaultBlockSize({ kernel: kernel.name, m: f.m, nF: f.n, nG: g.n, threads });
    const plan = planTiles(splitBlocks(f.layers, block), splitBlocks(g.layers, block));
    const tiles = options.order ? options.order(plan) : plan;
    options.onStart?.({ kernel, tiles: tiles.length, block, threads });
    const compute = async (tile: Tile) => {
      const task: PoolTask = { kind: 'tile', fStart: tile.f.start, fCount: tile.f.count, gStart: tile.g.start, gCount: tile.g.count };
      const buffer = (await pool.run(task)) as ArrayBuffer;
      return tileResultView(buffer, tile.f.count, tile.g.count);
    };
    const onTile = options.onTile;
    const reduction = await runTiles(f, g, tiles, compute, { concurrency: threads * 2, ...(onTile ? { onTile } : {}) });
    return { reduction, kernel, tiles: tiles.length, block, threads };
  } finally {
    await pool.destroy();
  }
}
