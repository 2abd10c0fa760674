/**
 * Where a job's models come from on the machine that computes its tiles: a
 * shard set streams through a cache bounded in bytes; any other activation
 * set is read and standardized whole, a layer at a time, into one
 * SharedArrayBuffer. The embedded run and every cluster worker open their
 * models through here.
 */
import type { Model } from '../core/index.js';
import { isShardPlan, ShardStream, type Allocate, type ModelPlan, type StreamStats } from '../formats/index.js';
import { deferred } from '../deferred.js';

export interface ModelSource {
  /** The model's layout; its `constant` flags are final for a block once the block has been acquired. */
  readonly model: Model;
  /** Where blocks must be cut (shard starts). */
  readonly cuts: readonly number[];
  /** The block [start, start + count) as a view (no copy); pins what holds it until `release(start)`. */
  acquire(start: number, count: number): Float32Array;
  release(start: number): void;
  /** Bytes this source holds at most. */
  readonly bytes: number;
  /** Shard reads, for shard sets; null for a model held whole. */
  readonly stats: StreamStats | null;
  /** The shard stream of a shard set, for an out-of-core schedule to drive; null for a model held whole. */
  readonly stream: ShardStream | null;
  /** A kept copy of row `i` (see ShardStream.keep), or null: read it through acquire then. */
  row(i: number): Float32Array | null;
  /**
   * Reads and standardizes every layer (nothing to do for a shard set),
   * calling `between` after each so long loads can report liveness.
   */
  load(between?: () => void): Promise<void>;
  /** Resolves once layer `k`'s values are in. */
  ready(k: number): Promise<void>;
}

export interface SourceOptions {
  /** Bytes of decoded shards a shard set may hold. */
  readonly budget: number;
  /** Allocates the SharedArrayBuffer of a model held whole. */
  readonly allocate: Allocate;
}

export function openSource(path: string, plan: ModelPlan, options: SourceOptions): ModelSource {
  if (isShardPlan(plan)) {
    const stream = new ShardStream(path, plan, options.budget);
    return {
      model: stream.model,
      cuts: stream.cuts,
      acquire: (start, count) => stream.acquire(start, count),
      release: (start) => stream.release(start),
      bytes: options.budget,
      stats: stream.stats,
      stream,
      row: (i) => stream.row(i),
      load: async () => undefined,
      ready: async () => undefined,
    };
  }
  const z = new Float32Array(options.allocate(plan.n * plan.m * 4));
  const build = plan.start(z);
  const layers = build.model.layers.map(() => deferred());
  let loading: Promise<void> | undefined;
  const m = plan.m;
  return {
    model: build.model,
    cuts: [],
    acquire: (start, count) => z.subarray(start * m, (start + count) * m),
    release: () => undefined,
    bytes: z.byteLength,
    stats: null,
    stream: null,
    row: () => null,
    load(between) {
      loading ??= (async () => {
        try {
          for (let k = 0; build.step(); k++) {
            layers[k]!.resolve();
            between?.();
            // Let tiles of finished layers, and heartbeats, run between layers.
            await new Promise((resolve) => setImmediate(resolve));
          }
        } catch (err) {
          for (const layer of layers) layer.reject(err);
          throw err;
        }
      })();
      return loading;
    },
    ready: (k) => layers[k]!.promise,
  };
}

/** A model already standardized in memory (its z filled and constants flagged), as a source. */
export function memorySource(model: Model): ModelSource {
  const { z, m } = model;
  return {
    model,
    cuts: [],
    acquire: (start, count) => z.subarray(start * m, (start + count) * m),
    release: () => undefined,
    bytes: z.byteLength,
    stats: null,
    stream: null,
    row: () => null,
    load: async () => undefined,
    ready: async () => undefined,
  };
}
