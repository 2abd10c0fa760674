/**
 * A job's reduction state: every pair's per-neuron best matches (and its
 * null's), each model's constant flags as tile results report them, and the
 * set of done tiles. Merging is "larger |rho| wins, then smaller index":
 * commutative, associative and idempotent, so results may arrive in any
 * order, twice, or after a restart (docs/ARCHITECTURE.md, "Invariants").
 */
import { InternalError } from '../errors.js';
import { NullReduction, Reduction, type LayerInfo, type Model } from '../core/index.js';
import type { TileResult } from '../tiles/index.js';
import { operands, type JobPlan, type JobTile } from './plan.js';

export interface PairState {
  readonly reduction: Reduction;
  readonly nulls: NullReduction | null;
}

export class JobProgress {
  /** 1 per finished tile. */
  readonly done: Uint8Array;
  /** Per model: 1 where a neuron is constant, OR-ed in from the results of main tiles. */
  readonly constant: readonly Uint8Array[];
  readonly pairs: readonly PairState[];
  private count = 0;

  constructor(readonly plan: JobPlan) {
    this.done = new Uint8Array(plan.tiles.length);
    this.constant = plan.models.map((m) => new Uint8Array(m.n));
    const shape = (model: number) => ({ n: plan.models[model]!.n, layers: plan.models[model]!.layers, constant: this.constant[model]! });
    this.pairs = plan.pairs.map((pair) => {
      const reduction = new Reduction(shape(pair.f), shape(pair.g));
      return { reduction, nulls: pair.null === null ? null : new NullReduction(pair.null, reduction.f, reduction.g) };
    });
  }

  /** Tiles done. */
  get doneTiles(): number {
    return this.count;
  }

  get complete(): boolean {
    return this.count === this.done.length;
  }

  /** Recounts the done set (after it was restored from a checkpoint). */
  recount(): void {
    this.count = this.done.reduce((a, b) => a + b, 0);
  }

  /**
   * Folds in a tile's result and, for a main tile, the constant flags of its
   * row neurons then its column neurons. Returns false for a tile that was
   * already done: a duplicate, which merging again would not change.
   */
  merge(tile: JobTile, result: TileResult, constant: Uint8Array | null): boolean {
    if (this.done[tile.id] === 1) return false;
    const { rows, cols } = operands(this.plan, tile);
    if (result.rowBest.length !== rows.block.count || result.colBest.length !== cols.block.count) {
      throw new InternalError(
        `tile ${tile.id}: result has ${result.rowBest.length}x${result.colBest.length} entries, expected ${rows.block.count}x${cols.block.count}`,
      );
    }
    const state = this.pairs[tile.pair]!;
    if (tile.kind === 'main') {
      state.reduction.merge(tile, result);
      if (constant !== null) {
        orInto(this.constant[rows.model]!, rows.block.start, constant.subarray(0, rows.block.count));
        orInto(this.constant[cols.model]!, cols.block.start, constant.subarray(rows.block.count));
      }
    } else {
      state.nulls!.merge(tile, result.colBest, result.colArg);
    }
    this.done[tile.id] = 1;
    this.count++;
    return true;
  }

  /** Model `index` with its constant flags, and each layer's count of them. */
  model(index: number): Model {
    const model = this.plan.models[index]!;
    const constant = this.constant[index]!;
    const layers: LayerInfo[] = model.layers.map((l) => {
      let count = 0;
      for (let i = l.start; i < l.start + l.count; i++) count += constant[i]!;
      return { ...l, constant: count };
    });
    return { ...model, layers, constant };
  }
}

function orInto(target: Uint8Array, start: number, flags: Uint8Array): void {
  for (let k = 0; k < flags.length; k++) target[start + k]! |= flags[k]!;
}
