/**
 * Default block size B (neurons per block; a tile is B x B neurons).
 *
 * Two forces set B. Each tile pays a fixed cost (a thread hand-off, packing
 * both blocks into panels), so a tile should carry enough work to hide it:
 * the native kernel aims for about 4 GFLOP per tile (2 B^2 m = 4e9, about
 * 20 ms per core): at M = 1024 smaller tiles measurably lose to packing. And the pool needs enough tiles to keep every thread busy:
 * B is capped so there are at least 16 tiles per thread. The native kernel
 * blocks for the caches inside a tile (its G chunk is sized from L2), so B
 * does not depend on cache sizes. B is rounded up to a multiple of 96, a
 * whole number of register panels for both SIMD variants (12 and 32; 6 and 16).
 *
 * tfjs pays a large per-op cost and wants big tiles, capped at 2048 so the
 * |F G^T| intermediate stays at 16 MiB. The float64 reference keeps both
 * blocks within about 256 KiB.
 */
export interface BlockingInput {
  readonly kernel: string;
  readonly m: number;
  readonly nF: number;
  readonly nG: number;
  readonly threads: number;
}

const PANEL = 96;
const roundUp = (v: number, step: number) => Math.ceil(v / step) * step;
const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

export function defaultBlockSize({ kernel, m, nF, nG, threads }: BlockingInput): number {
  const balanced = Math.ceil(Math.sqrt((nF * nG) / (16 * threads)));
  if (kernel.startsWith('native')) {
    const work = Math.sqrt(2e9 / m);
    return roundUp(clamp(Math.min(work, balanced), PANEL, 8192), PANEL);
  }
  if (kernel.startsWith('tfjs')) return clamp(balanced, 64, 2048);
  return clamp(Math.min(balanced, Math.floor((256 * 1024) / (8 * m))), 16, 1024);
}
