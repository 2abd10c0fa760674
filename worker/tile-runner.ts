/**
 * Computes any tile of a job on a kernel pool: the embedded run and every
 * cluster worker run their tiles through here. It fetches the two operands
 * from the job's model sources (a null tile's sample block is gathered and
 * permuted once, then kept while the other model's blocks pass it), runs the
 * kernel, and returns the result with a main tile's constant flags. A
 * super-tile (a main tile of several blocks a side, cluster runs) is split
 * into kernel tiles across the pool and their results folded into one.
 */
import { gatherSample } from '../shared/core/index.js';
import {
  kernelTiles,
  operands,
  type JobPlan,
  type JobTile,
  type MainTile,
  type ModelSource,
  type NullTile,
  type Operand,
  type TileOutcome,
} from '../shared/job/index.js';
import { emptyTileResult, foldTileResult } from '../shared/tiles/index.js';
import { GatherCache } from './gather-cache.js';
import type { EmbeddedPool } from './pool.js';
import { runTiles } from './run-tiles.js';

/** Kernel keys promise "same rows block as another tile with this key": model and start, plus a per-job base (under 2^53). */
const MODEL_KEY = 2 ** 32;

/**
 * Bytes of gathered null samples kept beyond the tiles in flight. A miss
 * re-gathers one block (a copy of count x m floats) for a tile of
 * 2 x count x (up to 4 blocks) x m FLOPs, so a small cache costs little
 * even when one permutation's sample does not fit.
 */
export const GATHER_BUDGET = 64 * 1024 * 1024;

export class TileRunner {
  private readonly gathered: GatherCache;

  /**
   * `keyBase` separates jobs that share a pool (a cluster worker serves many):
   * a multiple of 2^40 below 2^53.
   */
  constructor(
    private readonly pool: EmbeddedPool,
    private readonly plan: JobPlan,
    private readonly sources: readonly ModelSource[],
    private readonly keyBase = 0,
  ) {
    // Every sample block of one permutation and side (the unit the null's tiles are ordered by), within GATHER_BUDGET.
    const m = plan.models[0]?.m ?? 0;
    const largest = Math.max(0, ...plan.pairs.flatMap((p) => p.null?.samples.map((s) => s.indices.length) ?? []));
    const slot = Math.max(1, Math.min(plan.block, largest)) * m;
    this.gathered = new GatherCache(slot, Math.max(1, Math.floor(Math.min(2 * largest * m, GATHER_BUDGET / 4) / slot)));
  }

  async run(tile: JobTile): Promise<TileOutcome> {
    if (tile.kind === 'main') {
      const parts = kernelTiles(
        this.plan,
        tile,
        this.sources.map((s) => s.cuts),
      );
      if (parts.length > 1) return this.runSuper(tile, parts);
    }
    return this.runKernel(tile);
  }

  /** A super-tile: its kernel tiles on the pool (two per thread in flight), folded into one result of its F range and G range. */
  private async runSuper(tile: MainTile, parts: readonly MainTile[]): Promise<TileOutcome> {
    const started = performance.now();
    const result = emptyTileResult(tile.f.count, tile.g.count);
    await runTiles(
      parts,
      (part) => this.runKernel(part),
      (part, outcome) => foldTileResult(result, part.f.start - tile.f.start, part.g.start - tile.g.start, outcome.result),
      { concurrency: 2 * this.pool.threads },
    );
    // Every block of the tile has been acquired, so its constant flags are final.
    const { rows, cols } = operands(this.plan, tile);
    return { result, constant: this.constantFlags(rows, cols), seconds: (performance.now() - started) / 1000 };
  }

  private constantFlags(rows: Operand, cols: Operand): Uint8Array {
    const constant = new Uint8Array(rows.block.count + cols.block.count);
    constant.set(this.sources[rows.model]!.model.constant.subarray(rows.block.start, rows.block.start + rows.block.count));
    constant.set(this.sources[cols.model]!.model.constant.subarray(cols.block.start, cols.block.start + cols.block.count), rows.block.count);
    return constant;
  }

  private async runKernel(tile: JobTile): Promise<TileOutcome> {
    const { rows, cols } = operands(this.plan, tile);
    const m = this.plan.models[rows.model]!.m;
    const rowSource = this.sources[rows.model]!;
    const colSource = this.sources[cols.model]!;
    const rowValues = rowSource.acquire(rows.block.start, rows.block.count);
    try {
      const colValues = tile.kind === 'null' ? this.sample(tile, colSource, m) : colSource.acquire(cols.block.start, cols.block.count);
      try {
        const started = performance.now();
        const fKey = this.keyBase + rows.model * MODEL_KEY + rows.block.start + 1;
        const result = await this.pool.run({
          f: rowValues,
          g: colValues,
          fCount: rows.block.count,
          gCount: cols.block.count,
          m,
          fStart: rows.block.start,
          gStart: cols.block.start,
          fKey,
        });
        const seconds = (performance.now() - started) / 1000;
        return { result, constant: tile.kind === 'null' ? null : this.constantFlags(rows, cols), seconds };
      } finally {
        if (tile.kind === 'main') colSource.release(cols.block.start);
        else this.gathered.release(sampleKey(tile));
      }
    } finally {
      rowSource.release(rows.block.start);
    }
  }

  /** The tile's sample block, permuted, from a small cache of recycled buffers (pinned until the tile is done). */
  private sample(tile: NullTile, source: ModelSource, m: number): Float32Array {
    const plan = this.plan.pairs[tile.pair]!.null!;
    return this.gathered.acquire(sampleKey(tile), tile.sample.count * m, (out) => {
      // Each row is copied from the source's kept copy, or from the source in place, then let go.
      let held: number | null = null;
      const row = (i: number): Float32Array => {
        if (held !== null) source.release(held);
        held = null;
        const kept = source.row(i);
        if (kept !== null) return kept;
        held = i;
        return source.acquire(i, 1);
      };
      try {
        gatherSample(plan, tile, row, out);
      } finally {
        if (held !== null) source.release(held);
      }
    });
  }
}

const sampleKey = (tile: NullTile): string => `${tile.pair}:${tile.k}:${tile.side}:${tile.sample.start}`;
