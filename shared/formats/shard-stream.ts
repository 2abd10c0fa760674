/**
 * Out-of-core access to a shard set: blocks are served from decoded shards
 * kept in an LRU cache bounded in bytes. A shard is the unit of I/O (it is
 * also the unit its sha256 covers); blocks never straddle shards. Shards in
 * use by tiles in flight are pinned and never evicted.
 *
 * An out-of-core schedule (shared/job/schedule.ts) drives it two ways: the
 * side it keeps resident holds a range of shards at a time in one arena
 * (packed by their exact sizes), the side it streams passes through the LRU
 * window with the next shard read ahead; and it may keep copies of a few
 * sampled rows (the permutation null's) as their shards pass.
 */
import { lastAtOrBefore, type LayerInfo, type Model } from '../core/index.js';
import { checkConstantCount, loadShard, type ShardPlan } from './shard-model.js';
import type { ShardEntry } from './shards.js';

export interface StreamStats {
  loads: number;
  hits: number;
  bytesRead: number;
  readSeconds: number;
  peakBytes: number;
}

/** The resident range: shards [first, end) of the set, and where each one goes in the arena. */
interface Held {
  readonly first: number;
  readonly end: number;
  /** Per shard of the range, its place in the arena (floats). */
  readonly offsets: readonly number[];
}

interface Cached {
  /** The whole buffer (reused for another shard once evicted), and the shard's values in it. */
  readonly full: Float32Array;
  readonly z: Float32Array;
  pins: number;
}

export class ShardStream {
  readonly model: Model;
  /** Shard starts: blocks must be cut there. */
  readonly cuts: readonly number[];
  readonly stats: StreamStats = { loads: 0, hits: 0, bytesRead: 0, readSeconds: 0, peakBytes: 0 };
  private readonly cache = new Map<number, Cached>();
  private readonly loaded: Uint8Array;
  private bytes = 0;
  // Evicted buffers and one read buffer are reused: fresh memory is slow to
  // fault in here, and large short-lived buffers would pile up before V8 frees them.
  private readonly free: Float32Array[] = [];
  private readonly readBuffer = { bytes: new Uint8Array(0) };
  private readonly capacity: number;
  /** Per layer: shards not yet checked, and constant rows found in those that were. */
  private readonly unchecked: number[];
  private readonly constants: number[];
  /** The resident range (shard indices) and its arena; null when the stream is a plain LRU cache. */
  private held: Held | null = null;
  private arena: Float32Array | null = null;
  /** Loaded shards of the held range, by shard index (their z are views of the arena). */
  private readonly resident = new Map<number, Cached>();
  /** A shard to read ahead once the window has room for it. */
  private pending: number | null = null;
  private readonly failed = new Map<number, unknown>();
  /** Sampled rows kept as their shards load: sorted neuron ids, their copies, and which are in. */
  private kept: { readonly ids: Uint32Array; readonly rows: Float32Array; readonly present: Uint8Array } | null = null;

  constructor(
    private readonly dir: string,
    private readonly plan: ShardPlan,
    private budget: number,
  ) {
    const { manifest } = plan;
    const layers: LayerInfo[] = manifest.layers.map((l) => ({ ...l, shape: [...l.shape], source: `${dir}#${l.name}` }));
    this.model = {
      path: dir,
      probes: manifest.probes,
      m: plan.m,
      n: plan.n,
      layers,
      z: new Float32Array(0),
      constant: new Uint8Array(plan.n),
      ids: null,
      fingerprint: manifest.fingerprint,
    };
    this.cuts = manifest.shards.map((s) => s.first);
    this.loaded = new Uint8Array(manifest.shards.length);
    this.capacity = Math.max(...manifest.shards.map((s) => s.count)) * plan.m;
    this.unchecked = manifest.layers.map((_, k) => manifest.shards.filter((s) => s.layer === k).length);
    this.constants = manifest.layers.map(() => 0);
  }

  private shardOf(start: number): number {
    return lastAtOrBefore(this.plan.manifest.shards, start, (s) => s.first);
  }

  /** The block [start, start + count) as a SharedArrayBuffer view; pins its shard until release. */
  acquire(start: number, count: number): Float32Array {
    const index = this.shardOf(start);
    const shard = this.plan.manifest.shards[index]!;
    const m = this.plan.m;
    if (this.failed.has(index)) throw this.failed.get(index);
    const held = this.holding(index);
    if (held !== null) {
      held.pins++;
      return held.z.subarray((start - shard.first) * m, (start - shard.first + count) * m);
    }
    let entry = this.cache.get(index);
    if (entry === undefined) {
      // Room first, so the shard is read into a buffer given back rather than a new one beside it.
      this.makeRoom();
      entry = this.load(shard, index);
      this.cache.set(index, entry);
      this.bytes += entry.full.byteLength;
      this.peak();
    } else {
      // Most recently used goes last.
      this.cache.delete(index);
      this.cache.set(index, entry);
      this.stats.hits++;
    }
    // Pinned before evicting: a budget smaller than one shard must not evict (and reuse) the shard being handed out.
    entry.pins++;
    this.evict();
    return entry.z.subarray((start - shard.first) * m, (start - shard.first + count) * m);
  }

  release(start: number): void {
    const index = this.shardOf(start);
    const entry = this.resident.get(index) ?? this.cache.get(index);
    if (entry !== undefined) entry.pins--;
    this.evict();
    if (this.pending !== null) this.prefetch(this.plan.manifest.shards[this.pending]!.first);
  }

  /** The set's shards, in order. */
  get shards(): readonly ShardEntry[] {
    return this.plan.manifest.shards;
  }

  /** Bytes one shard takes in the LRU window (every buffer has the largest shard's capacity). */
  get bufferBytes(): number {
    return this.capacity * 4;
  }

  /** The bytes the LRU window may hold (the arena of a held range is on top of it). */
  get windowBudget(): number {
    return this.budget;
  }

  /** The bytes the LRU window may hold from now on (the arena of a held range is on top of it). */
  setBudget(bytes: number): void {
    this.budget = bytes;
    this.evict();
  }

  /**
   * Reads the shard holding neuron `start` ahead, into the LRU window, if it
   * has room once unpinned shards are evicted; otherwise as soon as a release
   * makes room. A shard of the held range is left to its first acquire.
   */
  prefetch(start: number): void {
    const index = this.shardOf(start);
    this.pending = null;
    if (this.cache.has(index) || (this.held !== null && index >= this.held.first && index < this.held.end)) return;
    let room = this.budget - this.bytes;
    for (const entry of this.cache.values()) if (entry.pins === 0) room += entry.full.byteLength;
    if (room < this.capacity * 4) {
      this.pending = index;
      return;
    }
    this.makeRoom();
    try {
      this.cache.set(index, this.load(this.plan.manifest.shards[index]!, index));
    } catch (err) {
      // Raised by the acquire that needs the shard, in its tile's context.
      this.failed.set(index, err);
      return;
    }
    this.bytes += this.capacity * 4;
    this.peak();
  }

  /**
   * Makes shards [first, end) the resident range: each is read into its
   * place in one arena on its first acquire and stays until the next range
   * is held. Nothing of the previous range may be pinned (the caller waits
   * for its tiles). The arena grows to the largest range held.
   */
  hold(first: number, end: number): void {
    for (const entry of this.resident.values()) {
      if (entry.pins > 0) throw new Error(`shard stream ${this.dir}: a new range is held while the previous one is in use`);
    }
    this.resident.clear();
    const shards = this.plan.manifest.shards;
    const offsets: number[] = [];
    let floats = 0;
    for (let i = first; i < end; i++) {
      offsets.push(floats);
      floats += shards[i]!.count * this.plan.m;
    }
    // The range's shards leave the LRU window: they are served from the arena now.
    for (let i = first; i < end; i++) {
      const entry = this.cache.get(i);
      if (entry === undefined || entry.pins > 0) continue;
      this.cache.delete(i);
      this.bytes -= entry.full.byteLength;
      this.free.push(entry.full);
    }
    if (this.arena === null || this.arena.length < floats) this.arena = new Float32Array(new SharedArrayBuffer(floats * 4));
    this.held = { first, end, offsets };
    this.evict();
    this.peak();
  }

  /** Lets the held range and its arena go (nothing of it may be pinned); shards are cached in the LRU window again. */
  unhold(): void {
    for (const entry of this.resident.values()) {
      if (entry.pins > 0) throw new Error(`shard stream ${this.dir}: the held range is let go while in use`);
    }
    this.resident.clear();
    this.held = null;
    this.arena = null;
  }

  /** Keeps a copy of each of these rows (neuron ids) whenever its shard loads, for row(). */
  keep(ids: Uint32Array): void {
    const sorted = Uint32Array.from(new Set(ids)).sort();
    this.kept = { ids: sorted, rows: new Float32Array(sorted.length * this.plan.m), present: new Uint8Array(sorted.length) };
    for (const entry of [...this.resident.entries(), ...this.cache.entries()]) this.capture(entry[0], entry[1].z);
  }

  /** Neuron `i`'s row, if it is kept and its shard has been read; null otherwise. */
  row(i: number): Float32Array | null {
    const kept = this.kept;
    if (kept === null) return null;
    const at = firstAtOrAfter(kept.ids, i);
    if (kept.ids[at] !== i || kept.present[at] === 0) return null;
    const m = this.plan.m;
    return kept.rows.subarray(at * m, (at + 1) * m);
  }

  private capture(index: number, z: Float32Array): void {
    const kept = this.kept;
    if (kept === null) return;
    const shard = this.plan.manifest.shards[index]!;
    const m = this.plan.m;
    for (let at = firstAtOrAfter(kept.ids, shard.first); at < kept.ids.length && kept.ids[at]! < shard.first + shard.count; at++) {
      if (kept.present[at] === 1) continue;
      const r = kept.ids[at]! - shard.first;
      kept.rows.set(z.subarray(r * m, (r + 1) * m), at * m);
      kept.present[at] = 1;
    }
  }

  /** The held range's shard `index`, read into the arena on first use; null when it is not in the held range. */
  private holding(index: number): Cached | null {
    const held = this.held;
    if (held === null || index < held.first || index >= held.end) return null;
    let entry = this.resident.get(index);
    if (entry === undefined) {
      const shard = this.plan.manifest.shards[index]!;
      const at = held.offsets[index - held.first]!;
      const slot = this.arena!.subarray(at, at + shard.count * this.plan.m);
      entry = this.load(shard, index, slot);
      this.resident.set(index, entry);
    } else {
      this.stats.hits++;
    }
    return entry;
  }

  /** Evicts unpinned shards, least recently used first, until one more buffer fits the budget (or none is left to evict). */
  private makeRoom(): void {
    for (const [i, entry] of this.cache) {
      if (this.bytes + this.capacity * 4 <= this.budget) return;
      if (entry.pins > 0) continue;
      this.cache.delete(i);
      this.bytes -= entry.full.byteLength;
      this.free.push(entry.full);
    }
  }

  private peak(): void {
    this.stats.peakBytes = Math.max(this.stats.peakBytes, this.bytes + (this.arena?.byteLength ?? 0));
  }

  private evict(): void {
    for (const [index, entry] of this.cache) {
      if (this.bytes <= this.budget) return;
      if (entry.pins > 0) continue;
      this.cache.delete(index);
      this.bytes -= entry.full.byteLength;
      this.free.push(entry.full);
    }
    // Spare buffers count against the budget too, but one is always kept for the next load.
    // (None when the window is off: a resident side's shards live in its arena.)
    while (this.free.length > (this.budget > 0 ? 1 : 0) && this.bytes + this.free.length * this.capacity * 4 > this.budget) this.free.shift();
  }

  /**
   * Every buffer has the capacity of the largest shard, so any evicted buffer
   * can take any shard: worker threads keep handles to the buffers they have
   * seen until they collect, so a stream that allocated per shard size would
   * keep far more memory alive than its budget.
   */
  private take(): Float32Array {
    return this.free.pop() ?? new Float32Array(new SharedArrayBuffer(this.capacity * 4));
  }

  private load(shard: ShardEntry, index: number, slot?: Float32Array): Cached {
    const started = performance.now();
    let full: Float32Array | undefined;
    // The sha256 and rows are checked on a shard's first load; later loads in the run re-read the same file.
    const first = this.loaded[index] === 0;
    const { z, constants } = loadShard(this.dir, shard, this.plan.m, this.model.constant, {
      buffer: this.readBuffer,
      verify: first,
      into: () => (full = slot ?? this.take()),
    });
    if (first) {
      this.loaded[index] = 1;
      this.constants[shard.layer]! += constants!;
      if (--this.unchecked[shard.layer]! === 0) checkConstantCount(this.dir, this.plan.manifest, shard.layer, this.constants[shard.layer]!);
    }
    this.stats.loads++;
    this.stats.bytesRead += shard.bytes;
    this.capture(index, z);
    this.stats.readSeconds += (performance.now() - started) / 1000;
    return { full: full!, z, pins: 0 };
  }
}

/** The first index of sorted `ids` whose id is >= `value` (ids.length when none). */
function firstAtOrAfter(ids: Uint32Array, value: number): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
