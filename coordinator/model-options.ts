/** How the activation sets are read (conv semantics, layout, pooling, partial selections): the option and its check. */
import { LAYOUTS, MAX_SPATIAL, type ConvMode, type Layout } from '../shared/core/index.js';
import { UsageError } from '../shared/errors.js';
import type { PairOptions, SpatialRequest } from '../shared/formats/index.js';
import { integer, isObject, knownKeys, oneOf, optional, stringList } from '../shared/validate.js';

/** How the activation sets are read: conv semantics, and the partial selections. */
export interface ModelOptions {
  /** A conv layer [M, C, H, W] gives C*H*W neurons (`units`, the default), or C neurons with M*H*W samples (`channels`). */
  readonly conv?: ConvMode;
  /** Channels: where the channel axis is on every rank >= 3 layer whose file does not say; without it such a layer is refused (units mode needs none). */
  readonly layout?: Layout;
  /** Channels: average-pool every layer's H x W maps to S x S (adaptive, as PyTorch's AdaptiveAvgPool2d), or `'min'`: to the smallest H by the smallest W of both models' maps. */
  readonly spatial?: number | 'min';
  /** Partial: keep only these layers, in both models / in F / in G. */
  readonly layers?: readonly string[];
  readonly layersF?: readonly string[];
  readonly layersG?: readonly string[];
  /** Partial: keep at most `n` neurons per layer, chosen with `seed` (default 0). */
  readonly sample?: { readonly n: number; readonly seed?: number };
  /** Partial: use only the first `probes` probes. */
  readonly probes?: number;
}

export const MODEL_KEYS = ['conv', 'layout', 'spatial', 'layers', 'layersF', 'layersG', 'sample', 'probes'] as const;

const uint32 = 2 ** 32 - 1;

export function modelOptions(o: Record<string, unknown>): PairOptions {
  const list = (key: 'layers' | 'layersF' | 'layersG') => optional<readonly string[] | null>(o[key], (v) => stringList(key, v), null);
  const sample =
    o['sample'] === undefined
      ? null
      : (() => {
          const s = isObject('sample', o['sample']);
          knownKeys('sample', s, ['n', 'seed']);
          return { n: integer('sample.n', s['n'], 1), seed: optional(s['seed'], (v) => integer('sample.seed', v, 0, uint32), 0) };
        })();
  const conv = optional(o['conv'], (v) => oneOf('conv', v, ['units', 'channels'] as const), 'units');
  const spatial = optional<SpatialRequest | null>(
    o['spatial'],
    (v) => (typeof v === 'string' ? oneOf('spatial', v, ['min'] as const) : integer('spatial', v, 1, MAX_SPATIAL)),
    null,
  );
  if (spatial !== null && conv !== 'channels')
    throw new UsageError((n) => `${n('spatial')} pools the maps of channels semantics: it needs ${n('conv')} channels`);
  return {
    conv,
    layout: optional<Layout | null>(o['layout'], (v) => oneOf('layout', v, LAYOUTS), null),
    spatial,
    layers: list('layers'),
    layersF: list('layersF'),
    layersG: list('layersG'),
    sample,
    probes: optional<number | null>(o['probes'], (v) => integer('probes', v, 2), null),
  };
}
