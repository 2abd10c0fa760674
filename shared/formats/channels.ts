/**
 * Channels semantics (`conv: 'channels'`): where each layer's channel axis
 * is, and the optional pooling of every layer's H x W maps to one grid.
 *
 * A layout is never guessed: it comes from the layer's file (layers.json
 * `layout`, safetensors `layouts`) or the `layout` option, else the layer is
 * refused. Pooling is adaptive average pooling as PyTorch's
 * AdaptiveAvgPool2d: output cell i of S covers input rows
 * floor(i*H/S) .. ceil((i+1)*H/S)-1 (columns alike), its mean summed in
 * float64 (rows, then columns), per probe and channel.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { LAYOUTS, MAX_SPATIAL, type Layout, type SpatialPooling } from '../core/index.js';
import type { RawLayer, RawModel } from './raw.js';

/** `spatial`: pool to S x S, or to the smallest H and the smallest W over both models' maps. */
export type SpatialRequest = number | 'min';

export interface Grid {
  readonly height: number;
  readonly width: number;
}

/** The report's `spatial`: what was asked and the grid it gave. */
export type SpatialInfo = SpatialPooling;

/** Per probe [C, ...] or [..., C]: a layer whose channel axis matters. */
export const hasMaps = (shape: readonly number[]): boolean => shape.length >= 3;

/** The layer's layout: its file's, else `fallback`; refused (exit 2) when neither says. */
export function layerLayout(raw: RawModel, layer: RawLayer, fallback: Layout | null): Layout {
  const layout = layer.layout ?? fallback;
  if (layout !== null && !LAYOUTS.includes(layout)) throw new UsageError((o) => `${o('layout')} ${JSON.stringify(layout)}: expected nchw or nhwc`);
  if (layout !== null) return layout;
  const map = join(raw.path, 'layers.json');
  const where = raw.path.toLowerCase().endsWith('.safetensors')
    ? 'add __metadata__ "layouts" (a JSON array string of "nchw" or "nhwc", one per layer)'
    : existsSync(map)
      ? `add "layout": "nchw" or "nhwc" to its entry in ${map}`
      : `write ${map} giving each layer's layout, e.g. {"layers": [{"file": "${basename(layer.source)}", "layout": "nchw"}, ...]}`;
  throw new InputError(
    'E_INPUT_LAYOUT',
    layer.source,
    `layer "${layer.name}" has per-probe shape [${layer.shape.slice(1).join(', ')}] and no layout: channels semantics must know whether the channels come first (NCHW, PyTorch) or last (NHWC, TensorFlow/Keras)`,
    (o) => `${where}, or pass ${o('layout')} nchw|nhwc for every layer whose file does not say`,
  );
}

/** Channels and the H x W map of a layer with per-probe shape [C, H, W] (nchw) or [H, W, C] (nhwc). */
export function mapSize(layer: RawLayer, layout: Layout): { readonly channels: number; readonly height: number; readonly width: number } {
  const dims = layer.shape.slice(1);
  if (dims.length !== 3) {
    const problem = `layer "${layer.name}" has per-probe shape [${dims.join(', ')}]; spatial pooling needs 2-D maps, [C, H, W] or [H, W, C]`;
    throw new InputError('E_INPUT_SHAPE', layer.source, problem, (o) => `leave the layer out with ${o('layers')}, or score without ${o('spatial')}`);
  }
  const [a, b, c] = dims as [number, number, number];
  return layout === 'nchw' ? { channels: a, height: b, width: c } : { channels: c, height: a, width: b };
}

/** The grid a request gives over these maps: S x S, or the smallest H by the smallest W. */
export function resolveGrid(request: SpatialRequest, maps: readonly Grid[]): Grid {
  if (request !== 'min' && !(Number.isSafeInteger(request) && request >= 1 && request <= MAX_SPATIAL)) {
    throw new UsageError((o) => `${o('spatial')} ${JSON.stringify(request)}: expected a side from 1 to ${MAX_SPATIAL}, or min`);
  }
  if (request !== 'min') return { height: request, width: request };
  if (maps.length === 0) throw new UsageError((o) => `${o('spatial')} min: no selected layer of either model has H x W maps; give a size instead`);
  return { height: Math.min(...maps.map((g) => g.height)), width: Math.min(...maps.map((g) => g.width)) };
}

/** Refuses a map smaller than the grid: pooling never upsamples. */
export function checkPoolable(layer: RawLayer, map: Grid, grid: Grid): void {
  if (map.height >= grid.height && map.width >= grid.width) return;
  const problem = `layer "${layer.name}" has ${map.height} x ${map.width} maps, smaller than the ${grid.height} x ${grid.width} grid they would be pooled to`;
  const side = Math.min(map.height, map.width);
  throw new InputError(
    'E_INPUT_SHAPE',
    layer.source,
    problem,
    (o) => `use ${o('spatial')} ${side} or less (or ${o('spatial')} min), or leave the layer out with ${o('layers')}`,
  );
}

/** Cell bounds along one axis: cell i covers [lo[i], hi[i]). */
function cells(size: number, out: number): { lo: Int32Array; hi: Int32Array } {
  const lo = new Int32Array(out);
  const hi = new Int32Array(out);
  for (let i = 0; i < out; i++) {
    lo[i] = Math.floor((i * size) / out);
    hi[i] = Math.ceil(((i + 1) * size) / out);
  }
  return { lo, hi };
}

/** Bytes of source rows read per step while pooling. */
const POOL_READ_BYTES = 4 * 1024 * 1024;

let pooledScratch = new Float64Array(0);

/**
 * The layer pooled to `grid`: a float64 layer of per-probe shape [C, gh, gw]
 * (NCHW) whose reads pool the source's probe rows a few MiB at a time. Like
 * any read, the result is a view over a shared buffer, valid until the next
 * read of a pooled layer.
 */
export function pooledLayer(layer: RawLayer, layout: Layout, grid: Grid): RawLayer {
  const { channels, height, width } = mapSize(layer, layout);
  checkPoolable(layer, { height, width }, grid);
  const rows = cells(height, grid.height);
  const cols = cells(width, grid.width);
  const area = height * width;
  const per = grid.height * grid.width;
  const itemBytes = layer.dtype === 'f4' ? 4 : 8;
  const acc = new Float64Array(channels);
  // Sums over cell (a, b) of channels [c0, c1) of one probe row, into acc[c].
  const sumNchw = (src: ArrayLike<number>, base: number, c0: number, c1: number, a: number, b: number): void => {
    for (let c = c0; c < c1; c++) {
      const map = base + (c - c0) * area;
      let s = 0;
      for (let r = rows.lo[a]!; r < rows.hi[a]!; r++) for (let w = cols.lo[b]!; w < cols.hi[b]!; w++) s += src[map + r * width + w]!;
      acc[c] = s;
    }
  };
  const sumNhwc = (src: ArrayLike<number>, base: number, c0: number, c1: number, a: number, b: number): void => {
    acc.fill(0, c0, c1);
    for (let r = rows.lo[a]!; r < rows.hi[a]!; r++) {
      for (let w = cols.lo[b]!; w < cols.hi[b]!; w++) {
        const at = base + (r * width + w) * channels;
        for (let c = c0; c < c1; c++) acc[c]! += src[at + c]!;
      }
    }
  };
  const sum = layout === 'nchw' ? sumNchw : sumNhwc;
  const read = (start: number, count: number, from = 0, span = channels * per): Float64Array => {
    if (pooledScratch.length < count * span) pooledScratch = new Float64Array(Math.max(count * span, pooledScratch.length * 2));
    const out = pooledScratch.subarray(0, count * span);
    const c0 = Math.floor(from / per);
    const c1 = Math.ceil((from + span) / per);
    // NCHW keeps a channel range contiguous in each source row; NHWC interleaves every channel.
    const [srcFrom, srcWidth] = layout === 'nchw' ? [c0 * area, (c1 - c0) * area] : [0, channels * area];
    const step = Math.max(1, Math.floor(POOL_READ_BYTES / (srcWidth * itemBytes)));
    for (let p0 = 0; p0 < count; p0 += step) {
      const pn = Math.min(step, count - p0);
      const src = layer.read(start + p0, pn, srcFrom, srcWidth);
      for (let p = 0; p < pn; p++) {
        const row = out.subarray((p0 + p) * span, (p0 + p + 1) * span);
        for (let a = 0; a < grid.height; a++) {
          for (let b = 0; b < grid.width; b++) {
            sum(src, p * srcWidth, c0, c1, a, b);
            const n = (rows.hi[a]! - rows.lo[a]!) * (cols.hi[b]! - cols.lo[b]!);
            for (let c = c0; c < c1; c++) {
              const at = c * per + a * grid.width + b - from;
              if (at >= 0 && at < span) row[at] = acc[c]! / n;
            }
          }
        }
      }
    }
    return out;
  };
  return { ...layer, shape: [layer.shape[0]!, channels, grid.height, grid.width], dtype: 'f8', layout: 'nchw', read };
}
