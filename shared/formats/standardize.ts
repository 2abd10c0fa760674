/**
 * Raw activations -> standardized model. Means and norms are computed in
 * float64; z is stored as float32, neuron-major, in one SharedArrayBuffer so
 * worker threads read it without copies.
 */
import { InputError, InternalError, UsageError } from '../errors.js';
import type { ConvMode, LayerInfo, Layout } from '../core/index.js';
import { hasMaps, layerLayout, pooledLayer, type Grid } from './channels.js';
import { modelPlan, type ModelBuild, type ModelPlan } from './model-plan.js';
import type { RawLayer, RawModel } from './raw.js';
import { jsLoops, type Chunk, type StandardizeLoops } from './standardize-loops.js';
import { createRng, hashString, sampleIndices } from '../core/index.js';

export { jsLoops, type StandardizeLoops } from './standardize-loops.js';

export interface BuildOptions {
  readonly conv: ConvMode;
  /** Channels mode: the layout of every rank >= 3 layer whose file does not give one (default: none, such a layer is refused). */
  readonly layout?: Layout | null;
  /** Channels mode: pool every layer's H x W maps to this grid (default: no pooling). */
  readonly grid?: Grid | null;
  /** Use only the first K probes (partial mode); null for all. */
  readonly probes: number | null;
  /** Keep only these layer names (partial mode); null for all. */
  readonly layers: readonly string[] | null;
  /** Keep at most `n` neurons per layer, chosen with `seed` (partial mode); null for all. */
  readonly sample: { readonly n: number; readonly seed: number } | null;
  /** Constant-neuron threshold relative to the neuron's largest magnitude. */
  readonly constantTolerance?: number;
  /** Inner loops; the plain TypeScript ones by default. */
  readonly loops?: StandardizeLoops;
}

/** How a layer's values map to (neuron j, sample t): value = data[offset(t) + j * jStride]. */
interface Geometry {
  readonly neurons: number;
  readonly spatial: number;
  readonly probeStride: number;
  readonly spatialStride: number;
  readonly jStride: number;
}

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

export function layerGeometry(layer: RawLayer, conv: ConvMode): Geometry {
  const dims = layer.shape.slice(1);
  const perProbe = product(dims);
  if (conv === 'units' || dims.length < 2) {
    return { neurons: perProbe, spatial: 1, probeStride: perProbe, spatialStride: 0, jStride: 1 };
  }
  if (layer.layout === null) throw new InternalError(`layer ${layer.source}: channels geometry without a layout`);
  if (layer.layout === 'nhwc') {
    const channels = dims[dims.length - 1]!;
    return { neurons: channels, spatial: perProbe / channels, probeStride: perProbe, spatialStride: channels, jStride: 1 };
  }
  const channels = dims[0]!;
  const spatial = perProbe / channels;
  return { neurons: channels, spatial, probeStride: perProbe, spatialStride: 1, jStride: spatial };
}

export const DEFAULT_CONSTANT_TOLERANCE = 1e-12;

/** Bytes of probe rows read per pass step; bounds memory whatever the layer size. */
export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

export type Allocate = (bytes: number) => SharedArrayBuffer;

export function planModel(raw: RawModel, options: BuildOptions): ModelPlan {
  const fullM = raw.layers[0]?.shape[0] ?? 0;
  const probes = options.probes ?? fullM;
  if (fullM < 2) {
    throw new InputError('E_INPUT_SHAPE', raw.path, `has ${fullM} probe(s); a correlation needs at least 2`, 'run the models on at least 2 probe inputs');
  }
  if (probes < 2 || probes > fullM) {
    throw new UsageError((o) => `${o('probes')} ${probes} is out of range: ${raw.path} has ${fullM} probes; use 2..${fullM}`);
  }

  const positioned = raw.layers.map((layer, position) => ({ layer, depth: layer.depth ?? position }));
  const selected = options.layers === null ? positioned : positioned.filter((p) => options.layers!.includes(p.layer.name));
  if (selected.length === 0) {
    const names = raw.layers.map((l) => l.name).join(', ');
    throw new UsageError((o) => `${o('layers')} selects no layer of ${raw.path}; its layers are: ${names}`);
  }

  const fallback = options.layout ?? null;
  const views = selected.map((p) => channelView(raw, p.layer, options.conv, fallback, options.grid ?? null));
  const geometries = views.map((view) => layerGeometry(view, options.conv));
  const spatial = geometries[0]!.spatial;
  selected.forEach((p, k) => {
    if (geometries[k]!.spatial !== spatial) {
      throw new InputError(
        'E_INPUT_SHAPE',
        p.layer.source,
        `channels semantics needs every layer to have the same number of spatial positions, but this layer has ${geometries[k]!.spatial} and ${selected[0]!.layer.source} has ${spatial}`,
        (o) =>
          options.grid
            ? `a layer without H x W maps has one position: pool with ${o('spatial')} 1, or leave it out with ${o('layers')}`
            : `pool every layer to one size with ${o('spatial')} S (or min), select layers of one spatial size with ${o('layers')}, or use ${o('conv')} units`,
      );
    }
  });

  const picks = selected.map((p, k) => {
    const neurons = geometries[k]!.neurons;
    if (options.sample === null || options.sample.n >= neurons) return null;
    const rng = createRng(hashString(p.layer.name, options.sample.seed >>> 0));
    return sampleIndices(neurons, options.sample.n, rng);
  });

  const m = probes * spatial;
  const n = picks.reduce((sum, pick, k) => sum + (pick?.length ?? geometries[k]!.neurons), 0);
  if (n * m > 2 ** 31) {
    throw new UsageError(`${raw.path}: ${n} neurons x ${m} samples is too large to hold in memory; prepare a shard set (neurocorr prepare)`);
  }
  const tolerance = options.constantTolerance ?? DEFAULT_CONSTANT_TOLERANCE;
  const loops = options.loops ?? jsLoops;

  const layout = (z: Float32Array): ModelBuild => {
    const constant = new Uint8Array(n);
    const ids = picks.some((p) => p !== null) ? new Uint32Array(n) : null;
    const layers: { -readonly [K in keyof LayerInfo]: LayerInfo[K] }[] = [];
    let first = 0;
    let originalStart = 0;
    for (const { layer, depth } of positioned) {
      const sel = selected.findIndex((p) => p.layer === layer);
      // Original indices count every layer's neurons; only sampling needs them.
      const total =
        sel >= 0 ? geometries[sel]!.neurons : ids === null ? 0 : layerGeometry(channelView(raw, layer, options.conv, fallback, null), options.conv).neurons;
      if (sel >= 0) {
        const pick = picks[sel]!;
        const count = pick?.length ?? total;
        if (ids !== null) {
          for (let j = 0; j < count; j++) ids[first + j] = originalStart + (pick === null ? j : pick[j]!);
        }
        const shape = layer.shape.slice(1);
        const layout = hasMaps(layer.shape) ? (layer.layout ?? fallback) : null;
        layers.push({ name: layer.name, depth, source: layer.source, shape, start: first, count, total, constant: 0, layout });
        first += count;
      }
      originalStart += total;
    }
    let next = 0;
    return {
      model: { path: raw.path, probes, m, n, layers, z, constant, ids, fingerprint: raw.fingerprint },
      step() {
        if (next >= layers.length) return false;
        const info = layers[next]!;
        const out = z.subarray(info.start * m, (info.start + info.count) * m);
        const flags = constant.subarray(info.start, info.start + info.count);
        info.constant = standardizeLayer(views[next]!, geometries[next]!, probes, picks[next]!, out, flags, tolerance, loops);
        next++;
        return true;
      },
    };
  };
  return modelPlan(n, m, layout);
}

/**
 * A layer as channels mode reads it: its layout resolved (refused when
 * unknown), pooled to `grid` when one is given. Units mode and dense layers
 * read as they are.
 */
export function channelView(raw: RawModel, layer: RawLayer, conv: ConvMode, fallback: Layout | null, grid: Grid | null): RawLayer {
  if (conv === 'units' || !hasMaps(layer.shape)) return layer;
  const layout = layerLayout(raw, layer, fallback);
  return grid === null ? { ...layer, layout } : pooledLayer(layer, layout, grid);
}

/**
 * Standardizes one layer into `out` (count x m) and flags constant neurons.
 * Two streaming passes over the probe rows, in float64: shifted sums and
 * sums of squares (and largest magnitudes), then the write.
 */
function standardizeLayer(
  layer: RawLayer,
  geo: Geometry,
  probes: number,
  pick: Uint32Array | null,
  out: Float32Array,
  constant: Uint8Array,
  tolerance: number,
  loops: StandardizeLoops,
  base = 0,
): number {
  const count = pick?.length ?? geo.neurons;
  // A neuron's index in its layer, for messages: `pick` holds layer indices; a slice's neurons start at `base`.
  const neuron = (j: number): number => base + (pick === null ? j : pick[j]!);
  const m = probes * geo.spatial;
  const cols = new Float64Array(count);
  for (let j = 0; j < count; j++) cols[j] = (pick === null ? j : pick[j]!) * geo.jStride;

  // One pass of sums shifted by each neuron's first sample (so a constant
  // neuron sums to exactly 0), then mean and centered sum of squares.
  const first = layer.read(0, 1);
  const shift = new Float64Array(count);
  for (let j = 0; j < count; j++) shift[j] = first[cols[j]!]!;
  const s1 = new Float64Array(count);
  const s2 = new Float64Array(count);
  const maxAbs = new Float64Array(count);
  const { probeStride, spatialStride, spatial } = geo;
  forEachChunk(layer, geo, probes, (data, _p0, pn) => loops.accumulate({ data, pn, spatial, probeStride, spatialStride, cols, shift, s1, s2, maxAbs }));
  const mean = new Float64Array(count);
  const sq = new Float64Array(count);
  for (let j = 0; j < count; j++) {
    if (!Number.isFinite(s2[j]!)) throw nonFiniteError(layer, geo, probes, cols[j]!, neuron(j));
    const d = s1[j]! / m;
    mean[j] = shift[j]! + d;
    sq[j] = Math.max(0, s2[j]! - s1[j]! * d);
  }
  let constants = 0;
  const scale = new Float64Array(count);
  for (let j = 0; j < count; j++) {
    const norm = Math.sqrt(sq[j]!);
    if (!Number.isFinite(norm)) throw nonFiniteError(layer, geo, probes, cols[j]!, neuron(j));
    // Flags and rows are written in full either way: callers may reuse buffers.
    if (norm === 0 || norm < tolerance * maxAbs[j]!) {
      constant[j] = 1;
      constants++;
      out.fill(0, j * m, (j + 1) * m);
    } else {
      constant[j] = 0;
      scale[j] = 1 / norm;
    }
  }
  forEachChunk(layer, geo, probes, (data, p0, pn) => loops.write({ data, p0, pn, spatial, probeStride, spatialStride, cols, mean, scale, constant, out, m }));
  return constants;
}

/** Probe rows of the layer in chunks of about DEFAULT_CHUNK_BYTES: (values, first probe, probe count). */
function forEachChunk(layer: RawLayer, geo: Geometry, probes: number, visit: (data: Chunk, p0: number, pn: number) => void): void {
  const rowBytes = geo.probeStride * (layer.dtype === 'f4' ? 4 : 8);
  const step = Math.max(1, Math.floor(DEFAULT_CHUNK_BYTES / rowBytes));
  for (let p0 = 0; p0 < probes; p0 += step) {
    const pn = Math.min(step, probes - p0);
    visit(layer.read(p0, pn), p0, pn);
  }
}

function nonFiniteError(layer: RawLayer, geo: Geometry, probes: number, col: number, neuron: number): InputError {
  let where = 'values too large to sum in float64';
  forEachChunk(layer, geo, probes, (data, p0, pn) => {
    for (let p = 0; p < pn; p++) {
      for (let s = 0; s < geo.spatial; s++) {
        const v = data[p * geo.probeStride + s * geo.spatialStride + col]!;
        if (where.startsWith('values') && !Number.isFinite(v)) where = `${v} at probe ${p0 + p}`;
      }
    }
  });
  return new InputError(
    'E_INPUT_VALUES',
    layer.source,
    `neuron ${neuron} of layer "${layer.name}" holds a non-finite value (${where})`,
    're-export the activations without NaN or Inf (check the model for overflow, or replace them with np.nan_to_num)',
  );
}

/**
 * Standardizes neurons [j0, j1) of one layer into `out` ((j1 - j0) x m) and
 * their constant flags, reading only those neurons' values where the layout
 * keeps them contiguous in a probe row (units, or channels in NCHW). The
 * values are bit-identical to standardizing the whole layer: every neuron's
 * sums run over the same samples in the same order.
 */
export function standardizeRange(
  layer: RawLayer,
  conv: ConvMode,
  probes: number,
  j0: number,
  j1: number,
  out: Float32Array,
  constant: Uint8Array,
  loops: StandardizeLoops = jsLoops,
  tolerance = DEFAULT_CONSTANT_TOLERANCE,
): number {
  const geo = layerGeometry(layer, conv);
  const contiguous = geo.spatial === 1 ? geo.jStride === 1 : geo.spatialStride === 1;
  if (!contiguous) {
    const pick = Uint32Array.from({ length: j1 - j0 }, (_, k) => j0 + k);
    return standardizeLayer(layer, geo, probes, pick, out, constant, tolerance, loops);
  }
  const from = j0 * geo.jStride;
  const width = (j1 - j0) * geo.jStride;
  const slice: RawLayer = { ...layer, read: (start, count) => layer.read(start, count, from, width) };
  return standardizeLayer(slice, { ...geo, neurons: j1 - j0, probeStride: width }, probes, null, out, constant, tolerance, loops, j0);
}
