/**
 * `neurocorr worker`: pulls tiles from the shared JetStream work queue,
 * computes them on a piscina pool, and publishes each result before acking
 * its tile. A tile is acked only after its result is stored in the results
 * stream, so a worker killed at any point loses nothing: the tile is
 * delivered again after ack_wait. JetStream state that goes missing (a
 * stream, the consumer) is re-created; a NATS that stays unreachable past
 * the service timeout ends the worker with a ServiceError.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { hostname } from 'node:os';
import { jetstream, jetstreamManager, type Consumer, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { decodeJobSpec, JOB_BUCKET, specId, TILE_STREAM, WORKER_CONSUMER, type TileQueueConfig } from '../../shared/cluster/index.js';
import type { NeurocorrError } from '../../shared/errors.js';
import { connectNats, ensureStreams, ensureWorkerConsumer, watchConnection, type NatsService } from '../../shared/nats/index.js';
import { createLogger, startMetrics, type Logger } from '../../shared/observe.js';
import { startPool, type EmbeddedPool } from '../pool.js';
import { privateCacheDir } from './inputs.js';
import { openJob, type OpenJobOptions, type WorkerJob } from './job.js';
import { workerMetrics } from './metrics.js';
import { workerSettings, type WorkerOptions } from './options.js';
import { handleTile, type TileContext } from './tile.js';

export { defaultCacheDir, type WorkerOptions } from './options.js';

export interface RunningWorker {
  readonly id: string;
  /** Stop pulling, finish (or nak) the tiles in flight, then close. */
  drain(): Promise<void>;
  /** Resolves once the worker has stopped; rejects (ServiceError) when it stopped because NATS stayed unreachable. */
  readonly closed: Promise<void>;
}

/**
 * Re-creates the streams and the shared consumer when they went missing; a
 * worker that may not create them (NATS permissions) waits for a
 * coordinator to, saying so every 30 s at most.
 */
function queueRestorer(jsm: JetStreamManager, log: Logger): () => Promise<void> {
  let denied = 0;
  let said = 0;
  return async () => {
    // Once refused, ask again only now and then: every refusal is an error line in the server's log.
    if (Date.now() - denied < 10_000) return;
    try {
      if (await ensureStreams(jsm)) log.warn('the tile or result stream was missing; re-created it');
      await ensureWorkerConsumer(jsm, null);
    } catch (err) {
      denied = Date.now();
      if (Date.now() - said < 30_000) return;
      said = Date.now();
      log.warn({ err: (err as Error).message }, 'cannot create the work queue from this worker; waiting for a coordinator to');
    }
  };
}

/** Starts a worker: it pulls tiles from NATS until `drain()` (SIGTERM in the CLI), computing them on a local pool. */
export async function startWorker(input: WorkerOptions): Promise<RunningWorker> {
  const options = workerSettings(input);
  const id = `${hostname()}-${process.pid}`;
  const log = createLogger('neurocorr-worker', options.logLevel).child({ worker: id });
  const cacheDir = privateCacheDir(options.cacheDir);
  const service: NatsService = { url: options.nats, credentials: options.natsCredentials, timeoutMs: options.serviceTimeoutMs, option: 'nats' };
  // Served from the start, so a liveness probe passes while NATS and the kernel come up; /readyz waits for both.
  const state = { phase: 'connecting to NATS' as string | null, connected: true };
  const metrics = await startMetrics(options.metricsPort, options.metricsHost, () => state.phase ?? (state.connected ? null : 'NATS is disconnected'));
  const nc = await connectNats(service, `neurocorr-worker ${id}`, (line) => log.warn(line)).catch(async (err: unknown) => {
    await metrics.close();
    throw err;
  });
  state.phase = 'loading the kernel';
  const jsm = await jetstreamManager(nc);
  const restoreQueue = queueRestorer(jsm, log);
  await restoreQueue();
  let queue: TileQueueConfig = await ensureWorkerConsumer(jsm, null).catch(() => ({ ackWaitMs: 30_000, maxDeliver: 5 }));
  const js = jetstream(nc);
  const kv = await new Kvm(nc).open(JOB_BUCKET);
  let consumer: Consumer | null = await js.consumers.get(TILE_STREAM, WORKER_CONSUMER).catch(() => null);
  if (consumer === null) log.warn('the work queue does not exist yet (a coordinator creates it); waiting for it');
  const pool = await startPool(options.kernel, options.threads);
  const kernel = await pool.kernel.catch(async (err: unknown) => {
    await pool.destroy();
    await nc.close();
    await metrics.close();
    throw err;
  });
  const jobs = new Map<string, Promise<WorkerJob | null>>();
  const settled = new Map<string, WorkerJob>();
  const m = workerMetrics(metrics, settled);
  log.info(
    {
      nats: nc.getServer(),
      kernel: kernel.name,
      notes: kernel.notes,
      threads: options.threads,
      inflight: options.inflight,
      dataRoots: options.dataRoots,
      cacheDir,
      metrics: metrics.url,
    },
    'worker ready',
  );

  let serial = 0;
  // Opened jobs are keyed by name and spec: a job name re-used with another spec is another job.
  const open = (job: string, spec: string, beat: () => void): Promise<WorkerJob | null> => {
    const key = `${job}/${spec}`;
    let pending = jobs.get(key);
    if (pending === undefined) {
      // Kernel keys of different jobs must differ (TileRunner): a per-job base, a multiple of 2^40, wrapping under 2^53.
      const keyBase = (++serial % 8192) * 2 ** 40;
      pending = openJobFromKv(nc, kv, job, spec, pool, {
        cacheBytes: options.cacheBytes,
        cacheDir,
        dataRoots: options.dataRoots,
        keyBase,
        beat,
        standardize: options.standardize,
      }).then((opened) => {
        if (opened !== null) {
          settled.set(key, opened);
          evict(key);
        } else jobs.delete(key);
        return opened;
      });
      pending.catch(() => jobs.delete(key));
      jobs.set(key, pending);
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

  let lost: NeurocorrError | null = null;
  const stopWatching = watchConnection(
    nc,
    service,
    (err) => {
      lost = err;
      log.error({ err: err.message }, 'NATS stayed unreachable; stopping');
      draining = true;
      state.phase = 'stopping';
    },
    (up) => (state.connected = up),
  );
  state.phase = null;
  let restoring: Promise<void> | null = null;
  const lane = async (): Promise<void> => {
    while (!draining) {
      let msg: JsMsg | null;
      try {
        consumer ??= await js.consumers.get(TILE_STREAM, WORKER_CONSUMER);
        msg = await consumer.next({ expires: 2000 });
      } catch (err) {
        if (consumer !== null) log.warn({ err: (err as Error).message }, 'pull failed; restoring the work queue and retrying');
        consumer = null;
        restoring ??= restoreQueue()
          .then(async () => {
            consumer = await js.consumers.get(TILE_STREAM, WORKER_CONSUMER);
          })
          .catch(() => undefined)
          .finally(() => (restoring = null));
        await Promise.all([restoring, delay(500)]);
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
    stopWatching();
    await pool.destroy();
    await metrics.close();
    await nc.drain().catch(() => undefined);
    log.info('worker stopped');
    if (lost !== null) throw lost;
  });
  return {
    id,
    drain: async () => {
      if (!draining) log.info('draining: finishing the tiles in flight');
      draining = true;
      state.phase = 'draining';
      await closed;
    },
    closed,
  };
}

/** The job as its spec in the KV bucket says, or null when the job is gone or its spec is not the one the tile was planned from. */
async function openJobFromKv(nc: NatsConnection, kv: KV, job: string, spec: string, pool: EmbeddedPool, options: OpenJobOptions): Promise<WorkerJob | null> {
  const entry = await kv.get(job);
  if (entry === null || entry.operation !== 'PUT' || specId(entry.value) !== spec) return null;
  return openJob(nc, decodeJobSpec(entry.value), pool, options);
}
