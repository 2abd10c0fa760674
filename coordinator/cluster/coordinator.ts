/**
 * The cluster coordinator: the same job as an embedded run (plan, executor,
 * reduction, report), with JetStream as the executor and Redis holding the
 * job's state. Its phases: set up (connect, take the job's lease), prepare
 * (plan, compare with the stored spec, restore the checkpoint, make sure the
 * streams exist), execute (publish and collect), finish (report, outputs,
 * clean up). See docs/ARCHITECTURE.md, "Cluster".
 */
import { resolve } from 'node:path';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import {
  checkJobName,
  coordinatorConsumer,
  encodeJobSpec,
  JOB_BUCKET,
  redactUrl,
  RESULT_STREAM,
  resultPayloadBytes,
  resultSubject,
  TILE_STREAM,
  tileSubject,
  type InputRef,
  type JobSpec,
} from '../../shared/cluster/index.js';
import { connectNats, ensureResultConsumer, ensureStreams, ensureWorkerConsumer, uploadInput } from '../../shared/nats/index.js';
import { humanSummary, NULL_ROWS, nullOptions, warnChance, type ClusterInfo, type Report } from '../../shared/core/index.js';
import { defaultBlockSize } from '../../shared/tiles/index.js';
import { JobFailedError, NeurocorrError, ServiceError, UsageError } from '../../shared/errors.js';
import { isShardPlan, planPair, type PlannedPair } from '../../shared/formats/index.js';
import { encodeCheckpoint, JobProgress, pairReport, planJob, restoreCheckpoint, writeOutputs, type JobPlan } from '../../shared/job/index.js';
import { createLogger, startMetrics, type Logger, type MetricsEndpoint } from '../../shared/observe.js';
import { retry } from '../../shared/retry.js';
import type { ClusterSettings, ScoreResult, ScoreSettings } from '../options.js';
import { createProgress } from '../progress.js';
import { JetStreamExecutor } from './executor.js';
import { JobStore } from './job-store.js';

function jobName(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return `job-${stamp}-${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * The block size: the native default for a 2-thread worker, capped so that
 * the largest result (a null tile: NULL_ROWS blocks of rows and one of
 * columns) fits NATS's max_payload.
 */
export function clusterBlock(m: number, nF: number, nG: number, maxPayload: number, tile: number | undefined): number {
  const block = tile ?? defaultBlockSize({ kernel: 'native', m, nF, nG, threads: 2 });
  const fits = Math.floor((maxPayload - 4096) / ((NULL_ROWS + 1) * resultPayloadBytes(1, 0)));
  if (block > fits) {
    if (tile !== undefined) {
      throw new UsageError(
        (o) => `${o('tile')} ${tile} makes tile results larger than the NATS server's max_payload (${maxPayload} bytes); use ${o('tile')} ${fits} or less`,
      );
    }
    return fits;
  }
  return block;
}

interface Connected {
  readonly nc: NatsConnection;
  readonly redis: Redis;
  readonly metrics: MetricsEndpoint;
  readonly store: JobStore;
}

interface Prepared {
  readonly plan: JobPlan;
  readonly progress: JobProgress;
  readonly spec: string;
  readonly jsm: JetStreamManager;
  readonly kv: KV;
}

export class ClusterCoordinator {
  private readonly job: string;
  private readonly log: Logger;
  private readonly started = performance.now();
  private readonly planned: PlannedPair;
  private leaseTimer: NodeJS.Timeout | undefined;
  private executor: JetStreamExecutor | null = null;
  private leaseLost: JobFailedError | null = null;

  constructor(
    private readonly s: ScoreSettings,
    private readonly c: ClusterSettings,
  ) {
    this.job = checkJobName(c.job ?? jobName());
    this.log = createLogger('neurocorr-coordinator', c.logLevel).child({ job: this.job });
    this.planned = planPair(s.f, s.g, s.pair);
  }

  async run(): Promise<ScoreResult> {
    const [f, g] = [this.planned.f.skeleton(), this.planned.g.skeleton()];
    warnChance(f.m, f.probes, f.n, g.n, this.s.log);
    const connected = await this.setUp();
    try {
      const stored = await connected.store.report();
      if (stored !== null) {
        const report = JSON.parse(stored) as Report;
        this.s.log(`job ${this.job} is already done; its stored report follows`);
        return { report, summary: humanSummary(report) };
      }
      const prepared = await this.prepare(connected);
      const executor = await this.execute(connected, prepared);
      return await this.finish(connected, prepared, executor);
    } catch (err) {
      await this.recordFailure(connected, err);
      throw err;
    } finally {
      clearInterval(this.leaseTimer);
      await connected.store.release().catch(() => undefined);
      await connected.metrics.close();
      connected.redis.disconnect();
      await connected.nc.close();
    }
  }

  /** Connects to NATS and Redis and takes the job's lease, renewed while the job runs. */
  private async setUp(): Promise<Connected> {
    const { c, s, job, log } = this;
    const nc = await connectNats(c.nats, `neurocorr-coordinator ${job}`);
    const redis = new Redis(c.redis, { lazyConnect: true, maxRetriesPerRequest: 50 });
    // ioredis reconnects on its own; its connection errors are worth a line, not a crash or an unhandled-event dump.
    redis.on('error', (err: Error) => log.warn({ err: err.message }, 'redis connection error'));
    let metrics: MetricsEndpoint | null = null;
    try {
      metrics = await startMetrics(c.metricsPort, c.metricsHost);
      try {
        await redis.connect();
      } catch (err) {
        throw new ServiceError(
          'Redis',
          (o) => `cannot reach Redis at ${redactUrl(c.redis)}: ${(err as Error).message}; start redis-server, or fix ${o('cluster.redis')}`,
          {
            cause: err,
          },
        );
      }
      if (c.job === null) s.log(`job: ${job} (resume it with the same job name: ${job})`);
      log.info({ nats: redactUrl(c.nats), redis: redactUrl(c.redis), metrics: metrics.url }, 'coordinator starting');
      const store = new JobStore(redis, job, c.prefix);
      await store.acquire(c.leaseMs, s.log);
      this.leaseTimer = setInterval(() => {
        store.renew(c.leaseMs).then(
          (held) => held || this.loseLease(),
          (err: unknown) => log.warn({ err: (err as Error).message }, 'lease renewal failed'),
        );
      }, c.leaseMs / 3);
      return { nc, redis, metrics, store };
    } catch (err) {
      await metrics?.close();
      redis.disconnect();
      await nc.close();
      throw err;
    }
  }

  private loseLease(): void {
    this.leaseLost = new JobFailedError('E_LEASE_LOST', `job ${this.job}: another coordinator took over its lease; this one stops and leaves the job to it`);
    this.executor?.abort(this.leaseLost);
  }

  /** Plans the job, checks it against a stored spec of the same name, restores its checkpoint, and makes sure the streams exist. */
  private async prepare({ nc, store }: Connected): Promise<Prepared> {
    const { c, s, job, log, planned } = this;
    const models = [planned.f.skeleton(), planned.g.skeleton()];
    const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
    const block = clusterBlock(planned.f.m, models[0]!.n, models[1]!.n, maxPayload, s.tile);
    const cuts = [planned.f, planned.g].map((p) => (isShardPlan(p) ? p.manifest.shards.map((sh) => sh.first) : []));
    const pairs = [{ f: 0, g: 1 }];
    const nul = nullOptions(s.null, models[0]!.n, models[1]!.n);
    const plan = planJob(models, pairs, { block, null: nul, cuts });

    const previous = await store.spec();
    const inputs = previous === null ? await Promise.all([s.f, s.g].map((p) => this.inputRef(nc, p))) : (JSON.parse(previous) as JobSpec).inputs;
    const spec: JobSpec = {
      version: 2,
      job,
      inputs,
      pairs,
      options: s.pair,
      m: planned.f.m,
      n: models.map((m) => m.n),
      block,
      tiles: plan.tiles.length,
      null: nul,
    };
    const specJson = JSON.stringify(spec);
    if (previous !== null && previous !== specJson) {
      const was = JSON.parse(previous) as JobSpec;
      const why =
        was.tiles !== spec.tiles || was.block !== spec.block ? `it was planned as ${was.tiles} tiles of ${was.block}` : 'its inputs or options differ';
      throw new UsageError(
        (o) => `job ${job} already exists with a different plan (${why}); resume it with the same inputs and options, or pick another ${o('cluster.job')}`,
      );
    }

    const progress = new JobProgress(plan);
    const saved = await store.checkpoint();
    if (saved !== null) restoreCheckpoint(saved, progress);
    if (saved !== null) log.info({ done: progress.doneTiles, tiles: plan.tiles.length }, 'resuming from checkpoint');
    const prior = await store.state();
    await store.save(specJson, encodeCheckpoint(progress), {
      done: progress.doneTiles,
      tiles: plan.tiles.length,
      duplicates: prior?.duplicates ?? 0,
      redelivered: prior?.redelivered ?? 0,
    });
    const jsm = await jetstreamManager(nc);
    await ensureStreams(jsm);
    await ensureWorkerConsumer(jsm, c.queue);
    const kv = await new Kvm(nc).create(JOB_BUCKET, { history: 1 });
    await kv.put(job, encodeJobSpec(spec));
    // Results wait (unacked) for up to two checkpoint periods before JetStream hands them out again.
    await ensureResultConsumer(jsm, job, Math.max(30_000, 4 * c.checkpointSeconds * 1000));
    return { plan, progress, spec: specJson, jsm, kv };
  }

  private async inputRef(nc: NatsConnection, path: string): Promise<InputRef> {
    return this.c.upload ? uploadInput(nc, path, this.log) : { kind: 'path', path: resolve(path) };
  }

  /** Publishes the tiles not done and folds in the results until every tile is done. */
  private async execute(
    { nc, store, metrics }: Connected,
    { plan, progress, spec, jsm }: Prepared,
  ): Promise<{ executor: JetStreamExecutor; nullSeconds: number }> {
    const { c, s, job, log } = this;
    const prior = await store.state();
    const bar = createProgress({
      total: plan.tiles.length,
      pairsPerUnit: (plan.models[0]!.n * plan.models[1]!.n) / plan.tiles.length,
      label: 'tiles',
      enabled: s.progress,
      intervalMs: s.progressInterval,
    });
    bar.update(progress.doneTiles);
    const executor: JetStreamExecutor = new JetStreamExecutor({
      nc,
      jsm,
      js: jetstream(nc),
      job,
      plan,
      queue: c.queue,
      checkpointTiles: c.checkpointTiles,
      checkpointSeconds: c.checkpointSeconds,
      persist: () =>
        store.save(spec, encodeCheckpoint(progress), {
          done: progress.doneTiles,
          tiles: plan.tiles.length,
          duplicates: (prior?.duplicates ?? 0) + executor.stats.duplicates,
          redelivered: (prior?.redelivered ?? 0) + executor.stats.redelivered,
        }),
      log,
      registry: metrics.registry,
      onTile: (done) => bar.update(done),
    });
    this.executor = executor;
    if (this.leaseLost !== null) executor.abort(this.leaseLost);
    let nullSeconds = 0;
    await executor.execute(
      plan.tiles.filter((t) => progress.done[t.id] === 0),
      (tile, outcome) => {
        const fresh = progress.merge(tile, outcome.result, outcome.constant);
        // In a cluster the null's time is the workers' compute time on its tiles, summed.
        if (fresh && tile.kind === 'null') nullSeconds += outcome.seconds;
        return fresh;
      },
    );
    bar.finish();
    return { executor, nullSeconds };
  }

  private async finish(
    { store }: Connected,
    { plan, progress, jsm, kv }: Prepared,
    { executor, nullSeconds }: { executor: JetStreamExecutor; nullSeconds: number },
  ): Promise<ScoreResult> {
    const { c, s, job, log } = this;
    const prior = await store.state();
    const workers = [...executor.stats.workers].sort();
    const cluster: ClusterInfo = {
      job,
      workers,
      duplicates: prior?.duplicates ?? executor.stats.duplicates,
      redelivered: prior?.redelivered ?? executor.stats.redelivered,
      republished: executor.stats.republished,
    };
    const scored = pairReport(progress, 0, {
      match: s.match,
      constantMode: s.constant,
      conv: s.pair.conv,
      partial: this.planned.partial,
      kernel: [...executor.stats.kernels].sort().join('+'),
      threads: workers.length,
      block: plan.block,
      tiles: plan.tiles.filter((t) => t.kind === 'main').length,
      seconds: (performance.now() - this.started) / 1000,
      cluster,
      nullSeconds,
    });
    writeOutputs(progress, 0, scored, s);
    await store.finish('done', c.ttlSeconds, { report: JSON.stringify(scored.report, null, 2) });
    await cleanUp(jsm, kv, job);
    log.info({ duplicates: cluster.duplicates, redelivered: cluster.redelivered, republished: cluster.republished, workers }, 'job done');
    return { report: scored.report, summary: humanSummary(scored.report) };
  }

  /** A job that failed is recorded as failed; one whose lease was taken belongs to the new holder. */
  private async recordFailure({ nc, store }: Connected, err: unknown): Promise<void> {
    if (!(err instanceof NeurocorrError) || err.code === 'E_LEASE_LOST' || (await store.state().catch(() => null)) === null) return;
    await store.finish('failed', this.c.ttlSeconds, { error: err.message }).catch(() => undefined);
    await jetstreamManager(nc)
      .then((jsm) => retry('purging tiles', this.log, () => jsm.streams.purge(TILE_STREAM, { filter: tileSubject(this.job) }), 5000))
      .catch(() => undefined);
  }
}

async function cleanUp(jsm: JetStreamManager, kv: KV, job: string): Promise<void> {
  await jsm.consumers.delete(RESULT_STREAM, coordinatorConsumer(job)).catch(() => false);
  await jsm.streams.purge(TILE_STREAM, { filter: tileSubject(job) }).catch(() => undefined);
  await jsm.streams.purge(RESULT_STREAM, { filter: resultSubject(job) }).catch(() => undefined);
  await kv.delete(job).catch(() => undefined);
}
