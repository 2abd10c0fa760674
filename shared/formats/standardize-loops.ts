/** The standardization's inner loops over a chunk of probe rows (standardize.ts), in TypeScript. */

/** Neurons per block in the write pass: their z rows are written side by side, sequentially in t. */
const WRITE_BLOCK = 16;

export type Chunk = Float32Array | Float64Array;

/** Where one chunk of probe rows lies: `pn` probes of `spatial` samples, neuron j's value at p * probeStride + s * spatialStride + cols[j]. */
export interface ChunkLayout {
  readonly data: Chunk;
  readonly pn: number;
  readonly spatial: number;
  readonly probeStride: number;
  readonly spatialStride: number;
  /** Each neuron's offset in a row (an integer, in float64 as the native loops read it). */
  readonly cols: Float64Array;
}

/** s1 += v - shift, s2 += (v - shift)^2, maxAbs = max(maxAbs, |v|), per neuron column (each array one element per neuron). */
export interface AccumulateOptions extends ChunkLayout {
  readonly shift: Float64Array;
  readonly s1: Float64Array;
  readonly s2: Float64Array;
  readonly maxAbs: Float64Array;
}

/** out[j * m + t] = (v - mean) * scale for every non-constant neuron j, t = (p0 + p) * spatial + s. */
export interface WriteOptions extends ChunkLayout {
  /** The chunk's first probe. */
  readonly p0: number;
  readonly mean: Float64Array;
  readonly scale: Float64Array;
  readonly constant: Uint8Array;
  /** cols.length x m values. */
  readonly out: Float32Array;
  readonly m: number;
}

/**
 * The two inner loops over a chunk of probe rows, each taking one options
 * object. A native implementation may replace them if it performs the same
 * float64 operations in the same order per neuron, so that z comes out
 * bit-identical; it checks the types and lengths of what it is given.
 */
export interface StandardizeLoops {
  accumulate(options: AccumulateOptions): void;
  write(options: WriteOptions): void;
}

export const jsLoops: StandardizeLoops = {
  accumulate({ data, pn, spatial, probeStride, spatialStride, cols, shift, s1, s2, maxAbs }) {
    const count = cols.length;
    for (let p = 0; p < pn; p++) {
      for (let s = 0; s < spatial; s++) {
        const off = p * probeStride + s * spatialStride;
        for (let j = 0; j < count; j++) {
          const v = data[off + cols[j]!]!;
          const d = v - shift[j]!;
          s1[j]! += d;
          s2[j]! += d * d;
          const a = Math.abs(v);
          if (a > maxAbs[j]!) maxAbs[j] = a;
        }
      }
    }
  },
  write({ data, p0, pn, spatial, probeStride, spatialStride, cols, mean, scale, constant, out, m }) {
    const count = cols.length;
    for (let j0 = 0; j0 < count; j0 += WRITE_BLOCK) {
      const j1 = Math.min(count, j0 + WRITE_BLOCK);
      for (let p = 0; p < pn; p++) {
        for (let s = 0; s < spatial; s++) {
          const t = (p0 + p) * spatial + s;
          const off = p * probeStride + s * spatialStride;
          for (let j = j0; j < j1; j++) {
            if (constant[j] === 0) out[j * m + t] = (data[off + cols[j]!]! - mean[j]!) * scale[j]!;
          }
        }
      }
    }
  },
};
