/**
 * The reduction: per-neuron best matches merged from tile results.
 *
 * Each neuron keeps two (value, partner) pairs: the best |rho| (for `paper`
 * mode, penalized after the fact by its partner's depth) and the best
 * |rho| / (1 + |depth gap|) (for `penalized` mode). Both merge with "larger
 * value wins, then smaller partner index", which is commutative, associative
 * and idempotent, so tiles may arrive in any order, twice, or after a restart.
 */
import { InternalError, UsageError } from '../errors.js';
import { layerIndexOf, type LayerInfo } from './model.js';
import { beats, type SuperPart, type Tile, type TileResult } from '../tiles/index.js';

export type MatchMode = 'paper' | 'penalized';
export type ConstantMode = 'include' | 'exclude';
export const MATCH_MODES: readonly MatchMode[] = ['paper', 'penalized'];

export interface ModelShape {
  readonly n: number;
  readonly layers: readonly LayerInfo[];
  readonly constant: Uint8Array;
}

export const NO_PARTNER = 0xffffffff;

/** What a match between layers of these depths is divided by in penalized mode (and a paper-mode best after the fact). */
export function penaltyDivisor(depth: number, otherDepth: number): number {
  return 1 + Math.abs(depth - otherDepth);
}

/** Best matches of one model's neurons against the other model. */
export class DirectionState {
  readonly best: Float64Array;
  readonly arg: Uint32Array;
  readonly pen: Float64Array;
  readonly penArg: Uint32Array;
  /** |rho| of the penalized-mode partner, kept exactly for audit output. */
  readonly penRho: Float64Array;

  constructor(n: number) {
    this.best = new Float64Array(n).fill(-1);
    this.arg = new Uint32Array(n).fill(NO_PARTNER);
    this.pen = new Float64Array(n).fill(-1);
    this.penArg = new Uint32Array(n).fill(NO_PARTNER);
    this.penRho = new Float64Array(n);
  }

  /** Neurons [start, start + count) back to no match (what a result from a worker found false had merged is undone). */
  clear(start: number, count: number): void {
    const end = start + count;
    this.best.fill(-1, start, end);
    this.arg.fill(NO_PARTNER, start, end);
    this.pen.fill(-1, start, end);
    this.penArg.fill(NO_PARTNER, start, end);
    this.penRho.fill(0, start, end);
  }

  merge(offset: number, bests: Float64Array, args: Uint32Array, divisor: number): void {
    const { best, arg, pen, penArg, penRho } = this;
    for (let k = 0; k < bests.length; k++) {
      const i = offset + k;
      const b = bests[k]!;
      const a = args[k]!;
      if (beats(b, a, best[i]!, arg[i]!)) {
        best[i] = b;
        arg[i] = a;
      }
      const p = b / divisor;
      if (beats(p, a, pen[i]!, penArg[i]!)) {
        pen[i] = p;
        penArg[i] = a;
        penRho[i] = b;
      }
    }
  }

  /**
   * Folds in a super-tile's bests for neurons [start, start + part.best.length)
   * of this model. Each penalized value is recomputed from its |rho| and the
   * depths of the neuron's layer and its partner's, as `merge` computed it
   * where the kernel tile was folded, so the result is the same bit for bit.
   */
  mergePart(start: number, part: SuperPart, self: readonly LayerInfo[], other: readonly LayerInfo[]): void {
    const { best, arg, pen, penArg, penRho } = this;
    let layer = layerIndexOf(self, start);
    let otherLayer = 0;
    for (let k = 0; k < part.best.length; k++) {
      const i = start + k;
      while (i >= self[layer]!.start + self[layer]!.count) layer++;
      const b = part.best[k]!;
      const a = part.arg[k]!;
      if (beats(b, a, best[i]!, arg[i]!)) {
        best[i] = b;
        arg[i] = a;
      }
      const r = part.penRho[k]!;
      const pa = part.penArg[k]!;
      const o = other[otherLayer]!;
      if (pa < o.start || pa >= o.start + o.count) otherLayer = layerIndexOf(other, pa);
      const p = r / penaltyDivisor(self[layer]!.depth, other[otherLayer]!.depth);
      if (beats(p, pa, pen[i]!, penArg[i]!)) {
        pen[i] = p;
        penArg[i] = pa;
        penRho[i] = r;
      }
    }
  }

  /** This state as a super-tile's folded result (a worker folds a super-tile into a state of its F range then G range). */
  asPart(): SuperPart {
    return { offset: 0, best: this.best, arg: this.arg, penRho: this.penRho, penArg: this.penArg };
  }
}

export class Reduction {
  readonly forward: DirectionState;
  readonly backward: DirectionState;

  constructor(
    readonly f: ModelShape,
    readonly g: ModelShape,
  ) {
    this.forward = new DirectionState(f.n);
    this.backward = new DirectionState(g.n);
  }

  merge(tile: Tile, result: TileResult): void {
    if (result.rowBest.length !== tile.f.count || result.colBest.length !== tile.g.count) {
      throw new InternalError(
        `tile ${tile.id}: result has ${result.rowBest.length}x${result.colBest.length} entries, expected ${tile.f.count}x${tile.g.count}`,
      );
    }
    const divisor = penaltyDivisor(this.f.layers[tile.f.layer]!.depth, this.g.layers[tile.g.layer]!.depth);
    this.forward.merge(tile.f.start, result.rowBest, result.rowArg, divisor);
    this.backward.merge(tile.g.start, result.colBest, result.colArg, divisor);
  }
}

export interface DirectionScores {
  readonly forward: number;
  readonly backward: number;
  readonly symmetric: number;
}

/** Per-neuron outcome of one direction, for both match modes. */
export interface NeuronScores {
  /** S(u) in paper mode: best |rho| over 1 + depth gap to the argmax partner. */
  readonly paper: Float64Array;
  /** S(u) in penalized mode. */
  readonly penalized: Float64Array;
  /** Layer index of the paper-mode partner / of the penalized-mode partner, in the other model. */
  readonly paperLayer: Uint32Array;
  readonly penalizedLayer: Uint32Array;
}

export function neuronScores(state: DirectionState, self: ModelShape, other: ModelShape): NeuronScores {
  const n = self.n;
  const paper = new Float64Array(n);
  const penalized = new Float64Array(n);
  const paperLayer = new Uint32Array(n);
  const penalizedLayer = new Uint32Array(n);
  let layer = 0;
  for (let i = 0; i < n; i++) {
    while (i >= self.layers[layer]!.start + self.layers[layer]!.count) layer++;
    if (state.arg[i] === NO_PARTNER) throw new InternalError(`neuron ${i} was never matched: a tile is missing from the reduction`);
    const depth = self.layers[layer]!.depth;
    const pl = layerIndexOf(other.layers, state.arg[i]!);
    paperLayer[i] = pl;
    paper[i] = state.best[i]! / penaltyDivisor(depth, other.layers[pl]!.depth);
    penalizedLayer[i] = layerIndexOf(other.layers, state.penArg[i]!);
    penalized[i] = state.pen[i]!;
  }
  return { paper, penalized, paperLayer, penalizedLayer };
}

/** Mean of `values` over [start, end), in index order, skipping constants when excluded. NaN if empty. */
export function meanOver(values: Float64Array, constant: Uint8Array, mode: ConstantMode, start = 0, end = values.length): number {
  let sum = 0;
  let count = 0;
  for (let i = start; i < end; i++) {
    if (mode === 'exclude' && constant[i] === 1) continue;
    sum += values[i]!;
    count++;
  }
  return count === 0 ? Number.NaN : sum / count;
}

export function directionScores(forward: number, backward: number): DirectionScores {
  return { forward, backward, symmetric: (forward + backward) / 2 };
}

export function scoresFor(
  fScores: NeuronScores,
  gScores: NeuronScores,
  f: ModelShape,
  g: ModelShape,
  constantMode: ConstantMode,
): Record<MatchMode, DirectionScores> {
  const out = {} as Record<MatchMode, DirectionScores>;
  for (const mode of MATCH_MODES) {
    const forward = meanOver(fScores[mode], f.constant, constantMode);
    const backward = meanOver(gScores[mode], g.constant, constantMode);
    if (Number.isNaN(forward) || Number.isNaN(backward)) {
      throw new UsageError((o) => `${o('constant')} exclude leaves no neuron to average: every neuron of one model is constant; use ${o('constant')} include`);
    }
    out[mode] = directionScores(forward, backward);
  }
  return out;
}
