/**
 * The out-of-core schedule of a one-pair job whose models are (one or both)
 * shard sets: a block-nested loop. One side is resident: its shards are
 * packed, in order and by their exact sizes, into ranges that fit what the
 * budget leaves after the other side's window (two shard buffers: the shard
 * the tiles read and the next, read ahead). Each range is one pass: it is
 * held while the other side streams past it once, so the streamed side is
 * read once per pass and the resident side once in all. Passes alternate the
 * stream's direction, so a pass starts on the shards the last one ended on.
 * The executor starts a streamed shard's tiles only once the window has a
 * buffer for it, so tiles in flight never pin more than the window holds.
 *
 * Only the order of execution changes: tile ids are the plan's (cluster
 * workers re-plan the same job), and merging is order-independent, so the
 * scores are the same bits.
 *
 * The permutation null rides along when its samples are kept as their shards
 * pass (ShardStream.keep): tiles against the resident side run at the end of
 * each pass (the streamed side's sample is complete once the first pass has
 * streamed it all), tiles against the streamed side run in the last pass
 * beside the main tiles of the same streamed shard (the resident side's
 * sample is complete once the last range is in). Otherwise the null's tiles
 * run after the passes, in plan order.
 */
import { lastAtOrBefore } from '../core/index.js';
import type { Block } from '../tiles/index.js';
import type { JobPairInput, JobPlan, JobTile } from './plan.js';

/** A shard set's layout as the schedule sees it. */
export interface StreamedSide {
  /** Shards in order: first neuron, neurons, file bytes (what one read costs). */
  readonly shards: readonly { readonly first: number; readonly count: number; readonly bytes: number }[];
  readonly m: number;
  /** Bytes one shard takes in the streaming window (every window buffer fits the largest shard). */
  readonly bufferBytes: number;
}

export type Side = 'F' | 'G';

export interface Pass {
  /** The resident side's shards [first, end) this pass holds; null when the resident side is in memory. */
  readonly hold: readonly [number, number] | null;
  /** The pass's tiles in execution order, grouped by the streamed shard they read (the last group may read none: the null's tiles against the resident side). */
  readonly groups: readonly (readonly JobTile[])[];
}

export interface Schedule {
  readonly resident: Side;
  readonly passes: readonly Pass[];
  /** Tiles that run after the passes, with nothing held (the null's, when its samples are not kept). */
  readonly tail: readonly JobTile[];
  /** Per tile id: the neuron whose streamed shard to read ahead once this tile starts. */
  readonly prefetch: ReadonlyMap<number, number>;
  /** Bytes of the resident side's largest range (its arena); the streamed side's window gets the rest of the budget. */
  readonly arena: number;
  /** File bytes the schedule reads if nothing else is evicted. */
  readonly planned: number;
  /** The block-nested-loop lower bound for the budget: |resident| + |streamed| x passes, with the fewest passes one streamed shard buffer leaves room for. */
  readonly lowerBound: number;
}

export interface ScheduleInput {
  /** Each side's shard set; null for a model held in memory. */
  readonly f: StreamedSide | null;
  readonly g: StreamedSide | null;
  /** Bytes of decoded shards the job may hold (both sides together). */
  readonly memory: number;
  /** Whether the null's samples are kept as their shards pass (so its tiles can ride along with the passes). */
  readonly keepSamples: boolean;
}

interface Roles {
  readonly resident: Side;
  readonly ranges: readonly (readonly [number, number])[] | null;
  readonly arena: number;
  readonly planned: number;
}

/** A model of a job as a budget sees it: a shard set's row length (floats) and the neurons of its largest shard. */
export interface BudgetModel {
  readonly m: number;
  readonly largest: number;
}

export interface ShardBudget {
  /** Bytes of decoded shards the job needs at least; 0 when no model is a shard set. */
  readonly need: number;
  /** `pair`: one pair of two models, run by the out-of-core schedule; `shared`: the shard sets share the budget equally. */
  readonly rule: 'pair' | 'shared';
  /** Shard sets among the models. */
  readonly sets: number;
  /** The shard sets (model indices) that do not fit: both of the pair, or those whose buffers exceed their share; empty when the job fits. */
  readonly over: readonly number[];
  /** The most neurons per shard with which the job fits `memory`, were every shard set's shards at most that large; 0 when none would. */
  readonly shardNeurons: number;
}

/** Whether a job runs by the out-of-core schedule (one pair of two models); otherwise its shard sets share the budget. */
export function scheduledPairs(pairs: readonly JobPairInput[]): boolean {
  return pairs.length === 1 && pairs[0]!.f !== pairs[0]!.g;
}

/**
 * What a job over shard sets needs of a budget of `memory` bytes of decoded
 * shards (a shard takes count x m x 4 bytes; a buffer of a set's LRU window
 * takes its largest shard's). `models` are the job's models, null for one
 * held whole (it takes no budget).
 *
 * One pair of two models runs by the out-of-core schedule: the held side's
 * range takes at least its largest shard and the streamed side's window at
 * least one buffer (a second, when the budget has room, lets it read ahead).
 * So the pair needs the sum of its shard sets' largest shards, whichever side
 * is held; the schedule's tail gives each side as many buffers.
 *
 * Any other job gives each of its k shard sets memory / k, and a set needs a
 * buffer for each shard one tile holds of it (tiles wait until theirs fit):
 * two when it is paired with itself (a block on each side, or a block and the
 * null's sample gathered from it), one otherwise.
 */
export function shardBudget(models: readonly (BudgetModel | null)[], pairs: readonly JobPairInput[], memory: number): ShardBudget {
  const sets = models.flatMap((x, k) => (x === null ? [] : [k]));
  const bytes = (k: number): number => models[k]!.largest * models[k]!.m * 4;
  const m = Math.max(0, ...sets.map((k) => models[k]!.m));
  const fit = (need: number, buffers: number, over: number[]): Omit<ShardBudget, 'rule'> => ({
    need,
    sets: sets.length,
    over,
    shardNeurons: buffers === 0 ? 0 : Math.floor(memory / (buffers * m * 4)),
  });
  if (scheduledPairs(pairs)) {
    const pair = sets.filter((k) => k === pairs[0]!.f || k === pairs[0]!.g);
    const need = pair.reduce((sum, k) => sum + bytes(k), 0);
    return { rule: 'pair', ...fit(need, pair.length, need > memory ? pair : []) };
  }
  const self = new Set(pairs.filter((p) => p.f === p.g).map((p) => p.f));
  const buffers = (k: number): number => (self.has(k) ? 2 : 1);
  const need = sets.length * Math.max(0, ...sets.map((k) => buffers(k) * bytes(k)));
  const over = sets.filter((k) => sets.length * buffers(k) * bytes(k) > memory);
  return { rule: 'shared', ...fit(need, sets.length * Math.max(0, ...sets.map(buffers)), over) };
}

const fileBytes = (side: StreamedSide | null): number => side?.shards.reduce((sum, s) => sum + s.bytes, 0) ?? 0;
const shardBytes = (side: StreamedSide, i: number): number => side.shards[i]!.count * side.m * 4;

/** Consecutive shards packed greedily into ranges of at most `capacity` bytes (at least one shard each). */
export function packRanges(side: StreamedSide, capacity: number): [number, number][] {
  const ranges: [number, number][] = [];
  let first = 0;
  let bytes = 0;
  side.shards.forEach((_, i) => {
    const size = shardBytes(side, i);
    if (i > first && bytes + size > capacity) {
      ranges.push([first, i]);
      first = i;
      bytes = 0;
    }
    bytes += size;
  });
  if (side.shards.length > 0) ranges.push([first, side.shards.length]);
  return ranges;
}

function roles(resident: Side, input: ScheduleInput): Roles {
  const [held, streamed] = resident === 'F' ? [input.f, input.g] : [input.g, input.f];
  if (held === null) return { resident, ranges: null, arena: 0, planned: fileBytes(streamed) };
  const window = streamed === null ? 0 : 2 * streamed.bufferBytes;
  const ranges = packRanges(held, input.memory - window);
  const arena = Math.max(...ranges.map(([a, b]) => Array.from({ length: b - a }, (_, i) => shardBytes(held, a + i)).reduce((x, y) => x + y, 0)));
  return { resident, ranges, arena, planned: fileBytes(held) + ranges.length * fileBytes(streamed) };
}

function lowerBound(resident: Side, input: ScheduleInput): number {
  const [held, streamed] = resident === 'F' ? [input.f, input.g] : [input.g, input.f];
  if (held === null || streamed === null) return fileBytes(held) + fileBytes(streamed);
  const z = held.shards.reduce((sum, _, i) => sum + shardBytes(held, i), 0);
  const largest = Math.max(...held.shards.map((_, i) => shardBytes(held, i)));
  const passes = Math.ceil(z / Math.max(largest, input.memory - streamed.bufferBytes));
  return fileBytes(held) + passes * fileBytes(streamed);
}

/** The schedule of pair 0 of a one-pair plan; null when neither side is a shard set. */
export function outOfCoreSchedule(plan: JobPlan, input: ScheduleInput): Schedule | null {
  if (input.f === null && input.g === null) return null;
  const options = (['F', 'G'] as const).map((side) => roles(side, input));
  // F stays resident unless holding G reads strictly less.
  const chosen = options[1]!.planned < options[0]!.planned ? options[1]! : options[0]!;
  const resident = chosen.resident;
  const [held, streamed] = resident === 'F' ? [input.f, input.g] : [input.g, input.f];
  const shardOf = (side: StreamedSide | null, start: number): number => (side === null ? 0 : lastAtOrBefore(side.shards, start, (s) => s.first));
  const ranges = chosen.ranges ?? [[0, 1] as const];
  const rangeOf = (start: number): number => lastAtOrBefore(ranges, shardOf(held, start), ([a]) => a);
  const streamedCount = streamed?.shards.length ?? 1;

  // Main tiles by (range, streamed shard), in plan order within each (resident block-major, as the plan is F-major).
  const main = new Map<number, JobTile[]>();
  const key = (range: number, shard: number): number => range * streamedCount + shard;
  const push = (map: Map<number, JobTile[]>, k: number, tile: JobTile): void => {
    const list = map.get(k);
    if (list === undefined) map.set(k, [tile]);
    else list.push(tile);
  };
  const residentBlock = (f: Block, g: Block): Block => (resident === 'F' ? f : g);
  const streamedBlock = (f: Block, g: Block): Block => (resident === 'F' ? g : f);
  // Null tiles: against the resident side, by range; against the streamed side, by streamed shard.
  const nullResident = new Map<number, JobTile[]>();
  const nullStreamed = new Map<number, JobTile[]>();
  const tail: JobTile[] = [];
  // Lists keep plan order (permutation-major), so each gathered sample serves a run of tiles.
  const residentSide = resident === 'F' ? 1 : 0; // a null tile of this side has the resident model as its other
  for (const tile of plan.tiles) {
    if (tile.kind === 'main') {
      push(main, key(rangeOf(residentBlock(tile.f, tile.g).start), shardOf(streamed, streamedBlock(tile.f, tile.g).start)), tile);
    } else if (tile.kind === 'super' || !input.keepSamples) {
      tail.push(tile);
    } else if (tile.side === residentSide) {
      push(nullResident, rangeOf(tile.other.start), tile);
    } else {
      push(nullStreamed, shardOf(streamed, tile.other.start), tile);
    }
  }

  const prefetch = new Map<number, number>();
  const passes: Pass[] = [];
  let previous: JobTile | null = null;
  ranges.forEach((range, r) => {
    const groups: JobTile[][] = [];
    const order = Array.from({ length: streamedCount }, (_, s) => (r % 2 === 0 ? s : streamedCount - 1 - s));
    const last = r === ranges.length - 1;
    for (const s of order) {
      const group = main.get(key(r, s)) ?? [];
      const extra = last ? (nullStreamed.get(s) ?? []) : [];
      const first = group[0] ?? extra[0];
      if (first === undefined) continue;
      // The first tile on a streamed shard reads the next one ahead.
      if (previous !== null && streamed !== null) prefetch.set(previous.id, streamed.shards[s]!.first);
      previous = first;
      groups.push([...group, ...extra]);
    }
    const against = nullResident.get(r);
    if (against !== undefined) groups.push(against);
    passes.push({ hold: chosen.ranges === null ? null : range, groups });
  });
  return {
    resident,
    passes,
    tail,
    prefetch,
    arena: chosen.arena,
    planned: chosen.planned,
    lowerBound: Math.min(lowerBound('F', input), lowerBound('G', input)),
  };
}
