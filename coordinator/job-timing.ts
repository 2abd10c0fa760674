/**
 * The timings of a report, measured by the job driver from the outcomes it
 * merges, so they mean the same on every executor (docs/CLI.md, Report timings):
 *
 * - `seconds`: wall time from the start of the job (its models' headers
 *   read, none of their values yet) to the merge of the pair's last tile;
 * - `null.seconds`: the pair's null's share of that wall time, that is
 *   `seconds` times the compute seconds of the pair's null tiles over the
 *   compute seconds of every tile merged by then (a tile's compute seconds
 *   are what its thread or worker took to compute it). 0 when no null tile
 *   was computed in this run.
 *
 * Only this run's tiles count: a cluster job resumed from a checkpoint
 * states the time of the run that finished it.
 */
import type { JobPlan, JobTile, Merged, TileOutcome } from '../shared/job/index.js';

export interface PairTiming {
  readonly seconds: number;
  readonly nullSeconds: number;
}

interface PairClock {
  left: number;
  nullCompute: number;
  done: PairTiming | null;
}

export class JobClock {
  private readonly started = performance.now();
  private compute = 0;
  private pairs: PairClock[] = [];

  /** The run's wall seconds so far. */
  elapsed(): number {
    return (performance.now() - this.started) / 1000;
  }

  /** The job is planned; `done` marks the tiles already done (a resumed cluster job). */
  start(plan: JobPlan, done?: ArrayLike<number>): void {
    this.pairs = plan.pairs.map(() => ({ left: 0, nullCompute: 0, done: null }));
    for (const tile of plan.tiles) if (done === undefined || done[tile.id] === 0) this.pairs[tile.pair]!.left++;
  }

  /** Counts a merged outcome; true when it finished its pair's last tile. */
  merged(tile: JobTile, outcome: TileOutcome, merged: Merged): boolean {
    if (merged !== 'done') return false;
    // A super-tile's parts each carry the time so far: the last part's is the tile's.
    this.compute += outcome.seconds;
    const pair = this.pairs[tile.pair]!;
    if (tile.kind === 'null') pair.nullCompute += outcome.seconds;
    if (--pair.left !== 0) return false;
    pair.done = this.snapshot(pair);
    return true;
  }

  /** These tiles, done, are to be computed again (a worker found false): their pairs are not done until they are in again. */
  reopen(plan: JobPlan, ids: readonly number[]): void {
    for (const id of ids) {
      const pair = this.pairs[plan.tiles[id]!.pair]!;
      pair.left++;
      pair.done = null;
    }
  }

  /** Pair `index`'s timings: as its last tile was merged, or now when it had none left to run. */
  pair(index: number): PairTiming {
    const pair = this.pairs[index]!;
    return pair.done ?? this.snapshot(pair);
  }

  private snapshot(pair: PairClock): PairTiming {
    const seconds = this.elapsed();
    return { seconds, nullSeconds: this.compute > 0 ? (seconds * pair.nullCompute) / this.compute : 0 };
  }
}
