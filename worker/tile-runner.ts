/**
 * Computes any tile of a job on a kernel pool: the embedded run and every
 * cluster worker run their tiles through here. It fetches the two operands
 * from the job's model sources (a null tile's sample block is gathered and
 * permuted once, then kept while the other model's blocks pass it), runs the
 * kernel, and returns the result with a main tile's constant flags.
 */
import { gatherSample } from '../shared/core/index.js';
import { operands, type JobPlan, type JobTile, type ModelSource, type NullTile, type TileOutcome } from '../shared/job/index.js';
import type { EmbeddedPool } from './pool.js';

/** Kernel keys promise "same rows block as another tile with this key": model and start, plus a per-job base (under 2^53). */
const MODEL_KEY = 2 ** 32;

export class TileRunner {
  private readonly gathered = new Map<string, Float32Array>();
  private gatheredBytes = 0;
  private readonly gatherBudget: number;

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
    // Enough for every sample block of one permutation and side, the unit the null's tiles are ordered by.
    const m = plan.models[0]?.m ?? 0;
    const largest = Math.max(0, ...plan.pairs.flatMap((p) => p.null?.samples.map((s) => s.indices.length) ?? []));
    this.gatherBudget = 2 * largest * m * 4;
  }

  async run(tile: JobTile): Promise<TileOutcome> {
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
        if (tile.kind === 'null') return { result, constant: null, seconds };
        const constant = new Uint8Array(rows.block.count + cols.block.count);
        constant.set(rowSource.model.constant.subarray(rows.block.start, rows.block.start + rows.block.count));
        constant.set(colSource.model.constant.subarray(cols.block.start, cols.block.start + cols.block.count), rows.block.count);
        return { result, constant, seconds };
      } finally {
        if (tile.kind === 'main') colSource.release(cols.block.start);
      }
    } finally {
      rowSource.release(rows.block.start);
    }
  }

  /** The tile's sample block, permuted, from a small cache bounded in bytes (most recently used last). */
  private sample(tile: NullTile, source: ModelSource, m: number): Float32Array {
    const key = `${tile.pair}:${tile.k}:${tile.side}:${tile.sample.start}`;
    const hit = this.gathered.get(key);
    if (hit !== undefined) {
      this.gathered.delete(key);
      this.gathered.set(key, hit);
      return hit;
    }
    const row = (i: number) => {
      const copy = source.acquire(i, 1).slice();
      source.release(i);
      return copy;
    };
    const plan = this.plan.pairs[tile.pair]!.null!;
    const rows = gatherSample(plan, tile, row, new Float32Array(new SharedArrayBuffer(tile.sample.count * m * 4)));
    for (const [k, v] of this.gathered) {
      if (this.gatheredBytes + rows.byteLength <= this.gatherBudget) break;
      this.gathered.delete(k);
      this.gatheredBytes -= v.byteLength;
    }
    this.gathered.set(key, rows);
    this.gatheredBytes += rows.byteLength;
    return rows;
  }
}
