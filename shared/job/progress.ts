/**
 * A job's reduction state: every pair's per-neuron best matches (and its
 * null's), each model's constant flags as tile results report them, and the
 * set of done tiles. Merging is "larger |rho| wins, then smaller index":
 * commutative, associative and idempotent, so results may arrive in any
 * order, twice, or after a restart (docs/ARCHITECTURE.md, "Invariants").
 */
import { InternalError } from '../errors.js';
import { NullReduction, Reduction, type DirectionState, type LayerInfo, type Model } from '../core/index.js';
import type { TileResult } from '../tiles/index.js';
import { CheckpointChunks, DEFAULT_CHUNK_LENGTH, type Region } from './chunks.js';
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
  /** The chunks merges wrote since the last checkpoint took them. */
  readonly chunks: CheckpointChunks;
  /** Per pair: the chunk region of its forward state (backward is next, then the null's states[k][side] in order). */
  private readonly regionOfPair: number[] = [];
  /** Chunk regions: every direction state, then each model's constant flags, then the done set. */
  private readonly stateCount: number;
  private count = 0;

  constructor(
    readonly plan: JobPlan,
    chunkLength = DEFAULT_CHUNK_LENGTH,
  ) {
    this.done = new Uint8Array(plan.tiles.length);
    this.constant = plan.models.map((m) => new Uint8Array(m.n));
    const shape = (model: number) => ({ n: plan.models[model]!.n, layers: plan.models[model]!.layers, constant: this.constant[model]! });
    this.pairs = plan.pairs.map((pair) => {
      const reduction = new Reduction(shape(pair.f), shape(pair.g));
      return { reduction, nulls: pair.null === null ? null : new NullReduction(pair.null, reduction.f, reduction.g) };
    });
    const regions: Region[] = [];
    for (const s of this.pairs) {
      this.regionOfPair.push(regions.length);
      for (const d of [s.reduction.forward, s.reduction.backward, ...(s.nulls?.states.flat() ?? [])]) {
        regions.push({ arrays: [d.best, d.pen, d.penRho, d.arg, d.penArg] });
      }
    }
    this.stateCount = regions.length;
    for (const c of this.constant) regions.push({ arrays: [c] });
    regions.push({ arrays: [this.done], eager: true });
    this.chunks = new CheckpointChunks(regions, chunkLength);
  }

  /** Every direction state of the job, in a fixed order: per pair forward, backward, then its null's. */
  states(): DirectionState[] {
    return this.pairs.flatMap((s) => [s.reduction.forward, s.reduction.backward, ...(s.nulls?.states.flat() ?? [])]);
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
    const region = this.regionOfPair[tile.pair]!;
    const states = this.stateCount;
    if (tile.kind === 'main') {
      state.reduction.merge(tile, result);
      this.chunks.mark(region, tile.f.start, tile.f.count);
      this.chunks.mark(region + 1, tile.g.start, tile.g.count);
      if (constant !== null) {
        orInto(this.constant[rows.model]!, rows.block.start, constant.subarray(0, rows.block.count));
        orInto(this.constant[cols.model]!, cols.block.start, constant.subarray(rows.block.count));
        this.chunks.mark(states + rows.model, rows.block.start, rows.block.count);
        this.chunks.mark(states + cols.model, cols.block.start, cols.block.count);
      }
    } else {
      state.nulls!.merge(tile, result.colBest, result.colArg);
      this.chunks.mark(region + 2 + 2 * tile.k + tile.side, tile.sample.start, tile.sample.count);
    }
    this.done[tile.id] = 1;
    this.chunks.mark(states + this.constant.length, tile.id, 1);
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
