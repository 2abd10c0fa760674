/**
 * A job's reduction state: every pair's per-neuron best matches (and its
 * null's), each model's constant flags as tile results report them, and the
 * set of done tiles. Merging is "larger |rho| wins, then smaller index":
 * commutative, associative and idempotent, so results may arrive in any
 * order, twice, or after a restart (docs/ARCHITECTURE.md, "Invariants").
 */
import { InternalError } from '../errors.js';
import { NullReduction, Reduction, type DirectionState, type LayerInfo, type Model } from '../core/index.js';
import { slicePart, type SuperPart, type TileResult } from '../tiles/index.js';
import { CheckpointChunks, DEFAULT_CHUNK_LENGTH, type Region } from './chunks.js';
import type { Merged, TileOutcome } from './executor.js';
import { operands, superEntries, type JobPlan, type JobTile, type MainTile, type NullTile, type SuperTile } from './plan.js';

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
  /** Super-tiles partly merged: 1 per entry merged, and how many. Not checkpointed: a tile not done is computed again. */
  private readonly partial = new Map<number, { readonly merged: Uint8Array; count: number }>();

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

  /** Folds in an executor's outcome: a kernel tile's result, or a part of a super-tile's. */
  accept(tile: JobTile, outcome: TileOutcome): Merged {
    if (tile.kind === 'super') {
      if (outcome.kind !== 'part') throw new InternalError(`tile ${tile.id} is a super-tile, but its outcome is a kernel tile's`);
      return this.mergePart(tile, outcome.part, outcome.constant);
    }
    if (outcome.kind !== 'tile') throw new InternalError(`tile ${tile.id} is a kernel tile, but its outcome is a super-tile's part`);
    return this.merge(tile, outcome.result, outcome.constant) ? 'done' : 'duplicate';
  }

  /**
   * Folds in a tile's result and, for a main tile, the constant flags of its
   * row neurons then its column neurons. Returns false for a tile that was
   * already done: a duplicate, which merging again would not change.
   */
  merge(tile: MainTile | NullTile, result: TileResult, constant: Uint8Array | null): boolean {
    if (this.done[tile.id] === 1) return false;
    const { rows, cols } = operands(this.plan, tile);
    if (result.rowBest.length !== rows.block.count || result.colBest.length !== cols.block.count) {
      throw new InternalError(
        `tile ${tile.id}: result has ${result.rowBest.length}x${result.colBest.length} entries, expected ${rows.block.count}x${cols.block.count}`,
      );
    }
    const state = this.pairs[tile.pair]!;
    const region = this.regionOfPair[tile.pair]!;
    if (tile.kind === 'main') {
      state.reduction.merge(tile, result);
      this.chunks.mark(region, tile.f.start, tile.f.count);
      this.chunks.mark(region + 1, tile.g.start, tile.g.count);
      if (constant !== null) {
        this.markConstant(rows.model, rows.block.start, constant.subarray(0, rows.block.count));
        this.markConstant(cols.model, cols.block.start, constant.subarray(rows.block.count));
      }
    } else {
      state.nulls!.merge(tile, result.colBest, result.colArg);
      this.chunks.mark(region + 2 + 2 * tile.k + tile.side, tile.sample.start, tile.sample.count);
    }
    this.finish(tile);
    return true;
  }

  /**
   * Folds in a part of a super-tile's result (entries [offset, offset +
   * count) of its F range then G range) with the constant flags of those
   * neurons. The tile is done once parts covering every entry are in, however
   * they were cut; a part whose entries are all in already, or of a done
   * tile, is a duplicate. A part of the wrong shape (it came over the
   * network) is refused with an InternalError.
   */
  mergePart(tile: SuperTile, part: SuperPart, constant: Uint8Array): Merged {
    if (this.done[tile.id] === 1) return 'duplicate';
    const total = superEntries(tile);
    const count = part.best.length;
    const pair = this.plan.pairs[tile.pair]!;
    const [f, g] = [this.plan.models[pair.f]!, this.plan.models[pair.g]!];
    const bad = partProblem(part, constant, total, tile.f.count, f.n, g.n);
    if (bad !== null) throw new InternalError(`super-tile ${tile.id}: ${bad}`);
    const seen = this.partial.get(tile.id) ?? { merged: new Uint8Array(total), count: 0 };
    const fresh = count - seen.merged.subarray(part.offset, part.offset + count).reduce((a, b) => a + b, 0);
    if (fresh === 0) return 'duplicate';
    const { reduction } = this.pairs[tile.pair]!;
    const region = this.regionOfPair[tile.pair]!;
    const nf = tile.f.count;
    const rows = Math.max(0, Math.min(part.offset + count, nf) - part.offset);
    if (rows > 0) {
      const at = tile.f.start + part.offset;
      reduction.forward.mergePart(at, slicePart(part, part.offset, rows), f.layers, g.layers);
      this.chunks.mark(region, at, rows);
      this.markConstant(pair.f, at, constant.subarray(0, rows));
    }
    if (rows < count) {
      const at = tile.g.start + part.offset + rows - nf;
      reduction.backward.mergePart(at, slicePart(part, part.offset + rows, count - rows), g.layers, f.layers);
      this.chunks.mark(region + 1, at, count - rows);
      this.markConstant(pair.g, at, constant.subarray(rows));
    }
    seen.merged.fill(1, part.offset, part.offset + count);
    seen.count += fresh;
    if (seen.count < total) {
      this.partial.set(tile.id, seen);
      return 'part';
    }
    this.partial.delete(tile.id);
    this.finish(tile);
    return 'done';
  }

  private markConstant(model: number, start: number, flags: Uint8Array): void {
    orInto(this.constant[model]!, start, flags);
    this.chunks.mark(this.stateCount + model, start, flags.length);
  }

  /**
   * Undoes what the given tiles merged (their results came from a worker
   * found false): every neuron they touched goes back to no match and not
   * constant, and every tile of the job that touches those neurons is not
   * done any more (a super-tile's parts so far forgotten), so computing those
   * tiles again rebuilds the state exactly. Returns their ids.
   */
  undo(ids: readonly number[]): number[] {
    const touched = new Set<string>();
    const key = (pair: number, dir: number, start: number, count: number) => `${pair}:${dir}:${start}:${count}`;
    const ranges = (tile: JobTile): [number, { start: number; count: number }][] =>
      tile.kind === 'null'
        ? [[2 + 2 * tile.k + tile.side, tile.sample]]
        : [
            [0, tile.f],
            [1, tile.g],
          ];
    for (const id of ids) {
      const tile = this.plan.tiles[id]!;
      for (const [dir, r] of ranges(tile)) touched.add(key(tile.pair, dir, r.start, r.count));
    }
    const cleared = [...touched].map((k) => k.split(':').map(Number) as [number, number, number, number]);
    for (const [pair, dir, start, count] of cleared) {
      this.states()[this.regionOfPair[pair]! + dir]!.clear(start, count);
      this.chunks.mark(this.regionOfPair[pair]! + dir, start, count);
      if (dir < 2) {
        const model = dir === 0 ? this.plan.pairs[pair]!.f : this.plan.pairs[pair]!.g;
        this.constant[model]!.fill(0, start, start + count);
        this.chunks.mark(this.stateCount + model, start, count);
      }
    }
    const overlaps = (pair: number, dir: number, r: { start: number; count: number }) =>
      cleared.some(([p, d, start, count]) => p === pair && d === dir && r.start < start + count && start < r.start + r.count);
    const again: number[] = [];
    for (const tile of this.plan.tiles) {
      // A model's constant flags are any pair's: a cleared range is set again by any tile of any pair over it.
      if (!ranges(tile).some(([dir, r]) => overlaps(tile.pair, dir, r))) continue;
      again.push(tile.id);
      this.partial.delete(tile.id);
      if (this.done[tile.id] !== 1) continue;
      this.done[tile.id] = 0;
      this.chunks.mark(this.stateCount + this.constant.length, tile.id, 1);
      this.count--;
    }
    return again;
  }

  private finish(tile: JobTile): void {
    this.done[tile.id] = 1;
    this.chunks.mark(this.stateCount + this.constant.length, tile.id, 1);
    this.count++;
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

/**
 * What is wrong with a part (null if nothing): its range within the tile's
 * `total` entries (the first `nf` are F neurons, matched in G's `gN`; the
 * rest G neurons, matched in F's `fN`), one flag per entry, every partner
 * a neuron of the other model.
 */
function partProblem(part: SuperPart, constant: Uint8Array, total: number, nf: number, fN: number, gN: number): string | null {
  const count = part.best.length;
  if (count === 0 || part.offset + count > total) return `a part of entries ${part.offset}..${part.offset + count - 1} is not within its ${total} entries`;
  if ([part.arg, part.penRho, part.penArg, constant].some((a) => a.length !== count)) return 'a part whose arrays differ in length';
  for (let k = 0; k < count; k++) {
    const limit = part.offset + k < nf ? gN : fN;
    if (part.arg[k]! >= limit || part.penArg[k]! >= limit)
      return `entry ${part.offset + k} names partner ${Math.max(part.arg[k]!, part.penArg[k]!)}, beyond the other model's ${limit} neurons`;
  }
  return null;
}

function orInto(target: Uint8Array, start: number, flags: Uint8Array): void {
  for (let k = 0; k < flags.length; k++) target[start + k]! |= flags[k]!;
}
