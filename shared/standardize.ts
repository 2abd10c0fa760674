/**
 * Raw activations -> standardized model. Means and norms are computed in
 * float64; z is stored as float32, neuron-major, in one SharedArrayBuffer so
 * worker threads read it without copies.
 */
import { InputError, UsageError } from './errors.js';
import type { ConvMode, LayerInfo, Model } from './model.js';
import type { RawLayer, RawModel } from './raw.js';
import { createRng, hashString, sampleIndices } from './rng.js';

export interface BuildOptions {
  readonly conv: ConvMode;
  /** Use only the first K probes (partial mode); null for all. */
  readonly probes: number | null;
  /** Keep only these layer names (partial mode); null for all. */
  readonly layers: readonly string[] | null;
  /** Keep at most `n` neurons per layer, chosen with `seed` (partial mode); null for all. */
  readonly sample: { readonly n: number; readonly seed: number } | null;
  /** Constant-neuron threshold relative to the neuron's largest magnitude. */
  readonly constantTolerance?: number;
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
  if (layer.layout === 'nhwc') {
    const channels = dims[dims.length - 1]!;
    return { neurons: channels, spatial: perProbe / channels, probeStride: perProbe, spatialStride: channels, jStride: 1 };
  }
  const channels = dims[0]!;
  const spatial = perProbe / channels;
  return { neurons: channels, spatial, probeStride: perProbe, spatialStride: 1, jStride: spatial };
}

export const DEFAULT_CONSTANT_TOLERANCE = 1e-12;

export function buildModel(raw: RawModel, options: BuildOptions): Model {
  const fullM = raw.layers[0]?.shape[0] ?? 0;
  const probes = options.probes ?? fullM;
  if (fullM < 2) {
    throw new InputError('E_INPUT_SHAPE', raw.path, `has ${fullM} probe(s); a correlation needs at least 2`, 'run the models on at least 2 probe inputs');
  }
  if (probes < 2 || probes > fullM) {
    throw new UsageError(`--probes ${probes} is out of range: ${raw.path} has ${fullM} probes; use 2..${fullM}`);
  }

  const positioned = raw.layers.map((layer, position) => ({ layer, depth: layer.depth ?? position }));
  const selected = options.layers === null ? positioned : positioned.filter((p) => options.layers!.includes(p.layer.name));
  if (selected.length === 0) {
    const names = raw.layers.map((l) => l.name).join(', ');
    throw new UsageError(`--layers selects no layer of ${raw.path}; its layers are: ${names}`);
  }

  const geometries = selected.map((p) => layerGeometry(p.layer, options.conv));
  const spatial = geometries[0]!.spatial;
  selected.forEach((p, k) => {
    if (geometries[k]!.spatial !== spatial) {
      throw new InputError(
        'E_INPUT_SHAPE',
        p.layer.source,
        `--conv channels needs every layer to have the same number of spatial positions, but this layer has ${geometries[k]!.spatial} and ${selected[0]!.layer.source} has ${spatial}`,
        'select layers of one spatial size with --layers, or use --conv units',
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
  const z = new Float32Array(new SharedArrayBuffer(n * m * 4));
  const constant = new Uint8Array(n);
  const sampled = picks.some((p) => p !== null);
  const ids = sampled ? new Uint32Array(n) : null;

  const layers: LayerInfo[] = [];
  let start = 0;
  let originalStart = 0;
  const tolerance = options.constantTolerance ?? DEFAULT_CONSTANT_TOLERANCE;
  for (const { layer, depth } of positioned) {
    const sel = selected.findIndex((p) => p.layer === layer);
    const total = layerGeometry(layer, options.conv).neurons;
    if (sel >= 0) {
      const pick = picks[sel]!;
      const count = pick?.length ?? total;
      const constantCount = standardizeLayer(
        layer,
        geometries[sel]!,
        probes,
        pick,
        z.subarray(start * m, (start + count) * m),
        constant.subarray(start, start + count),
        tolerance,
      );
      if (ids !== null) {
        for (let j = 0; j < count; j++) ids[start + j] = originalStart + (pick === null ? j : pick[j]!);
      }
      layers.push({ name: layer.name, depth, source: layer.source, shape: layer.shape.slice(1), start, count, total, constant: constantCount });
      start += count;
    }
    originalStart += total;
  }
  return { path: raw.path, probes, m, n, layers, z, constant, ids, fingerprint: raw.fingerprint };
}

/**
 * Standardizes one layer into `out` (count x m) and flags constant neurons.
 * Three passes in float64: sums, centered sums of squares, then the write.
 */
function standardizeLayer(
  layer: RawLayer,
  geo: Geometry,
  probes: number,
  pick: Uint32Array | null,
  out: Float32Array,
  constant: Uint8Array,
  tolerance: number,
): number {
  const count = pick?.length ?? geo.neurons;
  const data = layer.data;
  const m = probes * geo.spatial;
  const column = pick === null ? (j: number) => j * geo.jStride : (j: number) => pick[j]! * geo.jStride;
  const cols = new Float64Array(count);
  for (let j = 0; j < count; j++) cols[j] = column(j);

  const sum = new Float64Array(count);
  forEachSample(geo, probes, (_t, off) => {
    for (let j = 0; j < count; j++) sum[j]! += data[off + cols[j]!]!;
  });
  for (let j = 0; j < count; j++) {
    if (!Number.isFinite(sum[j]!)) throw nonFiniteError(layer, geo, probes, cols[j]!, j);
    sum[j] = sum[j]! / m;
  }
  const mean = sum;
  const sq = new Float64Array(count);
  const maxAbs = new Float64Array(count);
  forEachSample(geo, probes, (_t, off) => {
    for (let j = 0; j < count; j++) {
      const v = data[off + cols[j]!]!;
      const d = v - mean[j]!;
      sq[j]! += d * d;
      const a = Math.abs(v);
      if (a > maxAbs[j]!) maxAbs[j] = a;
    }
  });
  let constants = 0;
  const scale = new Float64Array(count);
  for (let j = 0; j < count; j++) {
    const norm = Math.sqrt(sq[j]!);
    if (!Number.isFinite(norm)) throw nonFiniteError(layer, geo, probes, cols[j]!, j);
    if (norm === 0 || norm < tolerance * maxAbs[j]!) {
      constant[j] = 1;
      constants++;
    } else {
      scale[j] = 1 / norm;
    }
  }
  forEachSample(geo, probes, (t, off) => {
    for (let j = 0; j < count; j++) {
      if (constant[j] === 0) out[j * m + t] = (data[off + cols[j]!]! - mean[j]!) * scale[j]!;
    }
  });
  return constants;
}

function forEachSample(geo: Geometry, probes: number, visit: (t: number, offset: number) => void): void {
  let t = 0;
  for (let p = 0; p < probes; p++) {
    for (let s = 0; s < geo.spatial; s++) visit(t++, p * geo.probeStride + s * geo.spatialStride);
  }
}

function nonFiniteError(layer: RawLayer, geo: Geometry, probes: number, col: number, j: number): InputError {
  let where = 'values too large to sum in float64';
  forEachSample(geo, probes, (_t, off) => {
    const v = layer.data[off + col]!;
    if (where.startsWith('values') && !Number.isFinite(v)) where = `${v} at flat index ${off + col}`;
  });
  return new InputError(
    'E_INPUT_VALUES',
    layer.source,
    `neuron ${j} of layer "${layer.name}" holds a non-finite value (${where})`,
    're-export the activations without NaN or Inf (check the model for overflow, or replace them with np.nan_to_num)',
  );
}
