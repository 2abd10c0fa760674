/**
 * Runs an embedded one-pair job over shard sets by its out-of-core schedule
 * (shared/job/schedule.ts): splits the budget between the resident side's
 * arena and the streamed side's window, holds each pass's range once the
 * previous pass's tiles are done, reads the next streamed shard ahead while
 * the current one's tiles run, and keeps the null's samples as their shards
 * pass. The tail (the null's tiles when their samples are not kept) runs
 * through a ShardGate, each side's window a share of the budget.
 */
import { outOfCoreSchedule, scheduledPairs, type JobPlan, type JobTile, type ModelSource, type StreamedSide } from '../shared/job/index.js';
import type { ShardStream } from '../shared/formats/index.js';
import { deferred } from '../shared/deferred.js';
import { ShardGate } from './shard-gate.js';

/** Bytes of one side's kept null sample at most (beyond --memory, like the gathered samples of worker/tile-runner.ts). */
export const KEEP_BUDGET = 32 * 1024 * 1024;

export interface StreamScheduleRun {
  /** Every tile, in execution order. */
  readonly tiles: readonly JobTile[];
  /** Resolves when `tile` may start: its pass's range is held. */
  gate(tile: JobTile): Promise<void>;
  /** Counts a merged tile towards its pass. */
  done(tile: JobTile): void;
  /** Gives up every pass not yet started (a tile failed). */
  abort(error: unknown): void;
  readonly info: { readonly resident: 'F' | 'G'; readonly passes: number; readonly planned: number; readonly lowerBound: number };
}

const sideOf = (stream: ShardStream | null, m: number): StreamedSide | null =>
  stream === null ? null : { shards: stream.shards, m, bufferBytes: stream.bufferBytes };

/** The schedule of a one-pair job with a shard set on either side; null when it runs in plan order (nothing streams, several pairs, one model on both sides). */
export function streamSchedule(plan: JobPlan, sources: readonly ModelSource[], memory: number, keepBudget = KEEP_BUDGET): StreamScheduleRun | null {
  if (!scheduledPairs(plan.pairs)) return null;
  const pair = plan.pairs[0]!;
  const [f, g] = [sources[pair.f]!, sources[pair.g]!];
  if (f.stream === null && g.stream === null) return null;
  const m = f.model.m;
  const samples = pair.null?.samples ?? null;
  const keepSamples = samples === null || samples.every((s) => s.indices.length * m * 4 <= keepBudget);
  const schedule = outOfCoreSchedule(plan, { f: sideOf(f.stream, m), g: sideOf(g.stream, m), memory, keepSamples })!;
  const [held, streamed] = schedule.resident === 'F' ? [f.stream, g.stream] : [g.stream, f.stream];
  if (samples !== null && keepSamples) {
    f.stream?.keep(samples[0].indices);
    g.stream?.keep(samples[1].indices);
  }
  held?.setBudget(0);
  streamed?.setBudget(Math.max(0, memory - schedule.arena));

  // Tiles on one streamed shard form a group; a group may start once the one `slots` before it in its pass is done,
  // so tiles in flight pin at most `slots` window buffers; a pass may start once the previous pass is done (its range
  // is overwritten). The tail (nothing held) is one more pass of one group.
  const slots = streamed === null ? Infinity : Math.max(1, Math.floor((memory - schedule.arena) / streamed.bufferBytes));
  const passes = [...schedule.passes.map((p) => p.groups), [schedule.tail]];
  const groupOf = new Map<number, { readonly pass: number; readonly group: number }>();
  const remaining = passes.map((groups) => groups.map((tiles) => tiles.length));
  const groupDone = passes.map((groups) => groups.map(() => deferred()));
  const passDone = passes.map(() => deferred());
  passes.forEach((groups, p) => {
    groups.forEach((tiles, g) => {
      for (const tile of tiles) groupOf.set(tile.id, { pass: p, group: g });
    });
    void Promise.all(groupDone[p]!.map((d) => d.promise)).then(
      () => passDone[p]!.resolve(),
      () => undefined,
    );
  });
  // The tail pins shards through both sides' windows: each gets the same number of buffers, within the budget.
  const tailGate = new ShardGate(plan, sources);
  const tailBuffers = Math.floor(memory / ((held?.bufferBytes ?? 0) + (streamed?.bufferBytes ?? 0)));
  const tail = schedule.passes.length;
  const started: Promise<void>[] = [];
  const start = (p: number): Promise<void> => {
    started[p] ??= (p === 0 ? Promise.resolve() : passDone[p - 1]!.promise).then(() => {
      const hold = schedule.passes[p]?.hold;
      if (hold) held!.hold(hold[0], hold[1]);
      else if (p === tail) {
        // The tail: nothing is held any more.
        held?.unhold();
        held?.setBudget(tailBuffers * held.bufferBytes);
        streamed?.setBudget(tailBuffers * streamed.bufferBytes);
      }
    });
    return started[p];
  };
  // An empty group finishes at once.
  passes.forEach((groups, p) =>
    groups.forEach((tiles, g) => {
      if (tiles.length === 0) groupDone[p]![g]!.resolve();
    }),
  );
  return {
    tiles: passes.flat(2),
    async gate(tile) {
      const { pass, group } = groupOf.get(tile.id)!;
      await start(pass);
      if (group >= slots) await groupDone[pass]![group - slots]!.promise;
      if (pass === tail) await tailGate.enter(tile);
      const next = schedule.prefetch.get(tile.id);
      if (next !== undefined && streamed !== null) setImmediate(() => streamed.prefetch(next));
    },
    done(tile) {
      const { pass, group } = groupOf.get(tile.id)!;
      tailGate.leave(tile);
      if (--remaining[pass]![group]! === 0) groupDone[pass]![group]!.resolve();
    },
    abort(error) {
      for (const d of [...passDone, ...groupDone.flat()]) d.reject(error);
      tailGate.abort(error);
    },
    info: { resident: schedule.resident, passes: schedule.passes.length, planned: schedule.planned, lowerBound: schedule.lowerBound },
  };
}
