/**
 * The cluster coordinator: plans a job's tiles, publishes them to the
 * JetStream work queue, folds the results stream into the reduction, and
 * checkpoints to Redis. JetStream is the transport, not the source of truth:
 * the plan and the done set decide what is finished, a tile whose message
 * went missing is published again, and results are acked only once a
 * checkpoint holding them is in Redis.
 */
import { resolve } from 'node:path';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { Counter, Gauge, type Registry } from 'prom-client';
import { encodeCheckpoint, restoreCheckpoint, type JobProgress } from '../../shared/cluster/index.js';
import { InputError, InternalError, NeurocorrError, UsageError } from '../../shared/errors.js';
import { checkOutputPath, writeAtomic } from '../../shared/formats/index.js';
import { matchesCsv } from '../../shared/core/index.js';
import type { LayerInfo, Model } from '../../shared/core/index.js';
import { connectNats, ensureResultConsumer, ensureStreams, ensureWorkerConsumer, redactUrl, type TileQueueConfig } from '../../shared/cluster/index.js';
import { createLogger, startMetrics, type Logger } from '../../shared/observe.js';
import { retry } from '../../shared/retry.js';
import { planPair } from '../../shared/formats/index.js';
import {
  JOB_BUCKET,
  RESULT_STREAM,
  TILE_STREAM,
  checkJobName,
  coordinatorConsumer,
  decodeResult,
  decodeTile,
  encodeJobSpec,
  encodeTile,
  maxDeliveriesAdvisory,
  resultPayloadBytes,
  resultSubject,
  tileSubject,
  type InputRef,
  type JobSpec,
} from '../../shared/cluster/index.js';
import { warnChance } from '../../shared/core/index.js';
import { NullReduction, nullOptions, planNull, type NullTile } from '../../shared/core/index.js';
import { Reduction } from '../../shared/core/index.js';
import { buildReport, humanSummary, type ClusterInfo, type Report } from '../../shared/core/index.js';
import { defaultBlockSize } from '../../shared/core/index.js';
import { isShardPlan } from '../../shared/formats/index.js';
import type { ModelPlan } from '../../shared/formats/index.js';
import { planTiles, splitBlocks, type Block, type Tile } from '../../shared/core/index.js';
import { JobStore } from './job-store.js';
import { createProgress, type Progress } from '../progress.js';
import type { ScoreOptions } from '../score.js';
import { uploadInput } from '../../shared/cluster/index.js';

export interface ClusterOptions {
  readonly nats: string;
  readonly redis: string;
  readonly job: string | null;
  readonly upload: boolean;
  /** Redis key prefix (tests use one each). */
  readonly prefix: string;
  readonly queue: TileQueueConfig;
  /** Checkpoint after this many new tiles, or this many seconds, whichever comes first. */
  readonly checkpointTiles: number;
  readonly checkpointSeconds: number;
  /** Seconds a finished job's keys stay in Redis. */
  readonly ttlSeconds: number;
  readonly leaseMs: number;
  readonly metricsPort: number | null;
  readonly metricsHost: string;
}

export interface ClusterOutcome {
  readonly report: Report;
  readonly summary: string;
}

class LeaseLostError extends UsageError {}

function jobName(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return `job-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

/** The block size: the native default for a 2-thread worker, capped so a result fits NATS's max_payload. */
export function clusterBlock(m: number, nF: number, nG: number, maxPayload: number, tile: number | undefined): number {
  const block = tile ?? defaultBlockSize({ kernel: 'native', m, nF, nG, threads: 2 });
  const fits = Math.floor((maxPayload - 4096) / (2 * resultPayloadBytes(1, 0)));
  if (block > fits) {
    if (tile !== undefined)
      throw new UsageError(`--tile ${tile} makes tile results larger than the NATS server's max_payload (${maxPayload} bytes); use --tile ${fits} or less`);
    return fits;
  }
  return block;
}

function describeTile(spec: JobSpec, work: Work, f: Model, g: Model): string {
  const side = (model: Model, b: Block) => `${model.layers[b.layer]?.name ?? `layer ${b.layer}`} neurons ${b.start}..${b.start + b.count - 1}`;
  const { tile } = work;
  if (work.null === null) return `tile ${tile.id} of job ${spec.job} (F ${side(f, tile.f)}, G ${side(g, tile.g)})`;
  const [own, other] = work.null.side === 0 ? ['F', 'G'] : ['G', 'F'];
  return `tile ${tile.id} of job ${spec.job} (permutation null ${work.null.k}: ${tile.f.count} sampled ${own} neurons against ${other} ${side(work.null.side === 0 ? g : f, tile.g)})`;
}

/** Layer constant counts from the per-neuron flags gathered from results. */
function withConstants(model: Model, constant: Uint8Array): Model {
  const layers: LayerInfo[] = model.layers.map((l) => {
    let count = 0;
    for (let i = l.start; i < l.start + l.count; i++) count += constant[i]!;
    return { ...l, constant: count };
  });
  return { ...model, layers, constant };
}

interface Metrics {
  readonly done: Gauge;
  readonly total: Gauge;
  readonly inFlight: Gauge;
  readonly duplicates: Counter;
  readonly redelivered: Counter;
  readonly republished: Counter;
  readonly pairs: Counter;
  readonly pairsPerSecond: Gauge;
}

function jobMetrics(registry: Registry): Metrics {
  const registers = [registry];
  return {
    done: new Gauge({ name: 'neurocorr_tiles_done', help: 'tiles of the job folded into the reduction', registers }),
    total: new Gauge({ name: 'neurocorr_tiles_total', help: 'tiles in the job plan', registers }),
    inFlight: new Gauge({ name: 'neurocorr_tiles_in_flight', help: 'tiles published and not yet done', registers }),
    duplicates: new Counter({ name: 'neurocorr_tiles_duplicate_total', help: 'results for tiles already done (harmless)', registers }),
    redelivered: new Counter({ name: 'neurocorr_tiles_redelivered_total', help: 'tiles whose result came from a second or later delivery', registers }),
    republished: new Counter({ name: 'neurocorr_tiles_republished_total', help: 'tiles published again after their message went missing', registers }),
    pairs: new Counter({ name: 'neurocorr_pairs_total', help: 'neuron pairs correlated (rate() gives pairs/s)', registers }),
    pairsPerSecond: new Gauge({ name: 'neurocorr_pairs_per_second', help: 'neuron pairs per second since this coordinator started', registers }),
  };
}

async function inputRef(path: string, upload: boolean, nc: NatsConnection, log: Logger): Promise<InputRef> {
  return upload ? uploadInput(nc, path, log) : { kind: 'path', path: resolve(path) };
}

export async function scoreCluster(fPath: string, gPath: string, options: ScoreOptions, cluster: ClusterOptions): Promise<ClusterOutcome> {
  if (options.out !== null) checkOutputPath(options.out, '--out');
  if (options.matches !== null) checkOutputPath(options.matches, '--matches');
  const job = checkJobName(cluster.job ?? jobName());
  const log = createLogger('neurocorr-coordinator').child({ job });
  const started = performance.now();
  const plans = planPair(fPath, gPath, options);
  const f = plans.f.skeleton();
  const g = plans.g.skeleton();
  warnChance(f.m, f.probes, f.n, g.n, options.log);

  const nc = await connectNats(cluster.nats, `neurocorr-coordinator ${job}`);
  const redis = new Redis(cluster.redis, { lazyConnect: true, maxRetriesPerRequest: 50 });
  // ioredis reconnects on its own; its connection errors are worth a line, not a crash or an unhandled-event dump.
  redis.on('error', (err: Error) => log.warn({ err: err.message }, 'redis connection error'));
  const metrics = await startMetrics(cluster.metricsPort, cluster.metricsHost);
  const store = new JobStore(redis, job, cluster.prefix);
  // Set by the result loop; the lease timer uses it to stop the job.
  const abort: { fail: (err: NeurocorrError) => void } = { fail: () => undefined };
  let leaseTimer: NodeJS.Timeout | undefined;
  try {
    try {
      await redis.connect();
    } catch (err) {
      throw new UsageError(`cannot reach Redis at ${redactUrl(cluster.redis)}: ${(err as Error).message}; start redis-server, or fix --redis`);
    }
    if (cluster.job === null) options.log(`job: ${job} (resume it with --job ${job})`);
    log.info({ nats: redactUrl(cluster.nats), redis: redactUrl(cluster.redis), metrics: metrics.url }, 'coordinator starting');
    await store.acquire(cluster.leaseMs, options.log);
    leaseTimer = setInterval(() => {
      store.renew(cluster.leaseMs).then(
        (held) => held || abort.fail(new LeaseLostError(`job ${job}: another coordinator took over its lease; this one stops and leaves the job to it`)),
        (err: unknown) => log.warn({ err: (err as Error).message }, 'lease renewal failed'),
      );
    }, cluster.leaseMs / 3);

    const finished = await store.report();
    if (finished !== null) {
      const report = JSON.parse(finished) as Report;
      options.log(`job ${job} is already done; its stored report follows`);
      return { report, summary: humanSummary(report) };
    }

    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
    const block = clusterBlock(plans.f.m, f.n, g.n, maxPayload, options.tile);
    const cuts = (plan: ModelPlan) => (isShardPlan(plan) ? plan.manifest.shards.map((s) => s.first) : []);
    const tiles = planTiles(splitBlocks(f.layers, block, cuts(plans.f)), splitBlocks(g.layers, block, cuts(plans.g)));
    const nullOpts = nullOptions(options.null, f.n, g.n);
    // The null's tiles follow the main ones, ids from tiles.length on: the sampled block is the tile's f side.
    const nullPlan = nullOpts.permutations > 0 ? planNull(f, g, nullOpts, block, [cuts(plans.f), cuts(plans.g)], tiles.length) : null;
    const work: Work[] = [
      ...tiles.map((tile) => ({ tile, null: null })),
      ...(nullPlan?.tiles ?? []).map((t) => ({ tile: { id: t.id, f: t.sample, g: t.other }, null: t })),
    ];

    const previous = await store.spec();
    const spec: JobSpec = {
      version: 1,
      job,
      f: previous === null ? await inputRef(fPath, cluster.upload, nc, log) : (JSON.parse(previous) as JobSpec).f,
      g: previous === null ? await inputRef(gPath, cluster.upload, nc, log) : (JSON.parse(previous) as JobSpec).g,
      pair: { conv: options.conv, layers: options.layers, layersF: options.layersF, layersG: options.layersG, sample: options.sample, probes: options.probes },
      m: plans.f.m,
      n: [f.n, g.n],
      block,
      tiles: tiles.length,
      null: nullOpts,
    };
    const specJson = JSON.stringify(spec);
    if (previous !== null && previous !== specJson) {
      const was = JSON.parse(previous) as JobSpec;
      const why =
        was.tiles !== spec.tiles || was.block !== spec.block ? `it was planned as ${was.tiles} tiles of ${was.block}` : 'its inputs or options differ';
      throw new UsageError(`job ${job} already exists with a different plan (${why}); resume it with the same inputs and options, or pick another --job`);
    }

    const reduction = new Reduction({ ...f, constant: new Uint8Array(f.n) }, { ...g, constant: new Uint8Array(g.n) });
    const progress: JobProgress = {
      reduction,
      done: new Uint8Array(work.length),
      nulls: nullPlan === null ? null : new NullReduction(nullPlan, reduction.f, reduction.g),
    };
    const saved = await store.checkpoint();
    if (saved !== null) restoreCheckpoint(saved, progress);
    const priorState = await store.state();
    const counts = {
      done: progress.done.reduce((a, b) => a + b, 0),
      duplicates: priorState?.duplicates ?? 0,
      redelivered: priorState?.redelivered ?? 0,
      republished: 0,
    };
    if (saved !== null) log.info({ done: counts.done, tiles: work.length }, 'resuming from checkpoint');

    await store.save(specJson, encodeCheckpoint(progress), {
      done: counts.done,
      tiles: work.length,
      duplicates: counts.duplicates,
      redelivered: counts.redelivered,
    });
    await ensureStreams(jsm);
    await ensureWorkerConsumer(jsm, cluster.queue);
    const kv = await new Kvm(nc).create(JOB_BUCKET, { history: 1 });
    await kv.put(job, encodeJobSpec(spec));
    // Results wait (unacked) for up to two checkpoint periods before JetStream hands them out again.
    await ensureResultConsumer(jsm, job, Math.max(30_000, 4 * cluster.checkpointSeconds * 1000));

    const m = jobMetrics(metrics.registry);
    m.total.set(work.length);
    m.done.set(counts.done);

    // Tiles not done are published afresh; leftovers of an earlier run are purged first so they do not run twice.
    const publishMissing = async (): Promise<number> => {
      const missing = work.filter((w) => progress.done[w.tile.id] === 0);
      await retry('publishing tiles', log, () => publishTiles(js, job, missing));
      m.inFlight.set(missing.length);
      return missing.length;
    };
    await retry('purging old tiles', log, () => jsm.streams.purge(TILE_STREAM, { filter: tileSubject(job) }));
    const published = await publishMissing();
    log.info({ tiles: tiles.length, nullTiles: work.length - tiles.length, published, block, m: spec.m, neurons: spec.n }, 'tiles published');

    let bar: Progress | null = createProgress({ total: work.length, pairsPerUnit: (f.n * g.n) / tiles.length, label: 'tiles', enabled: options.progress });
    bar.update(counts.done);
    const outcome = await collect({ nc, jsm, js, job, spec, work, progress, counts, store, specJson, cluster, log, m, f, g, bar, publishMissing, abort });
    bar.finish();
    bar = null;

    const workers = [...outcome.workers].sort();
    const clusterInfo: ClusterInfo = {
      job,
      workers,
      duplicates: counts.duplicates,
      redelivered: counts.redelivered,
      republished: counts.republished,
    };
    const fModel = withConstants(f, reduction.f.constant);
    const gModel = withConstants(g, reduction.g.constant);
    const scored = buildReport(fModel, gModel, reduction, {
      match: options.match,
      constantMode: options.constant,
      conv: options.conv,
      partial: plans.partial,
      kernel: [...outcome.kernels].sort().join('+'),
      threads: workers.length,
      block,
      tiles: tiles.length,
      seconds: (performance.now() - started) / 1000,
      cluster: clusterInfo,
      // In a cluster the null's time is the workers' compute time on its tiles, summed.
      null: progress.nulls === null ? null : { reduction: progress.nulls, tiles: work.length - tiles.length, seconds: outcome.nullSeconds },
    });
    const reportJson = JSON.stringify(scored.report, null, 2);
    if (options.out !== null) writeAtomic(options.out, [`${reportJson}\n`]);
    if (options.matches !== null) {
      const sides = [
        { label: 'F' as const, self: fModel, other: gModel, state: reduction.forward, scores: scored.forward },
        { label: 'G' as const, self: gModel, other: fModel, state: reduction.backward, scores: scored.backward },
      ];
      writeAtomic(options.matches, matchesCsv(sides, options.match));
    }
    await store.finish('done', cluster.ttlSeconds, { report: reportJson });
    await cleanUp(jsm, kv, job);
    log.info({ duplicates: counts.duplicates, redelivered: counts.redelivered, republished: counts.republished, workers }, 'job done');
    return { report: scored.report, summary: humanSummary(scored.report) };
  } catch (err) {
    // A job that failed is recorded as failed; one whose lease was taken belongs to the new holder.
    if (err instanceof NeurocorrError && !(err instanceof LeaseLostError) && (await store.state().catch(() => null)) !== null) {
      await store.finish('failed', cluster.ttlSeconds, { error: err.message }).catch(() => undefined);
      await jetstreamManager(nc)
        .then((jsm) => jsm.streams.purge(TILE_STREAM, { filter: tileSubject(job) }))
        .catch(() => undefined);
    }
    throw err;
  } finally {
    clearInterval(leaseTimer);
    await store.release().catch(() => undefined);
    await metrics.close();
    redis.disconnect();
    await nc.close();
  }
}

/** A tile of the job: a main tile, or one of the permutation null's. */
interface Work {
  readonly tile: Tile;
  readonly null: NullTile | null;
}

async function publishTiles(js: JetStreamClient, job: string, work: readonly Work[]): Promise<void> {
  const subject = tileSubject(job);
  // Pipelined in windows: JetStream acks each publish, and awaiting them one by one caps the rate at a few thousand per second.
  for (let i = 0; i < work.length; i += 256) {
    await Promise.all(work.slice(i, i + 256).map((w) => js.publish(subject, encodeTile(job, w.tile, w.null))));
  }
}

async function cleanUp(jsm: JetStreamManager, kv: { delete(key: string): Promise<void> }, job: string): Promise<void> {
  await jsm.consumers.delete(RESULT_STREAM, coordinatorConsumer(job)).catch(() => false);
  await jsm.streams.purge(TILE_STREAM, { filter: tileSubject(job) }).catch(() => undefined);
  await jsm.streams.purge(RESULT_STREAM, { filter: resultSubject(job) }).catch(() => undefined);
  await kv.delete(job).catch(() => undefined);
}

interface CollectContext {
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  readonly js: JetStreamClient;
  readonly job: string;
  readonly spec: JobSpec;
  readonly work: readonly Work[];
  readonly progress: JobProgress;
  readonly counts: { done: number; duplicates: number; redelivered: number; republished: number };
  readonly store: JobStore;
  readonly specJson: string;
  readonly cluster: ClusterOptions;
  readonly log: Logger;
  readonly m: Metrics;
  readonly f: Model;
  readonly g: Model;
  readonly bar: Progress;
  readonly publishMissing: () => Promise<number>;
  readonly abort: { fail: (err: NeurocorrError) => void };
}

/** Consumes results until every tile is done (or the job fails), checkpointing as it goes. */
async function collect(c: CollectContext): Promise<{ workers: Set<string>; kernels: Set<string>; nullSeconds: number }> {
  const { progress, counts, work, log, m, cluster } = c;
  let nullSeconds = 0;
  const workers = new Set<string>();
  const kernels = new Set<string>();
  const lastError = new Map<number, string>();
  let held: JsMsg[] = [];
  let failure: NeurocorrError | null = null;
  let lastSave = Date.now();
  let saving: Promise<void> = Promise.resolve();

  const consumer = await c.js.consumers.get(RESULT_STREAM, coordinatorConsumer(c.job));
  const messages = await consumer.consume({ max_messages: 512 });
  const fail = (err: NeurocorrError) => {
    failure ??= err;
    messages.stop();
  };
  c.abort.fail = fail;

  // A checkpoint first, then the acks of the results it holds: a crash in between only replays them.
  const checkpoint = (): Promise<void> => {
    const acks = held;
    held = [];
    lastSave = Date.now();
    const bytes = encodeCheckpoint(progress);
    const fields = { done: counts.done, tiles: work.length, duplicates: counts.duplicates, redelivered: counts.redelivered };
    saving = saving
      .then(() => c.store.save(c.specJson, bytes, fields))
      .then(
        () => acks.forEach((msg) => msg.ack()),
        (err: unknown) => {
          log.warn({ err: (err as Error).message }, 'checkpoint failed; will retry');
          held = [...acks, ...held];
        },
      );
    return saving;
  };

  const advisories = c.nc.subscribe(maxDeliveriesAdvisory(), {
    callback: (err, msg) => {
      if (err) return;
      const { stream_seq: seq } = msg.json<{ stream_seq: number }>();
      c.jsm.streams
        .getMessage(TILE_STREAM, { seq })
        .then((stored) => {
          if (stored === null) return;
          const { job, tile } = decodeTile(stored.data);
          const item = c.work[tile.id];
          if (job !== c.job || item === undefined || progress.done[tile.id] === 1) return;
          const why = lastError.get(tile.id) ?? 'no worker reported an error: a worker may have died on it each time';
          fail(
            new InputError(
              'E_TILE_FAILED',
              describeTile(c.spec, item, c.f, c.g),
              `failed ${cluster.queue.maxDeliver} times (max_deliver): ${why}`,
              'fix the input named above and run the job again with the same --job',
            ),
          );
        })
        .catch(() => undefined);
    },
  });

  let lastDone = counts.done;
  let pairsDone = 0;
  const started = performance.now();
  const idleMs = Math.max(2000, cluster.queue.ackWaitMs * 2);
  const timers = [
    setInterval(() => {
      if (held.length > 0 && Date.now() - lastSave >= cluster.checkpointSeconds * 1000) void checkpoint();
    }, 250),
    // Nothing finished for a while: if neither stream holds anything for this job, tiles went missing; publish them again.
    setInterval(() => {
      if (counts.done !== lastDone || counts.done === work.length) {
        lastDone = counts.done;
        return;
      }
      void (async () => {
        const info = await c.jsm.streams.info(TILE_STREAM, { subjects_filter: tileSubject(c.job) });
        const queued = info.state.subjects?.[tileSubject(c.job)] ?? 0;
        const pending = await c.jsm.consumers.info(RESULT_STREAM, coordinatorConsumer(c.job));
        if (queued > 0) {
          log.warn(
            { queued },
            `no tile finished in the last ${Math.round(idleMs / 1000)} s while tiles wait in the queue: are workers running (neurocorr worker --nats URL)?`,
          );
        } else if (pending.num_pending === 0 && pending.num_ack_pending <= held.length && counts.done < work.length) {
          const n = await c.publishMissing();
          counts.republished += n;
          m.republished.inc(n);
          log.warn({ tiles: n }, 'tiles went missing from the work queue; published them again');
        }
      })().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'missing-tile check failed'));
    }, idleMs),
  ];

  try {
    if (counts.done === work.length) messages.stop();
    for await (const msg of messages) {
      let decoded;
      try {
        decoded = decodeResult(msg.data);
      } catch (err) {
        log.error({ err: (err as Error).message, seq: msg.seq }, 'dropping an undecodable result');
        msg.term();
        continue;
      }
      const item = work[decoded.tile.id];
      const tile = item?.tile;
      if (decoded.job !== c.job || item === undefined || tile === undefined || tile.f.start !== decoded.tile.f.start || tile.g.start !== decoded.tile.g.start) {
        log.error({ tile: decoded.tile.id, job: decoded.job }, 'dropping a result that does not match the plan');
        msg.term();
        continue;
      }
      if (decoded.kind === 'failure') {
        lastError.set(tile.id, `${decoded.error} (worker ${decoded.worker})`);
        log.warn({ tile: tile.id, worker: decoded.worker, deliveries: decoded.deliveries, err: decoded.error }, 'tile failed on a worker');
        msg.ack();
        if (decoded.deliveries >= cluster.queue.maxDeliver && progress.done[tile.id] === 0) {
          fail(
            new InputError(
              'E_TILE_FAILED',
              describeTile(c.spec, item, c.f, c.g),
              `failed ${decoded.deliveries} times (max_deliver): ${decoded.error}`,
              'fix the input named above and run the job again with the same --job',
            ),
          );
        }
        continue;
      }
      workers.add(decoded.worker);
      kernels.add(decoded.kernel);
      if (progress.done[tile.id] === 1) {
        counts.duplicates++;
        m.duplicates.inc();
        msg.ack();
        continue;
      }
      if (item.null !== null) {
        progress.nulls!.merge(item.null, decoded.result.rowBest, decoded.result.rowArg);
        nullSeconds += decoded.milliseconds / 1000;
      } else {
        progress.reduction.merge(tile, decoded.result);
        const flags = decoded.constant;
        const { f, g } = progress.reduction;
        for (let k = 0; k < tile.f.count; k++) f.constant[tile.f.start + k]! |= flags[k]!;
        for (let k = 0; k < tile.g.count; k++) g.constant[tile.g.start + k]! |= flags[tile.f.count + k]!;
      }
      progress.done[tile.id] = 1;
      counts.done++;
      if (decoded.deliveries > 1) {
        counts.redelivered++;
        m.redelivered.inc();
      }
      m.done.set(counts.done);
      m.inFlight.dec();
      m.pairs.inc(tile.f.count * tile.g.count);
      pairsDone += tile.f.count * tile.g.count;
      m.pairsPerSecond.set(pairsDone / ((performance.now() - started) / 1000));
      c.bar.update(counts.done);
      held.push(msg);
      if (held.length >= cluster.checkpointTiles) void checkpoint();
      if (counts.done === work.length) break;
    }
  } finally {
    timers.forEach(clearInterval);
    advisories.unsubscribe();
    messages.stop();
  }
  if (failure !== null) throw failure;
  if (counts.done < work.length) throw new InternalError(`the results stream closed with ${counts.done} of ${work.length} tiles done`);
  for (;;) {
    await checkpoint();
    if (held.length === 0) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  return { workers, kernels, nullSeconds };
}
