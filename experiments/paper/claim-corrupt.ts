/** Two common corruptions of 28 x 28 images in [0, 1]: seeded Gaussian noise and a Gaussian blur. */
import { createRng } from '#dist/shared/core/index.js';
import { PIXELS, SIDE } from './data.js';

/** x + sigma * N(0, 1) per pixel (Box-Muller on a seeded stream), clipped to [0, 1]. */
export function gaussianNoise(images: Float32Array, sigma: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rng()));
    const t = 2 * Math.PI * rng();
    out[i] = Math.min(1, Math.max(0, images[i]! + sigma * r * Math.cos(t)));
    if (i + 1 < images.length) out[i + 1] = Math.min(1, Math.max(0, images[i + 1]! + sigma * r * Math.sin(t)));
  }
  return out;
}

/** The normalized 1-D Gaussian of `size` taps. */
export function gaussianKernel(sigma: number, size: number): Float64Array {
  const half = (size - 1) / 2;
  const k = Float64Array.from({ length: size }, (_, i) => Math.exp(-((i - half) ** 2) / (2 * sigma * sigma)));
  const sum = k.reduce((a, b) => a + b, 0);
  return k.map((v) => v / sum);
}

/** A size x size Gaussian blur as two 1-D passes (rows, then columns), zero outside the image. */
export function gaussianBlur(images: Float32Array, sigma: number, size = 5): Float32Array {
  const k = gaussianKernel(sigma, size);
  const half = (size - 1) / 2;
  const out = new Float32Array(images.length);
  const tmp = new Float64Array(PIXELS);
  for (let o = 0; o < images.length; o += PIXELS) {
    for (let y = 0; y < SIDE; y++)
      for (let x = 0; x < SIDE; x++) {
        let s = 0;
        for (let t = 0; t < size; t++) {
          const xx = x + t - half;
          if (xx >= 0 && xx < SIDE) s += k[t]! * images[o + y * SIDE + xx]!;
        }
        tmp[y * SIDE + x] = s;
      }
    for (let y = 0; y < SIDE; y++)
      for (let x = 0; x < SIDE; x++) {
        let s = 0;
        for (let t = 0; t < size; t++) {
          const yy = y + t - half;
          if (yy >= 0 && yy < SIDE) s += k[t]! * tmp[yy * SIDE + x]!;
        }
        out[o + y * SIDE + x] = s;
      }
  }
  return out;
}
