/**
 * The job model (docs/ARCHITECTURE.md, "Jobs"). A job is a set of model pairs
 * over a set of models, planned once into tiles: every pair's main tiles
 * (an F block against a G block), then its permutation null's. Embedded and
 * cluster runs plan through here, and cluster workers re-plan the same job
 * from its spec, so every side agrees on every tile id.
 */
import { layerIndexOf, nullOptions, planNull, type Model, type NullOptions, type NullPlan, type NullRequest, type NullWork } from '../core/index.js';
import { InternalError } from '../errors.js';
import { planTiles, splitBlocks, type Block, type Range } from '../tiles/index.js';

/** A tile of a pair's main job: rows are F's block, columns G's. */
export interface MainTile {
  readonly kind: 'main';
  readonly id: number;
  readonly pair: number;
  readonly f: Block;
  readonly g: Block;
}

/** A tile of a pair's permutation null: a block of one side's sample (permuted) against a block of the other model. */
export interface NullTile extends NullWork {
  readonly kind: 'null';
  readonly id: number;
  readonly pair: number;
}

/**
 * A super-tile (cluster runs, span above 1): `span` consecutive blocks of F
 * against `span` of G. Its ranges may cross layers; a worker splits it into
 * kernel tiles (kernelTiles), each within one layer pair, and folds both
 * match modes of their results into one (SuperPart).
 */
export interface SuperTile {
  readonly kind: 'super';
  readonly id: number;
  readonly pair: number;
  readonly f: Range;
  readonly g: Range;
}

export type JobTile = MainTile | SuperTile | NullTile;

export interface JobPairInput {
  /** Model indices: rows of the main tiles come from `f`, columns from `g`. */
  readonly f: number;
  readonly g: number;
}

export interface PairPlan extends JobPairInput {
  /** The pair's permutation null, or null when it is off. */
  readonly null: NullPlan | null;
}

export interface JobPlan {
  /** Each model's layout (no values): layers, sizes, depths. */
  readonly models: readonly Model[];
  readonly pairs: readonly PairPlan[];
  /** Neurons per block: the side of a kernel tile. */
  readonly block: number;
  /** Blocks per side of a main tile: above 1, every main tile is a super-tile (see planJob). */
  readonly span: number;
  /** Every tile; a tile's id is its position here. */
  readonly tiles: readonly JobTile[];
}

export interface JobPlanOptions {
  readonly block: number;
  /**
   * Blocks per side of a main tile (default 1). Above 1, the main tiles are
   * super-tiles (cluster runs): `span` consecutive blocks of each model,
   * across layers, so a super-tile's result has as few entries as its size
   * allows. A worker splits one into the kernel tiles a plan of span 1 has
   * (kernelTiles) and folds their results. Null tiles are not grouped.
   */
  readonly span?: number;
  /** Each pair's permutation null (permutations 0: none), see pairNulls. */
  readonly nulls: readonly NullOptions[];
  /** Per model, where blocks must be cut (shard starts of a shard set; none for other sets). */
  readonly cuts?: readonly (readonly number[])[];
}

/**
 * Plans the tiles of every pair: first all main tiles (F-major within a pair,
 * so one F block stays hot while G blocks stream past), then all null tiles.
 */
export function planJob(models: readonly Model[], pairs: readonly JobPairInput[], options: JobPlanOptions): JobPlan {
  const cuts = (model: number) => options.cuts?.[model] ?? [];
  const span = options.span ?? 1;
  if (!Number.isInteger(span) || span < 1) throw new RangeError(`span must be a positive integer, got ${span}`);
  const tiles: JobTile[] = [];
  pairs.forEach((pair, index) => {
    const blocks = (model: number) => splitBlocks(models[model]!.layers, options.block, cuts(model));
    if (span === 1) {
      for (const t of planTiles(blocks(pair.f), blocks(pair.g))) tiles.push({ kind: 'main', id: tiles.length, pair: index, f: t.f, g: t.g });
      return;
    }
    const ranges = (model: number) => groupBlocks(blocks(model), span);
    const gs = ranges(pair.g);
    for (const f of ranges(pair.f)) for (const g of gs) tiles.push({ kind: 'super', id: tiles.length, pair: index, f, g });
  });
  const planned = pairs.map((pair, index): PairPlan => {
    const nul = options.nulls[index]!;
    if (nul.permutations === 0) return { ...pair, null: null };
    const plan = planNull(models[pair.f]!, models[pair.g]!, nul, options.block, [cuts(pair.f), cuts(pair.g)]);
    for (const work of plan.work) tiles.push({ kind: 'null', id: tiles.length, pair: index, ...work });
    return { ...pair, null: plan };
  });
  return { models, pairs: planned, block: options.block, span, tiles };
}

/** Runs of `span` consecutive blocks, each as one neuron range. */
function groupBlocks(blocks: readonly Block[], span: number): Range[] {
  const out: Range[] = [];
  for (let i = 0; i < blocks.length; i += span) {
    const first = blocks[i]!;
    const last = blocks[Math.min(i + span, blocks.length) - 1]!;
    out.push({ start: first.start, count: last.start + last.count - first.start });
  }
  return out;
}

/**
 * A super-tile's kernel tiles, F-major: its F and G ranges cut at layer
 * ends, into blocks of `plan.block` and at `cuts` (each model's shard
 * starts), exactly as a plan of span 1 cuts the models (a block's end
 * depends on its start alone, and every range starts at a block start).
 */
export function kernelTiles(plan: JobPlan, tile: SuperTile, cuts: readonly (readonly number[])[]): MainTile[] {
  const pair = plan.pairs[tile.pair]!;
  const split = (r: Range, model: number): Block[] => {
    const layers = plan.models[model]!.layers;
    const first = layerIndexOf(layers, r.start);
    const parts: { start: number; count: number }[] = [];
    for (let l = first; l < layers.length && layers[l]!.start < r.start + r.count; l++) {
      const start = Math.max(r.start, layers[l]!.start);
      parts.push({ start, count: Math.min(r.start + r.count, layers[l]!.start + layers[l]!.count) - start });
    }
    return splitBlocks(parts, plan.block, cuts[model] ?? []).map((b) => ({ ...b, layer: first + b.layer }));
  };
  const gs = split(tile.g, pair.g);
  return split(tile.f, pair.f).flatMap((f) => gs.map((g): MainTile => ({ kind: 'main', id: tile.id, pair: tile.pair, f, g })));
}

const NO_NULL: NullOptions = { permutations: 0, sample: 0, seed: 0 };

/** Each pair's null, its sample sized for the pair's own models, as a job of that pair alone sizes it (none when `request` is null). */
export function pairNulls(request: NullRequest | null | undefined, models: readonly { readonly n: number }[], pairs: readonly JobPairInput[]): NullOptions[] {
  return pairs.map((pair) => (request ? nullOptions(request, models[pair.f]!.n, models[pair.g]!.n) : NO_NULL));
}

/** One operand of a tile's kernel call: a block of a model, or (`sampled`) a block of a pair's null sample, gathered and permuted. */
export interface Operand {
  readonly model: number;
  readonly block: Block;
  readonly sampled: boolean;
}

/**
 * What the kernel multiplies. A main tile: F's block as rows, G's as columns.
 * A null tile: the other model's block as rows (long, packed once and kept
 * while the short sample blocks pass) and the sample block as columns; the
 * sample's best matches are the column maxima. A dot product is the same sum
 * in the same order either way round, so only speed depends on this.
 */
export function operands(plan: JobPlan, tile: JobTile): { readonly rows: Operand; readonly cols: Operand } {
  const pair = plan.pairs[tile.pair]!;
  if (tile.kind === 'super') throw new InternalError(`super-tile ${tile.id} has no single operand pair: split it into its kernel tiles first`);
  if (tile.kind === 'main') {
    return { rows: { model: pair.f, block: tile.f, sampled: false }, cols: { model: pair.g, block: tile.g, sampled: false } };
  }
  const [own, other] = tile.side === 0 ? [pair.f, pair.g] : [pair.g, pair.f];
  return { rows: { model: other, block: tile.other, sampled: false }, cols: { model: own, block: tile.sample, sampled: true } };
}

/** Neuron pairs a tile compares. */
export function tilePairs(tile: JobTile): number {
  return tile.kind === 'null' ? tile.sample.count * tile.other.count : tile.f.count * tile.g.count;
}

/** Result entries of a super-tile: its F range's neurons, then its G range's. */
export function superEntries(tile: SuperTile): number {
  return tile.f.count + tile.g.count;
}

/** The tile in words, for errors: which layers and neurons, or which null sample. */
export function describeTile(plan: JobPlan, tile: JobTile): string {
  const pair = plan.pairs[tile.pair]!;
  const side = (model: number, b: Block) => `${plan.models[model]!.layers[b.layer]?.name ?? `layer ${b.layer}`} neurons ${b.start}..${b.start + b.count - 1}`;
  const where = plan.pairs.length > 1 ? ` of pair ${tile.pair}` : '';
  if (tile.kind === 'super') {
    const range = (model: number, r: Range) => {
      const layers = plan.models[model]!.layers;
      const [a, b] = [layerIndexOf(layers, r.start), layerIndexOf(layers, r.start + r.count - 1)].map((l) => layers[l]?.name ?? `layer ${l}`);
      return `neurons ${r.start}..${r.start + r.count - 1} (${a === b ? a : `${a} to ${b}`})`;
    };
    return `super-tile ${tile.id}${where} (F ${range(pair.f, tile.f)}, G ${range(pair.g, tile.g)})`;
  }
  if (tile.kind === 'main') return `tile ${tile.id}${where} (F ${side(pair.f, tile.f)}, G ${side(pair.g, tile.g)})`;
  const [own, other, otherModel] = tile.side === 0 ? ['F', 'G', pair.g] : ['G', 'F', pair.f];
  return `tile ${tile.id}${where} (permutation null ${tile.k}: ${tile.sample.count} sampled ${own} neurons against ${other} ${side(otherModel, tile.other)})`;
}

/** Same tile, as far as a message can say: kind, pair and blocks. */
export function sameTile(a: JobTile, b: JobTile): boolean {
  const same = (x: Block, y: Block) => x.layer === y.layer && sameRange(x, y);
  const sameRange = (x: Range, y: Range) => x.start === y.start && x.count === y.count;
  if (a.id !== b.id || a.pair !== b.pair) return false;
  if (a.kind === 'main') return b.kind === 'main' && same(a.f, b.f) && same(a.g, b.g);
  if (a.kind === 'super') return b.kind === 'super' && sameRange(a.f, b.f) && sameRange(a.g, b.g);
  return b.kind === 'null' && a.k === b.k && a.side === b.side && same(a.sample, b.sample) && same(a.other, b.other);
}
