/** The permutation null's reduction: the best matches of every sampled neuron, per permutation and side. */
import type { NullPlan, NullWork } from './null-plan.js';
import { DirectionState, penaltyDivisor, type ModelShape } from './reduce.js';

/** Best matches of every sampled neuron, per permutation and side. */
export class NullReduction {
  /** states[k][side] */
  readonly states: (readonly [DirectionState, DirectionState])[];

  constructor(
    readonly plan: NullPlan,
    readonly f: ModelShape,
    readonly g: ModelShape,
  ) {
    const [sf, sg] = plan.samples;
    this.states = plan.perms.map(() => [new DirectionState(sf.indices.length), new DirectionState(sg.indices.length)] as const);
  }

  /** Folds in the best matches of a sample block (`bests[i]` for its i-th neuron), layer by layer of the sample. */
  merge(tile: Pick<NullWork, 'k' | 'side' | 'sample' | 'other'>, bests: Float64Array, args: Uint32Array): void {
    const otherDepth = (tile.side === 0 ? this.g : this.f).layers[tile.other.layer]!.depth;
    const { start, count } = tile.sample;
    for (const layer of this.plan.samples[tile.side].layers) {
      const from = Math.max(start, layer.start);
      const to = Math.min(start + count, layer.start + layer.count);
      if (from >= to) continue;
      const divisor = penaltyDivisor(layer.depth, otherDepth);
      this.states[tile.k]![tile.side].merge(from, bests.subarray(from - start, to - start), args.subarray(from - start, to - start), divisor);
    }
  }
}
