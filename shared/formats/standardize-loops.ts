/** The standardization's inner loops over a chunk of probe rows (standardize.ts), in TypeScript. */

/** Neurons per block in the write pass: their z rows are written side by side, sequentially in t. */
const WRITE_BLOCK = 16;

export type Chunk = Float32Array | Float64Array;

/**
 * The two inner loops over a chunk of probe rows. A native implementation may
 * replace them if it performs the same float64 operations in the same order
 * per neuron, so that z comes out bit-identical.
 */
export interface StandardizeLoops {
  /** s1 += v - shift, s2 += (v - shift)^2, maxAbs = max(maxAbs, |v|), per neuron column. */
  accumulate(
    data: Chunk,
    pn: number,
    spatial: number,
    probeStride: number,
    spatialStride: number,
    cols: Float64Array,
    shift: Float64Array,
    s1: Float64Array,
    s2: Float64Array,
    maxAbs: Float64Array,
  ): void;
  /** out[j * m + t] = (v - mean) * scale for every non-constant neuron j. */
  write(
    data: Chunk,
    p0: number,
    pn: number,
    spatial: number,
    probeStride: number,
    spatialStride: number,
    cols: Float64Array,
    mean: Float64Array,
    scale: Float64Array,
    constant: Uint8Array,
    out: Float32Array,
    m: number,
  ): void;
}

export const jsLoops: StandardizeLoops = {
  accumulate(data, pn, spatial, probeStride, spatialStride, cols, shift, s1, s2, maxAbs) {
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
  write(data, p0, pn, spatial, probeStride, spatialStride, cols, mean, scale, constant, out, m) {
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
