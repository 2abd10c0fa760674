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
import {
  decodeJobSpec,
  decodeTile,
  encodeFailure,
  encodeResult,
  JOB_BUCKET,
  redactUrl,
  resultSubject,
  TILE_STREAM,
  WORKER_CONSUMER,
  type Provenance,
  type TileQueueConfig,
} from '../../shared/cluster/index.js';
import { connectNats, ensureStreams, ensureWorkerConsumer } from '../../shared/nats/index.js';
import { sameTile, tilePairs } from '../../shared/job/index.js';
import { createLogger, startMetrics, type Logger, type MetricsEndpoint } from '../../shared/observe.js';
import { retry } from '../../shared/retry.js';
import { kernelOptions, type KernelChoice, type KernelOptions } from '../kernel-options.js';
import type { NativeLoopsOptions } from '../native/assist.js';
import { boolean, isObject, knownKeys, integer, oneOf, optional, string } from '../../shared/validate.js';
import { defaultThreads, startPool, type EmbeddedPool } from '../pool.js';
import { openJob, type OpenJobOptions, type WorkerJob } from './job.js';

export interface WorkerOptions {
  /** NATS server URL (nats:// or tls://). */
  readonly nats: string;
  /** Kernel threads (default: one per core). */
  readonly threads?: number;
  /** Tiles pulled and held at once (default: 2 per thread). */
  readonly inflight?: number;
  /** Bytes of streamed shard data cached per job (default 2 GiB). */
  readonly cache?: number;
  /** Where object-store sets are downloaded (default: $TMPDIR/neurocorr-cache). */
  readonly cacheDir?: string;
  /** Tile kernel (default `auto`), or the kernel with its settings. */
  readonly kernel?: KernelChoice | KernelOptions;
  /** Standardize with the native loops where the addon loads (default true). */
  readonly nativeStandardize?: boolean;
  /** Serve Prometheus metrics on this port (0: any free port); none by default. */
  readonly metricsPort?: number;
  /** Address for the metrics (default 127.0.0.1). */
  readonly metricsHost?: string;
  /** Level of the worker's JSON logs on stderr (default `info`). */
  readonly logLevel?: string;
  /**
   * Fault injection, for tests and chaos runs: `duplicate` publishes every
   * result twice; `slow:MS` holds each tile MS milliseconds before computing.
   */
  readonly fault?: string;
}

const WORKER_KEYS = [
  'nats',
  'threads',
  'inflight',
  'cache',
  'cacheDir',
  'kernel',
  'nativeStandardize',
  'metricsPort',
  'metricsHost',
  'logLevel',
  'fault',
] as const;

interface WorkerSettings {
  readonly nats: string;
  readonly threads: number;
  readonly inflight: number;
  readonly cacheBytes: number;
  readonly cacheDir: string;
  readonly kernel: KernelOptions;
  readonly standardize: NativeLoopsOptions;
  readonly metricsPort: number | null;
  readonly metricsHost: string;
  readonly logLevel: string;
  readonly fault: string | null;
}

function workerSettings(options: WorkerOptions): WorkerSettings {
  const o = isObject('', options);
  knownKeys('', o, WORKER_KEYS);
  const threads = optional(o['threads'], (v) => integer('threads', v, 1, 1024), defaultThreads());
  const kernel = kernelOptions(o['kernel']);
  return {
    nats: string('nats', o['nats']),
    threads,
    inflight: optional(o['inflight'], (v) => integer('inflight', v, 1, 4096), 2 * threads),
    cacheBytes: optional(o['cache'], (v) => integer('cache', v, 1), 2 * 1024 ** 3),
    cacheDir: optional(o['cacheDir'], (v) => string('cacheDir', v), defaultCacheDir()),
    kernel,
    standardize: {
      ...(kernel.addon !== undefined ? { addon: kernel.addon } : {}),
      disabled: !optional(o['nativeStandardize'], (v) => boolean('nativeStandardize', v), true),
    },
    metricsPort: optional<number | null>(o['metricsPort'], (v) => integer('metricsPort', v, 0, 65535), null),
    metricsHost: optional(o['metricsHost'], (v) => string('metricsHost', v), '127.0.0.1'),
    logLevel: optional(o['logLevel'], (v) => oneOf('logLevel', v, ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const), 'info'),
    fault: optional<string | null>(o['fault'], (v) => string('fault', v), null),
  };
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

function workerMetrics(endpoint: MetricsEndpoint, settled: Map<string, WorkerJob>): WorkerMetrics {
  const registers = [endpoint.registry];
  const total = (key: 'hits' | 'loads') =>
    [...settled.values()].reduce((sum, j) => sum + j.sources.reduce((n, source) => n + (source.stats?.[key] ?? 0), 0), 0);
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

/** Starts a worker: it pulls tiles from NATS until `drain()` (SIGTERM in the CLI), computing them on a local pool. */
export async function startWorker(input: WorkerOptions): Promise<RunningWorker> {
  const options = workerSettings(input);
  const id = `${hostname()}-${process.pid}`;
  const log = createLogger('neurocorr-worker', options.logLevel).child({ worker: id });
  const nc = await connectNats(options.nats, `neurocorr-worker ${id}`);
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm);
  let queue = await ensureWorkerConsumer(jsm, null);
  const js = jetstream(nc);
  const kv = await new Kvm(nc).create(JOB_BUCKET, { history: 1 });
  const consumer = await js.consumers.get(TILE_STREAM, WORKER_CONSUMER);
  const pool = await startPool(options.kernel, options.threads);
  const kernel = await pool.kernel.catch(async (err: unknown) => {
    await pool.destroy();
    await nc.close();
    throw err;
  });
  const metrics = await startMetrics(options.metricsPort, options.metricsHost);
  const jobs = new Map<string, Promise<WorkerJob | null>>();
  const settled = new Map<string, WorkerJob>();
  const m = workerMetrics(metrics, settled);
  log.info(
    { nats: redactUrl(options.nats), kernel: kernel.name, notes: kernel.notes, threads: options.threads, inflight: options.inflight, metrics: metrics.url },
    'worker ready',
  );

  let serial = 0;
  const open = (job: string, beat: () => void): Promise<WorkerJob | null> => {
    let pending = jobs.get(job);
    if (pending === undefined) {
      // Kernel keys of different jobs must differ (TileRunner): a per-job base, a multiple of 2^40, wrapping under 2^53.
      const keyBase = (++serial % 8192) * 2 ** 40;
      pending = openJobFromKv(nc, kv, job, pool, {
        cacheBytes: options.cacheBytes,
        cacheDir: options.cacheDir,
        keyBase,
        beat,
        standardize: options.standardize,
      }).then((opened) => {
        if (opened !== null) {
          settled.set(job, opened);
          evict(job);
        } else jobs.delete(job);
        return opened;
      });
      pending.catch(() => jobs.delete(job));
      jobs.set(job, pending);
    }
    return pending;
  };
  // Whole-model jobs hold their z for the job's life; keep the newest jobs that fit the cache.
  const evict = (keep: string) => {
    let bytes = [...settled.values()].reduce((sum, j) => sum + j.bytes, 0);
    for (const [job, opened] of settled) {
      if (bytes <= options.cacheBytes || job === keep) continue;
      settled.delete(job);
      jobs.delete(job);
      bytes -= opened.bytes;
    }
  };

  const ctx: TileContext = { js, log, m, open, kernel: kernel.name, id, queue: () => queue, fault: options.fault };
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

async function openJobFromKv(nc: NatsConnection, kv: KV, job: string, pool: EmbeddedPool, options: OpenJobOptions): Promise<WorkerJob | null> {
  const entry = await kv.get(job);
  if (entry === null || entry.operation !== 'PUT') return null;
  return openJob(nc, decodeJobSpec(entry.value), pool, options);
}

interface TileContext {
  readonly js: JetStreamClient;
  readonly log: Logger;
  readonly m: WorkerMetrics;
  readonly open: (job: string, beat: () => void) => Promise<WorkerJob | null>;
  readonly kernel: string;
  readonly id: string;
  readonly queue: () => TileQueueConfig;
  readonly fault: string | null;
  onDone?: (pairs: number) => void;
}

async function handleTile(ctx: TileContext, msg: JsMsg): Promise<void> {
  const started = performance.now();
  const { job, tile } = decodeTile(msg.data);
  const deliveries = msg.info.deliveryCount;
  const queue = ctx.queue();
  const beat = () => msg.working();
  const heartbeat = setInterval(beat, Math.max(200, queue.ackWaitMs / 3));
  ctx.m.inFlight.inc();
  if (deliveries > 1) ctx.m.redelivered.inc();
  const provenance = (): Provenance => ({ worker: ctx.id, kernel: ctx.kernel, deliveries, milliseconds: performance.now() - started });
  try {
    const opened = await ctx.open(job, beat);
    if (opened === null) {
      // The job finished or was removed; its leftover tiles are dropped.
      ctx.log.info({ job, tile: tile.id }, 'dropping a tile of a job that is gone');
      msg.term();
      return;
    }
    const planned = opened.plan.tiles[tile.id];
    if (planned === undefined || !sameTile(planned, tile)) throw new Error(`tile ${tile.id} does not match this worker's plan of job ${job}`);
    const slow = /^slow:(\d+)$/.exec(ctx.fault ?? '');
    if (slow) await delay(Number(slow[1]));
    const outcome = await opened.runner.run(planned);
    const payload = encodeResult(job, tile.id, outcome.result, outcome.constant ?? new Uint8Array(0), provenance());
    const copies = ctx.fault === 'duplicate' ? 2 : 1;
    for (let k = 0; k < copies; k++) await retry('publishing a result', ctx.log, () => ctx.js.publish(resultSubject(job), payload), queue.ackWaitMs * 4);
    msg.ack();
    ctx.m.done.inc();
    ctx.m.pairs.inc(tilePairs(tile));
    ctx.onDone?.(tilePairs(tile));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    ctx.m.failed.inc();
    ctx.log.error({ job, tile: tile.id, deliveries, err: message }, 'tile failed');
    await ctx.js.publish(resultSubject(job), encodeFailure(job, tile.id, message, provenance())).catch(() => undefined);
    // The last allowed delivery ends it here; the coordinator fails the job on this failure report.
    if (deliveries >= queue.maxDeliver) msg.term();
    else msg.nak(Math.min(5000, 250 * 2 ** deliveries));
  } finally {
    clearInterval(heartbeat);
    ctx.m.inFlight.dec();
  }
}
