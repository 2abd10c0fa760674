/**
 * Opening and planning a pair of activation sets (headers only): every check
 * that needs no values. The embedded run, the cluster coordinator and its
 * workers all plan through here, so they agree on every layer and neuron.
 */
import { loadActivationSet } from './activations.js';
import { InputError, UsageError } from '../errors.js';
import type { ConvMode, Layout } from '../core/index.js';
import type { PartialInfo } from '../core/index.js';
import { hasMaps, layerLayout, mapSize, resolveGrid, type Grid, type SpatialInfo, type SpatialRequest } from './channels.js';
import { checkShardGrid, planShardSet } from './shard-model.js';
import { isShardSet } from './shards.js';
import type { ModelPlan } from './model-plan.js';
import { planModel, type StandardizeLoops } from './standardize.js';

export interface PairOptions {
  readonly conv: ConvMode;
  /** Channels mode: the layout of every rank >= 3 layer whose file does not say (null or absent: none). */
  readonly layout?: Layout | null;
  /** Channels mode: pool every layer's maps to S x S, or to the smallest maps of both models (null or absent: no pooling). */
  readonly spatial?: SpatialRequest | null;
  /** Layer names kept in both models / in F only / in G only (partial mode). */
  readonly layers: readonly string[] | null;
  readonly layersF: readonly string[] | null;
  readonly layersG: readonly string[] | null;
  readonly sample: { readonly n: number; readonly seed: number } | null;
  readonly probes: number | null;
  /** Native standardization loops, when the addon is loaded. */
  readonly loops?: StandardizeLoops | undefined;
}

export interface PlannedPair {
  readonly f: ModelPlan;
  readonly g: ModelPlan;
  readonly partial: PartialInfo | null;
  /** The pooling grid, when `spatial` was given. */
  readonly spatial: SpatialInfo | null;
}

/** One side of the pair, opened (headers only) and ready to plan. */
interface Side {
  readonly path: string;
  readonly probes: number;
  readonly fingerprint: string | null;
  readonly names: readonly string[];
  /** The H x W maps of the selected layers, which `spatial: 'min'` takes the smallest of. */
  maps(layers: string[] | null): Grid[];
  plan(layers: string[] | null, grid: Grid | null): ModelPlan;
}

function openSide(path: string, options: PairOptions, partial: boolean): Side {
  if (isShardSet(path)) {
    const plan = planShardSet(path, options.conv, partial);
    const { probes, fingerprint, layers, spatial } = plan.manifest;
    const plannedFor = (grid: Grid | null): ModelPlan => (checkShardGrid(path, plan.manifest, grid), plan);
    return { path, probes, fingerprint, names: layers.map((l) => l.name), maps: () => (spatial ? [spatial] : []), plan: (_, grid) => plannedFor(grid) };
  }
  const raw = loadActivationSet(path);
  const { loops } = options;
  const layout = options.layout ?? null;
  const common = { conv: options.conv, probes: options.probes, sample: options.sample, layout, ...(loops ? { loops } : {}) };
  return {
    path,
    probes: raw.layers[0]!.shape[0]!,
    fingerprint: raw.fingerprint,
    names: raw.layers.map((l) => l.name),
    maps: (layers) =>
      raw.layers.filter((l) => hasMaps(l.shape) && (layers === null || layers.includes(l.name))).map((l) => mapSize(l, layerLayout(raw, l, layout))),
    plan: (layers, grid) => planModel(raw, { ...common, layers, grid }),
  };
}

function selection(names: readonly string[], both: readonly string[] | null, own: readonly string[] | null): string[] | null {
  if (both === null && own === null) return null;
  return [...(both ?? []), ...(own ?? [])].filter((name) => names.includes(name));
}

function checkLayerNames(f: Side, g: Side, options: PairOptions): void {
  const missing = (names: readonly string[] | null, sides: Side[]) => (names ?? []).filter((n) => !sides.some((side) => side.names.includes(n)));
  const bad = [...missing(options.layers, [f, g]), ...missing(options.layersF, [f]), ...missing(options.layersG, [g])];
  if (bad.length > 0) {
    throw new UsageError((o) => `${o('layers')} names ${bad.join(', ')}, which no model has. F layers: ${f.names.join(', ')}. G layers: ${g.names.join(', ')}`);
  }
}

/** Opens both activation sets (headers only) and plans both models: every check that needs no values. */
export function planPair(fPath: string, gPath: string, options: PairOptions): PlannedPair {
  const isPartial = options.layers !== null || options.layersF !== null || options.layersG !== null || options.sample !== null || options.probes !== null;
  const sideF = openSide(fPath, options, isPartial);
  const sideG = openSide(gPath, options, isPartial);
  if (sideF.probes !== sideG.probes) {
    throw new InputError(
      'E_INPUT_MISMATCH',
      gPath,
      `has ${sideG.probes} probes but ${fPath} has ${sideF.probes}`,
      'run both models on the same probe set (same M)',
    );
  }
  if (sideF.fingerprint !== null && sideG.fingerprint !== null && sideF.fingerprint !== sideG.fingerprint) {
    throw new InputError(
      'E_INPUT_MISMATCH',
      gPath,
      `probe fingerprint ${sideG.fingerprint} differs from ${fPath}'s ${sideF.fingerprint}`,
      'run both models on the same probe set',
    );
  }
  checkLayerNames(sideF, sideG, options);
  const [selF, selG] = [selection(sideF.names, options.layers, options.layersF), selection(sideG.names, options.layers, options.layersG)];
  const request = options.conv === 'channels' ? (options.spatial ?? null) : null;
  const grid = request === null ? null : resolveGrid(request, [...sideF.maps(selF), ...sideG.maps(selG)]);
  const f = sideF.plan(selF, grid);
  const g = sideG.plan(selG, grid);
  if (f.m !== g.m) {
    throw new InputError(
      'E_INPUT_MISMATCH',
      gPath,
      `gives ${g.m} samples per neuron but ${fPath} gives ${f.m} (channels semantics multiplies probes by spatial positions)`,
      (o) =>
        `pool both models' maps to one size with ${o('spatial')} S (or min), select layers with the same spatial size in both models, or use ${o('conv')} units`,
    );
  }
  const partial: PartialInfo | null = isPartial
    ? { layers: [...(options.layers ?? []), ...(options.layersF ?? []), ...(options.layersG ?? [])], sample: options.sample, probes: options.probes }
    : null;
  return { f, g, partial, spatial: request === null ? null : { requested: request, ...grid! } };
}
