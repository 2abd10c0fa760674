/**
 * Where neurons find their partners: the two checks that explain the
 * rankings (docs/STUDY.md).
 *
 * - Depth: how far (in the study's depths) a neuron's best partner sits from
 *   its own depth, from the reports' per-layer `matchDepths` (paper mode).
 * - Place (units semantics): whether a unit's best partner (`--matches`)
 *   sits at the same place in the image, within one cell of the coarser grid,
 *   against what a partner drawn uniformly from the same layer would give.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { StudyError } from './common.js';
import type { PairResult, ReportLayer } from './experiment.js';

export interface DepthShift {
  /** Mean |depth − partner depth| over F's neurons (F → G) and over G's (G → F), paper mode. */
  readonly forward: number;
  readonly backward: number;
  /** Share of each side's deepest conv stage (depth 3) whose partner sits at depth 0 or 1. */
  readonly deepToShallowForward: number;
  readonly deepToShallowBackward: number;
}

function shift(layers: readonly ReportLayer[]): { mean: number; deepToShallow: number } {
  let sum = 0;
  let count = 0;
  let deep = 0;
  let deepShallow = 0;
  for (const l of layers) {
    for (const [d, n] of Object.entries(l.matchDepths.paper)) {
      sum += Math.abs(l.depth - Number(d)) * n;
      count += n;
      if (l.depth === 3) {
        deep += n;
        if (Number(d) <= 1) deepShallow += n;
      }
    }
  }
  return { mean: count === 0 ? NaN : sum / count, deepToShallow: deep === 0 ? NaN : deepShallow / deep };
}

export function depthShift(p: PairResult): DepthShift {
  const f = shift(p.layers.filter((l) => l.model === 'F'));
  const g = shift(p.layers.filter((l) => l.model === 'G'));
  return { forward: f.mean, backward: g.mean, deepToShallowForward: f.deepToShallow, deepToShallowBackward: g.deepToShallow };
}

export interface PlaceMatch {
  /** Units of a spatial layer with a partner (not constant). */
  readonly live: number;
  /** Of those whose partner is in a spatial layer: the share within one cell of the coarser grid, and that share for a partner drawn uniformly from the other model's spatial layers. */
  readonly near: number;
  readonly chance: number;
  /** Share whose partner is in the other model's pooled vector. */
  readonly pooled: number;
}

interface Placed {
  readonly layer: ReportLayer;
  readonly first: number;
}

function index(layers: readonly ReportLayer[]): Map<string, Placed> {
  const out = new Map<string, Placed>();
  let first = 0;
  for (const layer of layers) {
    out.set(layer.name, { layer, first });
    first += layer.neurons;
  }
  return out;
}

/** Centre of the cell of neuron `i` (global index) of an NHWC layer, in [0, 1]², and the grid. */
function cell(p: Placed, i: number): { y: number; x: number; h: number; w: number } | null {
  if (p.layer.shape.length !== 3) return null;
  const [h, w, c] = p.layer.shape as [number, number, number];
  const pos = Math.floor((i - p.first) / c);
  return { y: (Math.floor(pos / w) + 0.5) / h, x: ((pos % w) + 0.5) / w, h, w };
}

/** Chebyshev distance at most one cell of the coarser of the two grids. */
const near = (a: { y: number; x: number; h: number; w: number }, b: { y: number; x: number; h: number; w: number }) =>
  Math.abs(a.y - b.y) <= 1 / Math.min(a.h, b.h) + 1e-9 && Math.abs(a.x - b.x) <= 1 / Math.min(a.w, b.w) + 1e-9;

/** Share of a partner layer's cells near a given cell. */
function nearShare(a: { y: number; x: number; h: number; w: number }, partner: ReportLayer): number {
  const [h, w] = partner.shape as [number, number, number];
  let n = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (near(a, { y: (y + 0.5) / h, x: (x + 0.5) / w, h, w })) n++;
  return n / (h * w);
}

/** Reads a pair's `--matches` CSV: the place check for F → G and G → F. */
export async function placeMatch(p: PairResult): Promise<{ forward: PlaceMatch; backward: PlaceMatch }> {
  if (p.matches === null) throw new StudyError(`${p.f} vs ${p.g}: no --matches file`);
  const sides = { F: index(p.layers.filter((l) => l.model === 'F')), G: index(p.layers.filter((l) => l.model === 'G')) };
  const acc = { F: { live: 0, spatial: 0, near: 0, chance: 0, pooled: 0 }, G: { live: 0, spatial: 0, near: 0, chance: 0, pooled: 0 } };
  const chanceCache = new Map<string, number>();
  const lines = createInterface({ input: createReadStream(p.matches), crlfDelay: Infinity });
  let header = true;
  for await (const line of lines) {
    if (header) {
      if (line !== 'model,neuron,layer,partner,partner_layer,abs_rho,S') throw new StudyError(`${p.matches}: unexpected header ${line}`);
      header = false;
      continue;
    }
    const [model, neuron, layer, partner, partnerLayer, absRho] = line.split(',');
    if (model !== 'F' && model !== 'G') continue;
    const own = sides[model].get(layer!);
    const other = sides[model === 'F' ? 'G' : 'F'].get(partnerLayer!);
    if (own === undefined || other === undefined) throw new StudyError(`${p.matches}: unknown layer in ${line}`);
    const a = cell(own, Number(neuron));
    if (a === null || Number(absRho) === 0) continue;
    const s = acc[model];
    s.live++;
    const b = cell(other, Number(partner));
    if (b === null) {
      s.pooled++;
      continue;
    }
    s.spatial++;
    if (near(a, b)) s.near++;
    const key = `${model}|${layer}|${a.y}|${a.x}`;
    let chance = chanceCache.get(key);
    if (chance === undefined) {
      const spatial = [...sides[model === 'F' ? 'G' : 'F'].values()].filter((q) => q.layer.shape.length === 3);
      const total = spatial.reduce((sum, q) => sum + q.layer.neurons, 0);
      chance = spatial.reduce((sum, q) => sum + nearShare(a, q.layer) * q.layer.neurons, 0) / Math.max(1, total);
      chanceCache.set(key, chance);
    }
    s.chance += chance;
  }
  const out = (s: { live: number; spatial: number; near: number; chance: number; pooled: number }): PlaceMatch => ({
    live: s.live,
    near: s.near / Math.max(1, s.spatial),
    chance: s.chance / Math.max(1, s.spatial),
    pooled: s.pooled / Math.max(1, s.live),
  });
  return { forward: out(acc.F), backward: out(acc.G) };
}
