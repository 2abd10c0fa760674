/** Random activation sets with the awkward cases built in, written as .npy folders. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeNpy } from '../../dist/shared/formats/index.js';
import type { BruteLayer } from './brute.js';

export interface GenLayer {
  readonly name: string;
  /** Full shape [M, ...]. */
  readonly shape: number[];
  /** Probe-major values, already rounded to float32 when dtype is f4. */
  readonly data: Float64Array;
}

export interface GenModel {
  readonly layers: GenLayer[];
  readonly dtype: 'f4' | 'f8';
}

/** mulberry32: the tests' own PRNG, independent of the project's. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface GenOptions {
  readonly m: number;
  /** Per-probe shapes of the layers, e.g. [[5], [2, 3, 3], [1]]. */
  readonly layers: number[][];
  readonly dtype?: 'f4' | 'f8';
  /** Fraction of neurons made constant. */
  readonly constants?: number;
  /** Fraction of neurons overwritten by an exact (possibly negated) copy of an earlier neuron. */
  readonly duplicates?: number;
  /** Shared latent factors, so the two models correlate. */
  readonly latent?: Float64Array[];
}

const neuronsOf = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

export function latents(seed: number, m: number, k: number): Float64Array[] {
  const r = rng(seed);
  return Array.from({ length: k }, () => Float64Array.from({ length: m }, () => r() * 2 - 1));
}

export function genModel(seed: number, opts: GenOptions): GenModel {
  const r = rng(seed);
  const dtype = opts.dtype ?? 'f4';
  const round = dtype === 'f4' ? Math.fround : (x: number) => x;
  const { m } = opts;
  const columns: Float64Array[] = [];
  const layers = opts.layers.map((perProbe, li) => {
    const n = neuronsOf(perProbe);
    const data = new Float64Array(m * n);
    for (let j = 0; j < n; j++) {
      const col = new Float64Array(m);
      const roll = r();
      if (roll < (opts.constants ?? 0)) {
        col.fill(round(r() * 4 - 2));
      } else if (roll < (opts.constants ?? 0) + (opts.duplicates ?? 0) && columns.length > 0) {
        const src = columns[Math.floor(r() * columns.length)]!;
        const sign = r() < 0.5 ? -1 : 1;
        for (let k = 0; k < m; k++) col[k] = sign * src[k]!;
      } else {
        const w = (opts.latent ?? []).map(() => r() * 2 - 1);
        for (let k = 0; k < m; k++) {
          let v = (r() * 2 - 1) * 0.5;
          w.forEach((wi, q) => (v += wi * opts.latent![q]![k]!));
          col[k] = round(li % 2 === 0 ? Math.max(0, v) : v);
        }
      }
      columns.push(col);
      for (let k = 0; k < m; k++) data[k * n + j] = col[k]!;
    }
    return { name: `layer${String(li).padStart(2, '0')}`, shape: [m, ...perProbe], data };
  });
  return { layers, dtype };
}

export function writeNpyDir(model: GenModel, dir = mkdtempSync(join(tmpdir(), 'nc-model-'))): string {
  mkdirSync(dir, { recursive: true });
  for (const layer of model.layers) {
    const data = model.dtype === 'f4' ? Float32Array.from(layer.data) : layer.data;
    writeFileSync(join(dir, `${layer.name}.npy`), encodeNpy(data, layer.shape));
  }
  return dir;
}

/** Neuron vectors for the brute force: units (every C*H*W entry) or channels (axis 1, samples M*H*W). */
export function bruteLayers(model: GenModel, conv: 'units' | 'channels' = 'units', depths?: number[]): BruteLayer[] {
  return model.layers.map((layer, li) => {
    const [m, ...rest] = layer.shape as [number, ...number[]];
    const perProbe = neuronsOf(rest);
    const channels = conv === 'channels' && rest.length >= 2;
    const neurons = channels ? rest[0]! : perProbe;
    const spatial = perProbe / neurons;
    const vectors = Array.from({ length: neurons }, (_, j) => {
      const v = new Float64Array(m * spatial);
      for (let p = 0; p < m; p++) {
        for (let s = 0; s < spatial; s++) v[p * spatial + s] = layer.data[p * perProbe + j * spatial + s]!;
      }
      return v;
    });
    return { vectors, depth: depths?.[li] ?? li };
  });
}
