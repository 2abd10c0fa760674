/**
 * The tile executor: what runs a job's tiles. Two implementations share
 * every other part of a job (docs/ARCHITECTURE.md): the local piscina pool
 * (coordinator/embedded.ts) and NATS JetStream (coordinator/cluster/).
 */
import type { SuperPart, TileResult } from '../tiles/index.js';
import type { JobTile } from './plan.js';

/** A kernel tile's outcome (a main or null tile). */
export interface KernelOutcome {
  readonly kind: 'tile';
  readonly result: TileResult;
  /** Constant flags of a main tile's row neurons, then its column neurons; null for null tiles. */
  readonly constant: Uint8Array | null;
  /** Compute time of the tile. */
  readonly seconds: number;
}

/** A super-tile's folded result, whole or (over the wire) one part of it. */
export interface PartOutcome {
  readonly kind: 'part';
  readonly part: SuperPart;
  /** Constant flags of the part's entries (F range neurons, then G range neurons). */
  readonly constant: Uint8Array;
  readonly seconds: number;
}

export type TileOutcome = KernelOutcome | PartOutcome;

/** What an outcome did: finished its tile, filled in part of a super-tile, or nothing (it was a duplicate). */
export type Merged = 'done' | 'part' | 'duplicate';

/** Folds a tile's outcome into the job's state; an executor may count the duplicates. */
export type Accept = (tile: JobTile, outcome: TileOutcome) => Merged;

export interface TileExecutor {
  /** Runs `tiles` and hands every outcome to `accept`; resolves once every tile is done, rejects on the first failure. */
  execute(tiles: readonly JobTile[], accept: Accept): Promise<void>;
}
