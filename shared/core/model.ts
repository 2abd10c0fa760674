/** A standardized model: the form every kernel and the reduction consume. */

export type ConvMode = 'units' | 'channels';

/** Where a rank >= 3 layer's channel axis is: first (`nchw`) or last (`nhwc`) of each probe's values. */
export type Layout = 'nchw' | 'nhwc';
export const LAYOUTS: readonly Layout[] = ['nchw', 'nhwc'];

/** The largest side channels pooling (`spatial`) takes. */
export const MAX_SPATIAL = 65_536;

export interface LayerInfo {
  readonly name: string;
  readonly depth: number;
  /** File (or file#tensor) the layer came from. */
  readonly source: string;
  /** Per-probe shape, as stored (without the leading M). */
  readonly shape: readonly number[];
  /** First global neuron index of the layer. */
  readonly start: number;
  /** Neurons in the layer (after sampling). */
  readonly count: number;
  /** Neurons in the layer before sampling. */
  readonly total: number;
  /** Constant neurons among `count`. */
  readonly constant: number;
  /** A rank >= 3 layer's layout, as its file or the `layout` option says; null (or absent) where unknown or for dense layers. */
  readonly layout?: Layout | null;
}

export interface Model {
  readonly path: string;
  /** Probes used (M, or K with --probes). */
  readonly probes: number;
  /** Samples per neuron: the length of each z vector (probes, or probes*H*W with --conv channels). */
  readonly m: number;
  readonly n: number;
  readonly layers: readonly LayerInfo[];
  /** Neuron-major standardized activations, n*m float32, backed by a SharedArrayBuffer. */
  readonly z: Float32Array;
  /** 1 where the neuron is constant (its z row is all zero). */
  readonly constant: Uint8Array;
  /** Original global index of each neuron when sampled; null when every neuron is kept. */
  readonly ids: Uint32Array | null;
  readonly fingerprint: string | null;
}

/** Index of the last item whose key is <= value, for items sorted by key (binary search). */
export function lastAtOrBefore<T>(items: readonly T[], value: number, key: (item: T) => number): number {
  let lo = 0;
  let hi = items.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (key(items[mid]!) <= value) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Index of the layer holding global neuron `i`. */
export function layerIndexOf(layers: readonly LayerInfo[], i: number): number {
  return lastAtOrBefore(layers, i, (l) => l.start);
}

export function originalId(model: Model, i: number): number {
  return model.ids === null ? i : model.ids[i]!;
}
