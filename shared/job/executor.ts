/**
 * The tile executor: what runs a job's tiles. Two implementations share
 * every other part of a job (docs/ARCHITECTURE.md): the local piscina pool
 * (coordinator/embedded.ts) and NATS JetStream (coordinator/cluster/).
 */
import type { TileResult } from '../tiles/index.js';
import type { JobTile } from './plan.js';

export interface TileOutcome {
  readonly result: TileResult;
  /** Constant flags of a main tile's row neurons, then its column neurons; null for null tiles. */
  readonly constant: Uint8Array | null;
  /** Compute time of the tile. */
  readonly seconds: number;
}

/**
 * Folds a tile's outcome into the job's state. Returns false when the tile
 * was done already (a duplicate); an executor may count those.
 */
export type Accept = (tile: JobTile, outcome: TileOutcome) => boolean;

export interface TileExecutor {
  /** Runs `tiles` and hands every outcome to `accept`; resolves once every tile is accepted, rejects on the first failure. */
  execute(tiles: readonly JobTile[], accept: Accept): Promise<void>;
}
