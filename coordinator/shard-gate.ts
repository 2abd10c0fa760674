/**
 * Holds tiles back until the shards they pin fit their shard sets' LRU
 * windows. A ShardStream hands out a shard a tile asks for whatever its
 * budget (a pinned shard is never evicted), so tiles in flight on more shards
 * than the window has buffers for would overrun it. Runs that are not driven
 * by the out-of-core schedule (several pairs, a model paired with itself) and
 * the schedule's tail go through here.
 *
 * A tile claims, per shard set, the shard of each block it reads, and one
 * buffer more when it gathers a null sample from the set row by row (gathers
 * run one at a time, synchronously, so one such claim serves them all). It
 * starts once every set it claims of has a buffer free for each of its new
 * claims, or has nothing in flight (so a budget below one tile's claims runs
 * tile by tile rather than hanging; score and zoo refuse such a budget before
 * the run). Waiting tiles start in order.
 */
import { lastAtOrBefore } from '../shared/core/index.js';
import { deferred, type Deferred } from '../shared/deferred.js';
import { operands, type JobPlan, type JobTile, type ModelSource } from '../shared/job/index.js';

/** The claim of a null sample's gather (shard indices are >= 0). */
const GATHER = -1;

/** A source index and a shard index (or GATHER). */
type Claim = readonly [number, number];

interface Waiting {
  readonly id: number;
  readonly claims: readonly Claim[];
  readonly ready: Deferred;
}

export class ShardGate {
  /** Per source: tiles in flight by the shard (or gather) they claim. */
  private readonly active: Map<number, number>[];
  private readonly held = new Map<number, readonly Claim[]>();
  private readonly waiting: Waiting[] = [];
  private failed: { readonly error: unknown } | null = null;

  constructor(
    private readonly plan: JobPlan,
    private readonly sources: readonly ModelSource[],
  ) {
    this.active = sources.map(() => new Map());
  }

  /** Whether any of these sources is a shard set (the gate has nothing to do otherwise). */
  static needed(sources: readonly ModelSource[]): boolean {
    return sources.some((s) => s.stream !== null);
  }

  /** Resolves once the tile's shards fit; it holds them until leave(tile). */
  enter(tile: JobTile): Promise<void> {
    if (this.failed !== null) return Promise.reject(this.failed.error);
    const claims = this.claims(tile);
    if (this.waiting.length === 0 && this.fits(claims)) {
      this.take(tile.id, claims);
      return Promise.resolve();
    }
    const ready = deferred();
    this.waiting.push({ id: tile.id, claims, ready });
    return ready.promise;
  }

  /** Lets the tile's claims go (its shards are released), and starts the waiting tiles that fit now. */
  leave(tile: JobTile): void {
    const claims = this.held.get(tile.id);
    if (claims === undefined) return;
    this.held.delete(tile.id);
    for (const [k, shard] of claims) {
      const active = this.active[k]!;
      const n = active.get(shard)! - 1;
      if (n === 0) active.delete(shard);
      else active.set(shard, n);
    }
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.claims)) {
      const next = this.waiting.shift()!;
      this.take(next.id, next.claims);
      next.ready.resolve();
    }
  }

  /** Gives up every waiting tile (a tile failed: its claims are never let go). */
  abort(error: unknown): void {
    this.failed = { error };
    for (const w of this.waiting.splice(0)) w.ready.reject(error);
  }

  private claims(tile: JobTile): Claim[] {
    if (tile.kind === 'super') return [];
    const { rows, cols } = operands(this.plan, tile);
    const shard = (k: number, start: number): Claim | null => {
      const stream = this.sources[k]!.stream;
      return stream === null ? null : [k, lastAtOrBefore(stream.shards, start, (s) => s.first)];
    };
    const all = [
      shard(rows.model, rows.block.start),
      tile.kind === 'null' ? (this.sources[cols.model]!.stream === null ? null : ([cols.model, GATHER] as const)) : shard(cols.model, cols.block.start),
    ];
    const unique = new Map<string, Claim>();
    for (const claim of all) if (claim !== null) unique.set(claim.join(':'), claim);
    return [...unique.values()];
  }

  private fits(claims: readonly Claim[]): boolean {
    const added = new Map<number, number>();
    for (const [k, shard] of claims) if (!this.active[k]!.has(shard)) added.set(k, (added.get(k) ?? 0) + 1);
    for (const [k, n] of added) {
      const active = this.active[k]!.size;
      const stream = this.sources[k]!.stream!;
      if (active > 0 && active + n > Math.floor(stream.windowBudget / stream.bufferBytes)) return false;
    }
    return true;
  }

  private take(id: number, claims: readonly Claim[]): void {
    this.held.set(id, claims);
    for (const [k, shard] of claims) this.active[k]!.set(shard, (this.active[k]!.get(shard) ?? 0) + 1);
  }
}
