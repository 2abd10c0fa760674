/**
 * Default block sizes (neurons per block). A tile is B x B neurons with m
 * samples each. Per-tile overhead differs by kernel: the float64 reference
 * wants small tiles for cache locality; tfjs pays a per-op dispatch cost and
 * wants large ones, capped so the |F G^T| intermediate (B^2 floats) stays
 * around 16 MiB.
 */
export function defaultBlockSize(kernelName: string, m: number): number {
  if (kernelName.startsWith('tfjs')) return 2048;
  // reference: keep both blocks (2 * B * m * 4 bytes) inside ~256 KiB of L2.
  return clamp(Math.floor((256 * 1024) / (8 * m)), 16, 1024);
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
