/**
 * Computes any tile of a job on a kernel pool: the embedded run and every
 * cluster worker run their tiles through here. It fetches the two operands
 * from the job's model sources (a null tile's sample block is gathered and
 * permuted once, then kept while the other model's blocks pass it), runs the
 * kernel, and returns the result with a main tile's constant flags. A
 * super-tile (cluster runs) is split into kernel tiles across the pool and
 * their results folded, both match modes, into one.
 */
import { DirectionState, gatherSample, penaltyDivisor } from '../shared/core/index.js';
import {
  kernelTiles,
  operands,
  superEntries,
  type JobPlan,
  type JobTile,
  type KernelOutcome,
  type ModelSource,
  type NullTile,
  type PartOutcome,
  type SuperTile,
  type TileOutcome,
} from '../shared/job/index.js';
import type { Range } from '../shared/tiles/index.js';
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

  run(tile: JobTile): Promise<TileOutcome> {
    return tile.kind === 'super' ? this.runSuper(tile) : this.runKernel(tile);
  }

  /**
   * A super-tile: its kernel tiles on the pool (two per thread in flight),
   * folded into one state of its F range's neurons then its G range's, with
   * each kernel tile's depth penalty: the reduction's own merge, so folding
   * here and merging the fold there equals merging every kernel tile there.
   */
  private async runSuper(tile: SuperTile): Promise<PartOutcome> {
    const started = performance.now();
    const pair = this.plan.pairs[tile.pair]!;
    const [f, g] = [this.plan.models[pair.f]!, this.plan.models[pair.g]!];
    const folded = new DirectionState(superEntries(tile));
    const parts = kernelTiles(
      this.plan,
      tile,
      this.sources.map((s) => s.cuts),
    );
    await runTiles(
      parts,
      (part) => this.runKernel(part),
      (part, { result }) => {
        const divisor = penaltyDivisor(f.layers[part.f.layer]!.depth, g.layers[part.g.layer]!.depth);
        folded.merge(part.f.start - tile.f.start, result.rowBest, result.rowArg, divisor);
        folded.merge(tile.f.count + part.g.start - tile.g.start, result.colBest, result.colArg, divisor);
      },
      { concurrency: 2 * this.pool.threads },
    );
    // Every block of the tile has been acquired, so its constant flags are final.
    const constant = this.constantFlags([pair.f, tile.f], [pair.g, tile.g]);
    return { kind: 'part', part: folded.asPart(), constant, seconds: (performance.now() - started) / 1000 };
  }

  /** The constant flags of a model's range, then another's. */
  private constantFlags(...ranges: readonly (readonly [number, Range])[]): Uint8Array {
    const constant = new Uint8Array(ranges.reduce((n, [, r]) => n + r.count, 0));
    let at = 0;
    for (const [model, r] of ranges) {
      constant.set(this.sources[model]!.model.constant.subarray(r.start, r.start + r.count), at);
      at += r.count;
    }
    return constant;
  }

  private async runKernel(tile: Exclude<JobTile, SuperTile>): Promise<KernelOutcome> {
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
        const constant = tile.kind === 'null' ? null : this.constantFlags([rows.model, rows.block], [cols.model, cols.block]);
        return { kind: 'tile', result, constant, seconds };
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
