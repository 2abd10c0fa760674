/**
 * Out-of-core access to a shard set: blocks are served from decoded shards
 * kept in an LRU cache bounded in bytes. A shard is the unit of I/O (it is
 * also the unit its sha256 covers); blocks never straddle shards. Shards in
 * use by tiles in flight are pinned and never evicted.
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

  constructor(
    private readonly dir: string,
    private readonly plan: ShardPlan,
    private readonly budget: number,
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
    let entry = this.cache.get(index);
    if (entry === undefined) {
      entry = this.load(shard, index);
      this.cache.set(index, entry);
      this.bytes += entry.full.byteLength;
      this.stats.peakBytes = Math.max(this.stats.peakBytes, this.bytes);
    } else {
      // Most recently used goes last.
      this.cache.delete(index);
      this.cache.set(index, entry);
      this.stats.hits++;
    }
    // Pinned before evicting: a budget smaller than one shard must not evict (and reuse) the shard being handed out.
    entry.pins++;
    this.evict();
    const m = this.plan.m;
    return entry.z.subarray((start - shard.first) * m, (start - shard.first + count) * m);
  }

  release(start: number): void {
    const entry = this.cache.get(this.shardOf(start));
    if (entry !== undefined) entry.pins--;
    this.evict();
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
    while (this.free.length > 1 && this.bytes + this.free.length * this.capacity * 4 > this.budget) this.free.shift();
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

  private load(shard: ShardEntry, index: number): Cached {
    const started = performance.now();
    let full: Float32Array | undefined;
    // The sha256 and rows are checked on a shard's first load; later loads in the run re-read the same file.
    const first = this.loaded[index] === 0;
    const { z, constants } = loadShard(this.dir, shard, this.plan.m, this.model.constant, {
      buffer: this.readBuffer,
      verify: first,
      into: () => (full = this.take()),
    });
    if (first) {
      this.loaded[index] = 1;
      this.constants[shard.layer]! += constants!;
      if (--this.unchecked[shard.layer]! === 0) checkConstantCount(this.dir, this.plan.manifest, shard.layer, this.constants[shard.layer]!);
    }
    this.stats.loads++;
    this.stats.bytesRead += shard.bytes;
    this.stats.readSeconds += (performance.now() - started) / 1000;
    return { full: full!, z, pins: 0 };
  }
}
