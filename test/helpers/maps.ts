/** Conv models with H x W maps in either layout, and an independent float64 adaptive average pooling for the brute force. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeNpy } from '../../dist/shared/formats/index.js';
import type { BruteLayer } from './brute.js';
import { genModel, type GenModel, type GenOptions } from './models.js';

export type Layout = 'nchw' | 'nhwc';

export interface MapLayer {
  /** Per probe [C, H, W] (the logical order; `layout` says how it is stored). */
  readonly shape: [number, number, number];
  readonly layout: Layout;
}

export interface MapModel {
  readonly model: GenModel;
  readonly layers: readonly MapLayer[];
}

export function mapModel(seed: number, m: number, layers: MapLayer[], extra: Omit<GenOptions, 'm' | 'layers'> = {}): MapModel {
  return { model: genModel(seed, { ...extra, m, layers: layers.map((l) => l.shape) }), layers };
}

/** Each layer as stored: NHWC layers transposed to [M, H, W, C]. */
export function storedLayers(mm: MapModel): { name: string; shape: number[]; data: Float32Array; layout: Layout }[] {
  return mm.model.layers.map((layer, k) => {
    const { shape, layout } = mm.layers[k]!;
    const [c, h, w] = shape;
    const m = layer.shape[0]!;
    const per = c * h * w;
    const data = new Float32Array(m * per);
    for (let p = 0; p < m; p++) {
      for (let j = 0; j < c; j++) {
        for (let s = 0; s < h * w; s++) data[p * per + (layout === 'nchw' ? j * h * w + s : s * c + j)] = layer.data[p * per + j * h * w + s]!;
      }
    }
    return { name: layer.name, shape: layout === 'nchw' ? [m, c, h, w] : [m, h, w, c], data, layout };
  });
}

/** Writes a .npy folder with a layers.json giving every layout (`layouts` false: no layers.json; a list: only these layers' layouts). */
export function writeMapDir(mm: MapModel, layouts: boolean | readonly number[] = true): string {
  const dir = mkdtempSync(join(tmpdir(), 'nc-maps-'));
  const entries = storedLayers(mm).map(({ name, shape, data, layout }, k) => {
    const file = `${name}.npy`;
    writeFileSync(join(dir, file), encodeNpy(data, shape));
    return { file, ...(layouts === true || (Array.isArray(layouts) && layouts.includes(k)) ? { layout } : {}) };
  });
  if (layouts !== false) writeFileSync(join(dir, 'layers.json'), JSON.stringify({ layers: entries }));
  return dir;
}

/** Each channel's samples after adaptive average pooling to gh x gw (PyTorch's AdaptiveAvgPool2d), in float64. */
export function pooledBrute(mm: MapModel, gh: number, gw: number): BruteLayer[] {
  return mm.model.layers.map((layer, k) => {
    const [c, h, w] = mm.layers[k]!.shape;
    const m = layer.shape[0]!;
    const vectors = Array.from({ length: c }, (_, j) => {
      const v = new Float64Array(m * gh * gw);
      for (let p = 0; p < m; p++) {
        for (let a = 0; a < gh; a++) {
          for (let b = 0; b < gw; b++) {
            const [r0, r1] = [Math.floor((a * h) / gh), Math.ceil(((a + 1) * h) / gh)];
            const [c0, c1] = [Math.floor((b * w) / gw), Math.ceil(((b + 1) * w) / gw)];
            let sum = 0;
            for (let r = r0; r < r1; r++) for (let x = c0; x < c1; x++) sum += layer.data[p * c * h * w + j * h * w + r * w + x]!;
            v[(p * gh + a) * gw + b] = sum / ((r1 - r0) * (c1 - c0));
          }
        }
      }
      return v;
    });
    return { vectors, depth: k };
  });
}
