/** Runs a list of tiles through a compute function, a few at a time, and folds every result in as it arrives. */

export interface RunTilesOptions<T> {
  /** Tiles in flight at once. */
  readonly concurrency: number;
  readonly onTile?: (done: number, tile: T) => void;
  /** Resolves when a tile's inputs are ready (null: ready now). */
  readonly gate?: (tile: T) => Promise<unknown> | null;
  /** Called on the first failure, before the tiles in flight settle (so gates waiting on them can give up). */
  readonly onFailure?: (error: unknown) => void;
}

/** Computes every tile, `concurrency` at a time, and merges each result as it arrives. */
export async function runTiles<T, R>(
  tiles: readonly T[],
  compute: (tile: T) => Promise<R>,
  merge: (tile: T, result: R) => void,
  { concurrency, onTile, gate, onFailure }: RunTilesOptions<T>,
): Promise<void> {
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
        merge(tile, await compute(tile));
      } catch (error) {
        if (failures.push(error) === 1) onFailure?.(error);
        return;
      }
      done++;
      onTile?.(done, tile);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, tiles.length)) }, lane));
  if (failures.length > 0) throw failures[0];
}
