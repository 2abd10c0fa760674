/**
 * `neurocorr worker`: pulls tiles from the shared JetStream work queue,
 * computes them on a piscina pool, and publishes each result before acking
 * its tile. A tile is acked only after its result is stored in the results
 * stream, so a worker killed at any point loses nothing: the tile is
 * delivered again after ack_wait.
 */
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { jetstream, jetstreamManager, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { Counter, Gauge } from 'prom-client';
import { connectNats, ensureStreams, ensureWorkerConsumer, redactUrl, type TileQueueConfig } from '../../shared/cluster/index.js';
import { materializeInput } from '../../shared/cluster/index.js';
import { createLogger, startMetrics, type Logger, type MetricsEndpoint } from '../../shared/observe.js';
import { retry } from '../../shared/retry.js';
import {
  JOB_BUCKET,
  TILE_STREAM,
  WORKER_CONSUMER,
  decodeJobSpec,
  decodeTile,
  encodeFailure,
  encodeResult,
  resultSubject,
  type NullPart,
  type Provenance,
} from '../../shared/cluster/index.js';
import { gatherSample, nullKey, type NullTile } from '../../shared/core/index.js';
import type { Tile } from '../../shared/core/index.js';
import { openJob, type JobBlocks } from './job-blocks.js';
import type { KernelOptions } from '../loader.js';
import type { NativeLoopsOptions } from '../native/assist.js';
import { startPool, type EmbeddedPool } from '../pool.js';

export interface WorkerOptions {
  readonly nats: string;
  readonly threads: number;
  /** Tiles pulled and held at once. */
  readonly inflight: number;
  /** Bytes of streamed shard data cached per job. */
  readonly cacheBytes: number;
  /** Where object-store sets are downloaded. */
  readonly cacheDir: string;
  readonly kernel: KernelOptions;
  /** Native standardization loops (and the addon path for them); on by default where the addon loads. */
  readonly standardize?: NativeLoopsOptions;
  readonly metricsPort: number | null;
  readonly metricsHost: string;
  /**
   * Fault injection for the integration tests: 'duplicate' publishes every
   * result twice; 'slow:MS' holds each tile MS milliseconds before computing.
   */
  readonly fault: string | null;
}

export const defaultCacheDir = (): string => join(tmpdir(), 'neurocorr-cache');

interface WorkerMetrics {
  readonly done: Counter;
  readonly failed: Counter;
  readonly redelivered: Counter;
  readonly inFlight: Gauge;
  readonly pairs: Counter;
  readonly pairsPerSecond: Gauge;
  readonly cacheHits: Gauge;
  readonly cacheLoads: Gauge;
}

function workerMetrics(endpoint: MetricsEndpoint, settled: Map<string, JobBlocks>): WorkerMetrics {
  const registers = [endpoint.registry];
  const total = (key: 'hits' | 'loads') => [...settled.values()].reduce((sum, j) => sum + j.f.hits()[key] + j.g.hits()[key], 0);
  return {
    done: new Counter({ name: 'neurocorr_worker_tiles_done_total', help: 'tiles computed and published', registers }),
    failed: new Counter({ name: 'neurocorr_worker_tiles_failed_total', help: 'tiles that failed here', registers }),
    redelivered: new Counter({ name: 'neurocorr_worker_tiles_redelivered_total', help: 'tiles received on a second or later delivery', registers }),
    inFlight: new Gauge({ name: 'neurocorr_worker_tiles_in_flight', help: 'tiles held by this worker', registers }),
    pairs: new Counter({ name: 'neurocorr_worker_pairs_total', help: 'neuron pairs correlated (rate() gives pairs/s)', registers }),
    pairsPerSecond: new Gauge({ name: 'neurocorr_worker_pairs_per_second', help: 'neuron pairs per second over the last 10 s', registers }),
    cacheHits: new Gauge({
      name: 'neurocorr_worker_cache_hits',
      help: 'shard cache hits',
      registers,
      collect() {
        this.set(total('hits'));
      },
    }),
    cacheLoads: new Gauge({
      name: 'neurocorr_worker_cache_loads',
      help: 'shard loads (cache misses)',
      registers,
      collect() {
        this.set(total('loads'));
      },
    }),
  };
}

export interface RunningWorker {
  readonly id: string;
  /** Stop pulling, finish (or nak) the tiles in flight, then close. */
  drain(): Promise<void>;
  readonly closed: Promise<void>;
}

export async function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  const id = `${hostname()}-${process.pid}`;
  const log = createLogger('neurocorr-worker').child({ worker: id });
  const nc = await connectNats(options.nats, `neurocorr-worker ${id}`);
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm);
  let queue = await ensureWorkerConsumer(jsm, null);
  const js = jetstream(nc);
  const kv = await new Kvm(nc).create(JOB_BUCKET, { history: 1 });
  const consumer = await js.consumers.get(TILE_STREAM, WORKER_CONSUMER);
  const pool = await startPool(new Float32Array(0), new Float32Array(0), 0, options.kernel, options.threads);
  const kernel = await pool.kernel.catch(async (err: unknown) => {
    await pool.destroy();
    await nc.close();
    throw err;
  });
  const metrics = await startMetrics(options.metricsPort, options.metricsHost);
  const jobs = new Map<string, Promise<JobBlocks | null>>();
  const settled = new Map<string, JobBlocks>();
  const m = workerMetrics(metrics, settled);
  log.info(
    { nats: redactUrl(options.nats), kernel: kernel.name, notes: kernel.notes, threads: options.threads, inflight: options.inflight, metrics: metrics.url },
    'worker ready',
  );

  let serial = 0;
  const keys = new Map<string, number>();
  const open = (job: string, beat: () => void): Promise<JobBlocks | null> => {
    let pending = jobs.get(job);
    if (pending === undefined) {
      pending = openJobFromKv(nc, kv, job, options, beat).then((blocks) => {
        if (blocks !== null) {
          settled.set(job, blocks);
          keys.set(job, ++serial);
          evict(job);
        } else jobs.delete(job);
        return blocks;
      });
      pending.catch(() => jobs.delete(job));
      jobs.set(job, pending);
    }
    return pending;
  };
  // Whole-model jobs hold their z for the job's life; keep the newest jobs that fit the cache.
  const evict = (keep: string) => {
    let bytes = [...settled.values()].reduce((s, j) => s + j.f.bytes + j.g.bytes, 0);
    for (const [job, blocks] of settled) {
      if (bytes <= options.cacheBytes || job === keep) continue;
      settled.delete(job);
      jobs.delete(job);
      bytes -= blocks.f.bytes + blocks.g.bytes;
    }
  };

  const ctx: TileContext = { js, log, m, pool, open, key: (job) => keys.get(job) ?? 0, kernel: kernel.name, id, queue: () => queue, fault: options.fault };
  let draining = false;
  let rate = { tiles: 0, pairs: 0, at: performance.now() };
  const rateTimer = setInterval(() => {
    const seconds = (performance.now() - rate.at) / 1000;
    m.pairsPerSecond.set(rate.pairs / seconds);
    if (rate.tiles > 0) log.info({ tiles: rate.tiles, pairsPerSecond: rate.pairs / seconds }, 'rate');
    rate = { tiles: 0, pairs: 0, at: performance.now() };
  }, 10_000);
  ctx.onDone = (pairs) => {
    rate.tiles++;
    rate.pairs += pairs;
  };
  const refresh = setInterval(() => {
    ensureWorkerConsumer(jsm, null).then(
      (q) => (queue = q),
      () => undefined,
    );
  }, 15_000);

  const lane = async (): Promise<void> => {
    while (!draining) {
      let msg: JsMsg | null;
      try {
        msg = await consumer.next({ expires: 2000 });
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'pull failed; retrying');
        await delay(500);
        continue;
      }
      if (msg === null) continue;
      if (draining) {
        msg.nak();
        break;
      }
      try {
        await handleTile(ctx, msg);
      } catch (err) {
        // Only a message that is not a tile gets here; it would fail the same way on every delivery.
        log.error({ err: (err as Error).message, seq: msg.seq }, 'dropping an undecodable tile message');
        msg.term();
      }
    }
  };
  const lanes = Promise.all(Array.from({ length: options.inflight }, lane));
  const closed = lanes.then(async () => {
    clearInterval(rateTimer);
    clearInterval(refresh);
    await pool.destroy();
    await metrics.close();
    await nc.drain().catch(() => undefined);
    log.info('worker stopped');
  });
  return {
    id,
    drain: async () => {
      if (!draining) log.info('draining: finishing the tiles in flight');
      draining = true;
      await closed;
    },
    closed,
  };
}

async function openJobFromKv(nc: NatsConnection, kv: KV, job: string, options: WorkerOptions, beat: () => void): Promise<JobBlocks | null> {
  const entry = await kv.get(job);
  if (entry === null || entry.operation !== 'PUT') return null;
  const spec = decodeJobSpec(entry.value);
  const fPath = await materializeInput(nc, spec.f, options.cacheDir);
  const gPath = await materializeInput(nc, spec.g, options.cacheDir);
  return openJob(spec, fPath, gPath, options.cacheBytes, beat, options.standardize);
}

interface TileContext {
  readonly js: JetStreamClient;
  readonly log: Logger;
  readonly m: WorkerMetrics;
  readonly pool: EmbeddedPool;
  readonly open: (job: string, beat: () => void) => Promise<JobBlocks | null>;
  readonly key: (job: string) => number;
  readonly kernel: string;
  readonly id: string;
  readonly queue: () => TileQueueConfig;
  readonly fault: string | null;
  onDone?: (pairs: number) => void;
}

// Kernel keys: job serial x 2^34, plus the F block's start + 1 (main tiles) or nullKey (sample blocks, under 2^34).
const jobKey = (ctx: TileContext, job: string) => ctx.key(job) * 2 ** 34;

async function mainTile(ctx: TileContext, job: string, tile: Tile, blocks: JobBlocks, provenance: () => Provenance): Promise<Uint8Array> {
  const f = blocks.f.acquire(tile.f.start, tile.f.count);
  const g = blocks.g.acquire(tile.g.start, tile.g.count);
  try {
    const result = await ctx.pool.run(tile, f, g, { m: blocks.m, fKey: jobKey(ctx, job) + tile.f.start + 1 });
    const constant = new Uint8Array(tile.f.count + tile.g.count);
    constant.set(blocks.f.constant.subarray(tile.f.start, tile.f.start + tile.f.count));
    constant.set(blocks.g.constant.subarray(tile.g.start, tile.g.start + tile.g.count), tile.f.count);
    return encodeResult(job, tile, result, constant, provenance());
  } finally {
    blocks.f.release(tile.f.start);
    blocks.g.release(tile.g.start);
  }
}

/** A permutation-null tile: the side's sample block (gathered and permuted here) against a block of the other model. */
async function nullTile(ctx: TileContext, job: string, tile: Tile, part: NullPart, blocks: JobBlocks, provenance: () => Provenance): Promise<Uint8Array> {
  const plan = blocks.nullPlan;
  if (plan === null) throw new Error(`job ${job}: tile ${tile.id} is a permutation-null tile, but the job spec has no null`);
  const work: NullTile = { id: tile.id, k: part.k, side: part.side, sample: tile.f, other: tile.g };
  const [own, other] = part.side === 0 ? [blocks.f, blocks.g] : [blocks.g, blocks.f];
  const row = (i: number) => {
    const copy = own.acquire(i, 1).slice();
    own.release(i);
    return copy;
  };
  const sample = gatherSample(plan, work, row, new Float32Array(new SharedArrayBuffer(tile.f.count * blocks.m * 4)));
  const g = other.acquire(tile.g.start, tile.g.count);
  try {
    // Run the other way round (see nullKey), and send the sample's maxima as the row side, as the tile names them.
    const r = await ctx.pool.run({ id: tile.id, f: tile.g, g: tile.f }, g, sample, { m: blocks.m, fKey: jobKey(ctx, job) + nullKey(work) });
    const result = { rowBest: r.colBest, rowArg: r.colArg, colBest: r.rowBest, colArg: r.rowArg };
    return encodeResult(job, tile, result, new Uint8Array(tile.f.count + tile.g.count), provenance());
  } finally {
    other.release(tile.g.start);
  }
}

async function handleTile(ctx: TileContext, msg: JsMsg): Promise<void> {
  const started = performance.now();
  const { job, tile, null: part } = decodeTile(msg.data);
  const deliveries = msg.info.deliveryCount;
  const queue = ctx.queue();
  const beat = () => msg.working();
  const heartbeat = setInterval(beat, Math.max(200, queue.ackWaitMs / 3));
  ctx.m.inFlight.inc();
  if (deliveries > 1) ctx.m.redelivered.inc();
  const provenance = (): Provenance => ({ worker: ctx.id, kernel: ctx.kernel, deliveries, milliseconds: performance.now() - started });
  try {
    const blocks = await ctx.open(job, beat);
    if (blocks === null) {
      // The job finished or was removed; its leftover tiles are dropped.
      ctx.log.info({ job, tile: tile.id }, 'dropping a tile of a job that is gone');
      msg.term();
      return;
    }
    const slow = /^slow:(\d+)$/.exec(ctx.fault ?? '');
    if (slow) await delay(Number(slow[1]));
    const payload = part === null ? await mainTile(ctx, job, tile, blocks, provenance) : await nullTile(ctx, job, tile, part, blocks, provenance);
    const copies = ctx.fault === 'duplicate' ? 2 : 1;
    for (let k = 0; k < copies; k++) await retry('publishing a result', ctx.log, () => ctx.js.publish(resultSubject(job), payload), queue.ackWaitMs * 4);
    msg.ack();
    ctx.m.done.inc();
    ctx.m.pairs.inc(tile.f.count * tile.g.count);
    ctx.onDone?.(tile.f.count * tile.g.count);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    ctx.m.failed.inc();
    ctx.log.error({ job, tile: tile.id, deliveries, err: message }, 'tile failed');
    await ctx.js.publish(resultSubject(job), encodeFailure(job, tile, message, provenance())).catch(() => undefined);
    // The last allowed delivery ends it here; the coordinator fails the job on this failure report.
    if (deliveries >= queue.maxDeliver) msg.term();
    else msg.nak(Math.min(5000, 250 * 2 ** deliveries));
  } finally {
    clearInterval(heartbeat);
    ctx.m.inFlight.dec();
  }
}
