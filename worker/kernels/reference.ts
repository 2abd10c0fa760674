/** The float64 oracle: plain loops, sequential sums. */
import { allocTileResult, type TileResult } from '../../shared/tiles/index.js';
import type { Kernel, TileInput } from '../kernel.js';

export function computeTileReference({ f, g, fCount, gCount, m, fStart, gStart }: TileInput): TileResult {
  const result = allocTileResult(fCount, gCount);
  const { rowBest, rowArg, colBest, colArg } = result;
  rowBest.fill(-1);
  colBest.fill(-1);
  for (let i = 0; i < fCount; i++) {
    const fo = i * m;
    for (let j = 0; j < gCount; j++) {
      const go = j * m;
      let dot = 0;
      for (let k = 0; k < m; k++) dot += f[fo + k]! * g[go + k]!;
      const r = Math.abs(dot);
      // Ascending loops plus strict '>' keep the smallest index on ties.
      if (r > rowBest[i]!) {
        rowBest[i] = r;
        rowArg[i] = gStart + j;
      }
      if (r > colBest[j]!) {
        colBest[j] = r;
        colArg[j] = fStart + i;
      }
    }
  }
  return result;
}

export const referenceKernel: Kernel = { name: 'reference', computeTile: computeTileReference };
