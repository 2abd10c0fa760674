/** How the activation sets are read (conv semantics, layout, pooling, partial selections): the option and its check. */
import type { ConvMode, Layout } from '../shared/core/index.js';
import { UsageError } from '../shared/errors.js';
import type { PairOptions, SpatialRequest } from '../shared/formats/index.js';
import { isObject, knownKeys, oneOf, optional } from '../shared/validate.js';
import { checkNumber, choice, maybeChoice, maybeList, maybeNum, num, OPTIONS } from '../shared/options/index.js';

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

const O = OPTIONS;

export function modelOptions(o: Record<string, unknown>): PairOptions {
  const list = (key: 'layers' | 'layersF' | 'layersG') => maybeList(O[key], o[key]);
  const sample =
    o['sample'] === undefined
      ? null
      : (() => {
          const s = isObject('sample', o['sample']);
          knownKeys('sample', s, ['n', 'seed']);
          return { n: checkNumber(O.sample, s['n']), seed: num(O.seed, s['seed']) };
        })();
  const conv = choice(O.conv, o['conv']);
  const spatial = optional<SpatialRequest | null>(
    o['spatial'],
    (v) => (typeof v === 'string' ? oneOf('spatial', v, ['min'] as const) : checkNumber(O.spatial, v)),
    null,
  );
  if (spatial !== null && conv !== 'channels')
    throw new UsageError((n) => `${n('spatial')} pools the maps of channels semantics: it needs ${n('conv')} channels`);
  return {
    conv,
    layout: maybeChoice(O.layout, o['layout']),
    spatial,
    layers: list('layers'),
    layersF: list('layersF'),
    layersG: list('layersG'),
    sample,
    probes: maybeNum(O.probes, o['probes']),
  };
}
