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

function checkLayerNames(sides: readonly Side[], labels: readonly string[], options: PairOptions, own: readonly (readonly string[] | null)[]): void {
  const missing = (names: readonly string[] | null, among: readonly Side[]) => (names ?? []).filter((n) => !among.some((side) => side.names.includes(n)));
  const bad = [...missing(options.layers, sides), ...own.flatMap((names, k) => missing(names, [sides[k]!]))];
  if (bad.length > 0) {
    const available = sides.map((side, k) => `${labels[k]} layers: ${side.names.join(', ')}`).join('. ');
    throw new UsageError((o) => `${o('layers')} names ${bad.join(', ')}, which no model has. ${available}`);
  }
}

export interface PlannedSet {
  /** Each model's plan, in the order of the paths. */
  readonly models: readonly ModelPlan[];
  readonly partial: PartialInfo | null;
  /** The pooling grid, when `spatial` was given. */
  readonly spatial: SpatialInfo | null;
}

/**
 * Opens activation sets (headers only) and plans every model: every check
 * that needs no values. All must share the probes (and the probe fingerprint
 * where declared) and the samples per neuron; a mismatch names both sets.
 * `layersF` and `layersG` select layers of the first and the second model
 * (a pair); `spatial: 'min'` takes the smallest maps of every model.
 */
export function planModels(paths: readonly string[], options: PairOptions): PlannedSet {
  const isPartial = options.layers !== null || options.layersF !== null || options.layersG !== null || options.sample !== null || options.probes !== null;
  const sides = paths.map((path) => openSide(path, options, isPartial));
  const first = sides[0]!;
  for (const side of sides.slice(1)) {
    if (side.probes !== first.probes) {
      throw new InputError(
        'E_INPUT_MISMATCH',
        side.path,
        `has ${side.probes} probes but ${first.path} has ${first.probes}`,
        'run both models on the same probe set (same M)',
      );
    }
    const declared = sides.find((other) => other.fingerprint !== null && side.fingerprint !== null && other.fingerprint !== side.fingerprint);
    if (declared !== undefined) {
      throw new InputError(
        'E_INPUT_MISMATCH',
        side.path,
        `probe fingerprint ${side.fingerprint} differs from ${declared.path}'s ${declared.fingerprint}`,
        'run both models on the same probe set',
      );
    }
  }
  const own = paths.map((_, k) => (k === 0 ? options.layersF : k === 1 ? options.layersG : null));
  checkLayerNames(sides, paths.length === 2 ? ['F', 'G'] : paths, options, own);
  const selected = sides.map((side, k) => selection(side.names, options.layers, own[k]!));
  const request = options.conv === 'channels' ? (options.spatial ?? null) : null;
  const grid =
    request === null
      ? null
      : resolveGrid(
          request,
          sides.flatMap((side, k) => side.maps(selected[k]!)),
        );
  const models = sides.map((side, k) => side.plan(selected[k]!, grid));
  for (const [k, model] of models.entries()) {
    if (model.m === models[0]!.m) continue;
    throw new InputError(
      'E_INPUT_MISMATCH',
      paths[k]!,
      `gives ${model.m} samples per neuron but ${paths[0]!} gives ${models[0]!.m} (channels semantics multiplies probes by spatial positions)`,
      (o) =>
        `pool both models' maps to one size with ${o('spatial')} S (or min), select layers with the same spatial size in both models, or use ${o('conv')} units`,
    );
  }
  const partial: PartialInfo | null = isPartial
    ? { layers: [...(options.layers ?? []), ...(options.layersF ?? []), ...(options.layersG ?? [])], sample: options.sample, probes: options.probes }
    : null;
  return { models, partial, spatial: request === null ? null : { requested: request, ...grid! } };
}

/** Opens both activation sets (headers only) and plans both models: every check that needs no values. */
export function planPair(fPath: string, gPath: string, options: PairOptions): PlannedPair {
  const { models, partial, spatial } = planModels([fPath, gPath], options);
  return { f: models[0]!, g: models[1]!, partial, spatial };
}
