/** The one interface every kernel implements. */
import type { TileResult } from '../shared/tiles/index.js';

export interface TileInput {
  /** F block rows, fCount x m, neuron-major standardized float32. */
  readonly f: Float32Array;
  /** G block rows, gCount x m. */
  readonly g: Float32Array;
  readonly fCount: number;
  readonly gCount: number;
  readonly m: number;
  /** Global index of the first neuron of each block, added to the args. */
  readonly fStart: number;
  readonly gStart: number;
  /**
   * Optional: a nonzero key promising that another tile with the same key
   * has the same F block, so a kernel may reuse its prepared form.
   */
  readonly fKey?: number;
}

export interface Kernel {
  /** What ran, e.g. `reference`, `tfjs-wasm`, `native-avx512`. */
  readonly name: string;
  /**
   * Best |rho| and partner for every row and column of the tile. Ties go to
   * the smallest index. Each dot product must be summed in a fixed order over
   * the m samples, independent of the block bounds.
   */
  computeTile(input: TileInput): TileResult | Promise<TileResult>;
}
