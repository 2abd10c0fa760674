/**
 * Runs a tile plan through a compute function and folds every result into a
 * Reduction. Used by the embedded pool and by in-process runs alike.
 */
import { Reduction, type ModelShape } from '../shared/reduce.js';
import type { Tile, TileResult } from '../shared/tile.js';

export type ComputeTile = (tile: Tile) => Promise<TileResult>;

export interface RunTilesOptions {
  /** Tiles in flight at once. */
  readonly concurrency: number;
  readonly onTile?: (done: number, tile: Tile) => void;
  /** Resolves when a tile's inputs are ready (null: ready now). */
  readonly gate?: (tile: Tile) => Promise<void> | null;
}

export async function runTiles(
  f: ModelShape,
  g: ModelShape,
  tiles: readonly Tile[],
  compute: ComputeTile,
  { concurrency, onTile, gate }: RunTilesOptions,
): Promise<Reduction> {
  const reduction = new Reduction(f, g);
  let next = 0;
  let done = 0;
  const failures: unknown[] = [];
  // On the first failure no new tile starts, and the error is raised only once
  // the tiles already in flight have settled, so nothing outlives the run.
  const lane = async (): Promise<void> => {
    while (failures.length === 0 && next < tiles.length) {
      const tile = tiles[next++]!;
      try {
        await gate?.(tile);
        reduction.merge(tile, await compute(tile));
      } catch (error) {
        failures.push(error);
        return;
      }
      done++;
      onTile?.(done, tile);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, tiles.length)) }, lane));
  if (failures.length > 0) throw failures[0];
  return reduction;
}
