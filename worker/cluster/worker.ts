/**
 * `neurocorr worker`: pulls tiles from the jobs' JetStream queues, taking
 * turns between the jobs that have tiles waiting, computes them on a
 * piscina pool, and publishes each result before acking its tile. A tile is
 * acked only after its result is stored in the results stream, so a worker
 * killed at any point loses nothing: the tile is delivered again after the
 * job's ack wait. A lane that stops making progress lets its tile's lease
 * lapse (LaneWatch); a worker whose lanes have all done so reports itself
 * not ready and not live. A NATS that stays unreachable past the service
 * timeout ends the worker with a ServiceError.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { decodeJobSpec, JOB_BUCKET, specId, TILES_NOTICES } from '../../shared/cluster/index.js';
import type { NeurocorrError, OptionNamer } from '../../shared/errors.js';
import { connectNats, watchConnection, type NatsService } from '../../shared/nats/index.js';
import { createLogger, startMetrics } from '../../shared/observe.js';
import { startPool } from '../pool.js';
import { privateCacheDir } from './inputs.js';
import { JobCache } from './job-cache.js';
import { loadWorkerJob, planWorkerJob, type PlanJobOptions, type PlannedJob } from './job.js';
import { TileRate } from './lane-watch.js';
import { workerMetrics } from './metrics.js';
import { workerSettings, type WorkerOptions } from './options.js';
import { TileQueues } from './queues.js';
import { checkFault } from './faults.js';
import { handleTile, type TileContext } from './tile.js';

export { defaultCacheDir, type WorkerOptions } from './options.js';

export interface RunningWorker {
  readonly id: string;
  /** Stop pulling, finish (or nak) the tiles in flight, then close. */
  drain(): Promise<void>;
  /** Resolves once the worker has stopped; rejects (ServiceError) when it stopped because NATS stayed unreachable. */
  readonly closed: Promise<void>;
}

/** What the process that runs the worker adds (not library options): the CLI's flag names for messages, and a test fault. */
export interface WorkerHost {
  readonly optionName?: OptionNamer;
  /** Fault injection for tests and chaos runs (worker/cluster/faults.ts). */
  readonly fault?: string;
}

/** Starts a worker: it pulls tiles from NATS until `drain()` (SIGTERM in the CLI), computing them on a local pool. */
export function startWorker(options: WorkerOptions): Promise<RunningWorker> {
  return runWorker(options);
}

/** startWorker, with what its host adds (the CLI's worker command). */
export async function runWorker(input: WorkerOptions, host: WorkerHost = {}): Promise<RunningWorker> {
  const options = workerSettings(input);
  const fault = checkFault(host.fault);
  const id = options.id;
  const log = createLogger('neurocorr-worker', options.logLevel).child({ worker: id });
  const cacheDir = privateCacheDir(options.cacheDir);
  const service: NatsService = { url: options.nats, credentials: options.natsCredentials, timeoutMs: options.serviceTimeoutMs, option: 'nats' };
  // Served from the start, so a liveness probe passes while NATS and the kernel come up; /readyz waits for both.
  const state = { phase: 'connecting to NATS' as string | null, connected: true, wedged: 0 };
  const allWedged = () =>
    state.wedged >= options.inflight ? `every lane (${options.inflight}) gave its tile up for lack of progress: restart this worker` : null;
  const metrics = await startMetrics(
    options.metricsPort,
    options.metricsHost,
    () => state.phase ?? (state.connected ? null : 'NATS is disconnected') ?? allWedged(),
    allWedged,
  );
  const nc = await connectNats(service, `neurocorr-worker ${id}`, (line) => log.warn(line)).catch(async (err: unknown) => {
    await metrics.close();
    throw err;
  });
  state.phase = 'loading the kernel';
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const kvm = new Kvm(nc);
  let kv: KV | null = null;
  const pool = await startPool(options.kernel, options.threads);
  const kernel = await pool.kernel.catch(async (err: unknown) => {
    await pool.destroy();
    await nc.close();
    await metrics.close();
    throw err;
  });
  const planOptions: PlanJobOptions = {
    cacheDir,
    dataRoots: options.dataRoots,
    standardize: options.standardize,
    kernelTiles: (span) => options.inflight * (span > 1 ? 2 * options.threads : 1),
  };
  const cache = new JobCache(options.cache, {
    plan: async (job, spec) => {
      kv ??= await kvm.open(JOB_BUCKET);
      return planFromKv(nc, kv, job, spec, planOptions);
    },
    load: (planned, budgets, keyBase, beat) => loadWorkerJob(planned, pool, { budgets, keyBase, beat, standardize: options.standardize }),
    log,
  });
  const queues = new TileQueues(js, jsm, log, (live) => cache.retain(live));
  const notices = nc.subscribe(TILES_NOTICES, { callback: () => queues.notice() });
  const m = workerMetrics(metrics, cache, () => state.wedged);
  log.info(
    {
      nats: nc.getServer(),
      kernel: kernel.name,
      notes: kernel.notes,
      threads: options.threads,
      inflight: options.inflight,
      cache: options.cache,
      dataRoots: options.dataRoots,
      cacheDir,
      metrics: metrics.url,
    },
    'worker ready',
  );

  let rate = { tiles: 0, pairs: 0, at: performance.now() };
  const rateTimer = setInterval(() => {
    const seconds = (performance.now() - rate.at) / 1000;
    m.pairsPerSecond.set(rate.pairs / seconds);
    if (rate.tiles > 0) log.info({ tiles: rate.tiles, pairsPerSecond: rate.pairs / seconds, jobs: queues.names.length }, 'rate');
    rate = { tiles: 0, pairs: 0, at: performance.now() };
  }, 10_000);
  const stopped = new AbortController();
  const ctx: TileContext = {
    nc,
    stopped: stopped.signal,
    js,
    log,
    m,
    cache,
    rate: new TileRate(),
    tileTimeoutMs: options.tileTimeoutMs,
    kernel: kernel.name,
    id,
    optionName: host.optionName ?? ((o) => o),
    fault,
    onWedged: (wedged) => (state.wedged += wedged ? 1 : -1),
    onDone: (pairs) => {
      rate.tiles++;
      rate.pairs += pairs;
    },
  };

  let draining = false;
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
  const lane = async (): Promise<void> => {
    while (!draining) {
      const taken = await queues.take();
      if (taken === null) continue;
      if (draining) {
        if (!nc.isClosed()) taken.msg.nak();
        break;
      }
      try {
        await handleTile(ctx, taken);
      } catch (err) {
        // A lane left behind by a drain that stopped waiting for NATS.
        if (nc.isClosed()) break;
        // Only a message that is not a tile of its queue's job gets here; it would fail the same way on every delivery.
        log.error({ err: (err as Error).message, seq: taken.msg.seq, job: taken.job.job }, 'dropping an undecodable tile message');
        taken.msg.term();
      }
    }
  };
  // A drain waits for the lanes still making progress: a wedged lane may never return, and nor may one whose NATS stopped answering.
  let running = options.inflight;
  let unreachable = false;
  let probing = false;
  const lanes = new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (!draining) return;
      if (running <= state.wedged || !state.connected || unreachable) return finish();
      if (probing) return;
      probing = true;
      void answers(nc, DRAIN_PING_MS).then((yes) => {
        unreachable ||= !yes;
        probing = false;
      });
    }, 250);
    const finish = () => {
      clearInterval(check);
      resolve();
    };
    for (let k = 0; k < options.inflight; k++) {
      lane()
        .catch((err: unknown) => log.error({ err }, 'a lane stopped'))
        .finally(() => --running === 0 && finish());
    }
  });
  const closed = lanes.then(async () => {
    const reachable = state.connected && !unreachable;
    if (!reachable && running > 0)
      log.warn({ lanes: running }, 'NATS does not answer: stopping without waiting for the lanes; their tiles go to other workers');
    else if (running > 0) log.warn({ lanes: running }, 'stopping with wedged lanes: their tiles go to other workers once their leases lapse');
    clearInterval(rateTimer);
    notices.unsubscribe();
    stopWatching();
    // Lanes left behind stop retrying their publishes.
    stopped.abort();
    await pool.destroy();
    await metrics.close();
    await closeNats(nc, reachable);
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

/** How long a draining worker waits for NATS to answer a PING before it stops waiting for its lanes. */
const DRAIN_PING_MS = 2000;
/** How long the last acks and naks may take to flush before the connection is closed outright. */
const FLUSH_MS = 5000;

/** `promise`'s value, or `fallback` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => (timer = setTimeout(resolve, ms, fallback)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Whether the server answers a PING within `ms` (nats.js waits for a reconnect, however long). */
function answers(nc: NatsConnection, ms: number): Promise<boolean> {
  return within(
    nc.flush().then(
      () => true,
      () => false,
    ),
    ms,
    false,
  );
}

/** Drains the connection (the last acks reach the server) while the server answers; a drain against one that does not would never end. */
async function closeNats(nc: NatsConnection, reachable: boolean): Promise<void> {
  if (reachable)
    await within(
      nc.drain().catch(() => undefined),
      FLUSH_MS,
      undefined,
    );
  await nc.close().catch(() => undefined);
}

/** The job as its spec in the KV bucket says, planned; null when the job is gone or its spec is not the one the tile was planned from. */
async function planFromKv(nc: NatsConnection, kv: KV, job: string, spec: string, options: PlanJobOptions): Promise<PlannedJob | null> {
  const entry = await kv.get(job);
  if (entry === null || entry.operation !== 'PUT' || specId(entry.value) !== spec) return null;
  return planWorkerJob(nc, decodeJobSpec(entry.value), options);
}
