/** Random models for benchmarks: in memory for kernel timing (values do not change a kernel's speed), or as .npy sets. */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Model } from '#dist/shared/core/index.js';
import { encodeNpy } from '#dist/shared/formats/index.js';

export function randomModel(n: number, m: number, seed: number): Model {
  const z = new Float32Array(new SharedArrayBuffer(n * m * 4));
  let s = seed >>> 0 || 1;
  for (let i = 0; i < z.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    z[i] = (s >>> 0) / 2147483648 - 1;
  }
  return {
    path: `random-${n}x${m}`,
    probes: m,
    m,
    n,
    layers: [{ name: 'l0', depth: 0, source: 'memory', shape: [n], start: 0, count: n, total: n, constant: 0 }],
    z,
    constant: new Uint8Array(n),
    ids: null,
    fingerprint: null,
  };
}

/** Four .npy layers of non-negative, ReLU-like activations (deterministic from the seed); skipped if already written. */
export function writeModel(dir: string, n: number, m: number, seed: number): void {
  if (existsSync(join(dir, 'done'))) return;
  mkdirSync(dir, { recursive: true });
  const layers = 4;
  let s = seed;
  for (let l = 0; l < layers; l++) {
    const count = Math.floor(n / layers) + (l < n % layers ? 1 : 0);
    const data = new Float32Array(m * count);
    for (let i = 0; i < data.length; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      data[i] = Math.max(0, s / 2147483648 - 1.2) + (s & 0xff) / 4096;
    }
    writeFileSync(join(dir, `layer${l}.npy`), encodeNpy(data, [m, count]));
  }
  writeFileSync(join(dir, 'done'), '');
}

export interface SparseLayer {
  readonly name: string;
  /** Per probe (a conv layer's [C, H, W] or a dense layer's [n]). */
  readonly shape: readonly number[];
  /** Share of dead units: 0 on every probe. */
  readonly dead: number;
}

/**
 * Sparse ReLU layers like a trained network's: unit j is
 * relu(w_j . latent(t) + b_j + noise), with w_j normal, b_j drawn so the
 * share of probes a unit fires on ranges from rare to common, and a share of
 * dead units. Two models built on the same `latent` (probes x factors) are
 * related the way two networks that saw the same inputs are; skipped if
 * already written.
 */
export function writeSparseRelu(dir: string, layers: readonly SparseLayer[], latent: readonly Float64Array[], seed: number): void {
  if (existsSync(join(dir, 'done'))) return;
  mkdirSync(dir, { recursive: true });
  const m = latent[0]!.length;
  const rng = xorshift(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  for (const layer of layers) {
    const n = layer.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(m * n);
    const w = new Float64Array(latent.length);
    for (let j = 0; j < n; j++) {
      if (rng() < layer.dead) continue;
      for (let q = 0; q < w.length; q++) w[q] = gauss();
      const bias = -2.5 * rng();
      for (let t = 0; t < m; t++) {
        let v = bias + 0.7 * gauss();
        for (let q = 0; q < w.length; q++) v += w[q]! * latent[q]![t]!;
        data[t * n + j] = Math.max(0, v);
      }
    }
    writeFileSync(join(dir, `${layer.name}.npy`), encodeNpy(data, [m, ...layer.shape]));
  }
  writeFileSync(join(dir, 'done'), '');
}

/** Standard normal latent factors: `factors` arrays of `m` probes. */
export function latentFactors(m: number, factors: number, seed: number): Float64Array[] {
  const rng = xorshift(seed);
  return Array.from({ length: factors }, () => Float64Array.from({ length: m }, () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng())));
}

function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}
