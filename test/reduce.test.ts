/** The merge is commutative, associative and idempotent, with the smallest-index tie rule. */
import { describe, expect, it } from 'vitest';
import { DirectionState, Reduction } from '../dist/shared/core/index.js';
import { allocTileResult, planTiles, splitBlocks, type Tile, type TileResult } from '../dist/shared/tiles/index.js';
import type { LayerInfo } from '../dist/shared/core/index.js';
import { rng } from './helpers/models.js';

const layer = (name: string, depth: number, start: number, count: number): LayerInfo => ({
  name,
  depth,
  source: name,
  shape: [count],
  start,
  count,
  total: count,
  constant: 0,
});

describe('DirectionState.merge', () => {
  it('keeps the larger value, then the smaller partner index', () => {
    const s = new DirectionState(3);
    s.merge(0, Float64Array.from([0.5, 0.5, 0.5]), Uint32Array.from([7, 7, 7]), 1);
    s.merge(0, Float64Array.from([0.6, 0.5, 0.4]), Uint32Array.from([9, 3, 1]), 1);
    expect(Array.from(s.best)).toEqual([0.6, 0.5, 0.5]);
    expect(Array.from(s.arg)).toEqual([9, 3, 7]);
  });

  it('penalized mode divides by the depth gap before comparing', () => {
    const s = new DirectionState(1);
    s.merge(0, Float64Array.from([0.9]), Uint32Array.from([5]), 3); // 0.3
    s.merge(0, Float64Array.from([0.4]), Uint32Array.from([8]), 1); // 0.4
    expect(s.best[0]).toBe(0.9);
    expect(s.arg[0]).toBe(5);
    expect(s.pen[0]).toBe(0.4);
    expect(s.penArg[0]).toBe(8);
    expect(s.penRho[0]).toBe(0.4);
  });
});

describe('Reduction over random tile results', () => {
  const f = { n: 10, layers: [layer('a', 0, 0, 4), layer('b', 1, 4, 6)], constant: new Uint8Array(10) };
  const g = { n: 7, layers: [layer('c', 0, 0, 3), layer('d', 2, 3, 4)], constant: new Uint8Array(7) };
  const tiles = planTiles(splitBlocks(f.layers, 3), splitBlocks(g.layers, 2));
  const r = rng(99);
  // Values from a small set so ties are frequent.
  const results = new Map<Tile, TileResult>(
    tiles.map((t) => {
      const res = allocTileResult(t.f.count, t.g.count);
      for (let i = 0; i < t.f.count; i++) {
        res.rowBest[i] = Math.floor(r() * 4) / 4;
        res.rowArg[i] = t.g.start + Math.floor(r() * t.g.count);
      }
      for (let j = 0; j < t.g.count; j++) {
        res.colBest[j] = Math.floor(r() * 4) / 4;
        res.colArg[j] = t.f.start + Math.floor(r() * t.f.count);
      }
      return [t, res];
    }),
  );
  const state = (order: Tile[]) => {
    const red = new Reduction(f, g);
    for (const t of order) red.merge(t, results.get(t)!);
    const { forward: a, backward: b } = red;
    return JSON.stringify([a.best, a.arg, a.pen, a.penArg, b.best, b.arg, b.pen, b.penArg].map((x) => Array.from(x)));
  };

  it('gives the same state in any order, with duplicates', () => {
    const baseline = state(tiles);
    expect(state([...tiles].reverse())).toBe(baseline);
    const shuffled = [...tiles].sort(() => r() - 0.5);
    expect(state(shuffled)).toBe(baseline);
    expect(state([...tiles, ...tiles.slice(0, 5), ...shuffled])).toBe(baseline);
  });

  it('rejects a result whose size does not match its tile', () => {
    const red = new Reduction(f, g);
    expect(() => red.merge(tiles[0]!, allocTileResult(1, 1))).toThrow(/expected/);
  });
});

describe('blocks', () => {
  it('never straddle a layer', () => {
    const layers = [layer('a', 0, 0, 5), layer('b', 1, 5, 1), layer('c', 2, 6, 9)];
    const blocks = splitBlocks(layers, 4);
    expect(blocks.map((b) => [b.layer, b.start, b.count])).toEqual([
      [0, 0, 4],
      [0, 4, 1],
      [1, 5, 1],
      [2, 6, 4],
      [2, 10, 4],
      [2, 14, 1],
    ]);
    expect(() => splitBlocks(layers, 0)).toThrow(RangeError);
  });

  it('plans F-major: one F block stays while G blocks stream past', () => {
    const tiles = planTiles(splitBlocks([layer('a', 0, 0, 4)], 2), splitBlocks([layer('b', 0, 0, 6)], 2));
    expect(tiles.map((t) => [t.f.start, t.g.start])).toEqual([
      [0, 0],
      [0, 2],
      [0, 4],
      [2, 0],
      [2, 2],
      [2, 4],
    ]);
  });
});
