/**
 * The cluster coordinator: the same job as an embedded run (plan, executor,
 * reduction, report), with JetStream as the executor and Redis holding the
 * job's state. Its phases: set up (connect, take the job's lease), prepare
 * (plan, check the job name against a stored spec, restore the checkpoint,
 * make sure the streams exist), execute (publish and collect), finish
 * (report, outputs, clean up). See docs/ARCHITECTURE.md, "Cluster".
 */
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { checkJobName, JOB_BUCKET, specId, urlHasCredentials, partEntriesFor } from '../../shared/cluster/index.js';
import type { ClusterInfo } from '../../shared/core/index.js';
import { JobFailedError, NeurocorrError, ServiceError, UsageError } from '../../shared/errors.js';
import { JobProgress, type JobPlan } from '../../shared/job/index.js';
import { connectNats, watchConnection, type NatsService } from '../../shared/nats/index.js';
import { createLogger, startMetrics, type Logger, type MetricsEndpoint } from '../../shared/observe.js';
import { retry } from '../../shared/retry.js';
import type { ClusterSettings } from '../options.js';
import type { ClusterJob } from './cluster-job.js';
import { JetStreamExecutor } from './executor.js';
import { clusterBlock, inputRef, jobName, jobSpec, specDifferences, superTileSpan, warnIfCoordinatorBound } from './job-spec.js';
import { cleanUp, ensureJobTransport, sweepLeftovers, withdrawTiles } from './job-transport.js';
import { measureMergeRate } from './merge-rate.js';
import { openSampler } from './result-sampler.js';
import { TileAudit } from './tile-audit.js';
import { checkpointChunkLength } from './checkpoint-store.js';
import { JobStore } from './job-store.js';
import { isStoredSpec } from './stored.js';
import { connectRedis, type RedisConnection } from './redis.js';

interface Connected {
  readonly nc: NatsConnection;
  readonly redis: RedisConnection;
  readonly metrics: MetricsEndpoint;
  readonly store: JobStore;
  readonly stopWatching: () => void;
}

interface Prepared {
  readonly nc: NatsConnection;
  readonly plan: JobPlan;
  readonly progress: JobProgress;
  readonly spec: string;
  /** The spec's entries per part of a super-tile's result. */
  readonly partEntries: number;
  readonly jsm: JetStreamManager;
  readonly kv: KV;
}

export { clusterBlock } from './job-spec.js';
export type { ClusterJob, ClusterRunInfo } from './cluster-job.js';

export class ClusterCoordinator<R> {
  private readonly job: string;
  private readonly log: Logger;
  private readonly nats: NatsService;
  private leaseTimer: NodeJS.Timeout | undefined;
  private executor: JetStreamExecutor | null = null;
  /** Why the run must stop, set from outside the result loop (a lost lease, a service gone). */
  private stopped: NeurocorrError | null = null;

  constructor(
    private readonly s: ClusterJob<R>,
    private readonly c: ClusterSettings,
  ) {
    this.job = checkJobName(c.job ?? jobName());
    this.log = createLogger('neurocorr-coordinator', c.logLevel).child({ job: this.job });
    this.nats = { url: c.nats, credentials: c.natsCredentials, timeoutMs: c.serviceTimeoutMs, option: 'cluster.nats' };
  }

  async run(): Promise<R> {
    for (const [url, flag] of [
      [this.c.nats, 'cluster.nats'],
      [this.c.redis, 'cluster.redis'],
    ] as const) {
      if (urlHasCredentials(url))
        this.log.warn({ option: flag }, 'credentials in a URL show in ps; pass them in a file or the environment instead (docs/CLUSTER.md, Security)');
    }
    const connected = await this.setUp();
    // Only a run that got as far as executing the job records its failure: a refusal while preparing (another
    // spec under this name, a damaged key) leaves the stored job as it was.
    let executing = false;
    try {
      const prepared = await this.prepare(connected);
      if ('done' in prepared) return prepared.done;
      executing = true;
      const executor = await this.execute(connected, prepared);
      return await this.finish(connected, prepared, executor);
    } catch (err) {
      // A command that timed out is Redis gone; what failed once a service was lost failed because of it.
      const failure = connected.redis.check(err) ?? (this.stopped instanceof ServiceError ? this.stopped : err);
      if (executing) await this.recordFailure(connected, failure);
      throw failure;
    } finally {
      clearInterval(this.leaseTimer);
      connected.stopWatching();
      await connected.store.release().catch(() => undefined);
      await connected.metrics.close();
      connected.redis.close();
      await connected.nc.close();
    }
  }

  /** Stops the run from outside the result loop: execute() rejects with `err`. */
  private stop(err: NeurocorrError): void {
    this.stopped ??= err;
    this.executor?.abort(err);
  }

  /** Connects to NATS and Redis (each bounded by the service timeout) and takes the job's lease, renewed while the job runs. */
  private async setUp(): Promise<Connected> {
    const { c, s, job, log } = this;
    const nc = await connectNats(this.nats, `neurocorr-coordinator ${job}`, s.log);
    let metrics: MetricsEndpoint | null = null;
    let redis: RedisConnection | null = null;
    try {
      metrics = await startMetrics(c.metricsPort, c.metricsHost);
      redis = await connectRedis({ url: c.redis, credentials: c.redisCredentials, timeoutMs: c.serviceTimeoutMs, option: 'cluster.redis' }, log, (err) =>
        this.stop(err),
      );
      const stopWatching = watchConnection(nc, this.nats, (err) => this.stop(err));
      if (c.job === null) s.log(`job: ${job} (resume it with the same job name: ${job})`);
      log.info({ nats: nc.getServer(), redis: redis.shown, metrics: metrics.url }, 'coordinator starting');
      const store = new JobStore(redis.redis, job, c.prefix);
      await store.acquire(c.leaseMs, s.log);
      this.leaseTimer = setInterval(() => {
        store.renew(c.leaseMs).then(
          (held) =>
            held ||
            this.stop(new JobFailedError('E_LEASE_LOST', `job ${job}: another coordinator took over its lease; this one stops and leaves the job to it`)),
          (err: unknown) => {
            redis!.check(err);
            log.warn({ err: (err as Error).message }, 'lease renewal failed');
          },
        );
      }, c.leaseMs / 3);
      return { nc, redis, metrics, store, stopWatching };
    } catch (err) {
      await metrics?.close();
      redis?.close();
      await nc.close();
      throw err;
    }
  }

  /**
   * Plans the job and checks the job name against its stored spec: the same
   * inputs and options resume it (or, finished, return its stored report);
   * other ones are refused. Then restores the checkpoint and makes sure the
   * streams, consumers and the spec in the KV bucket exist.
   */
  private async prepare({ nc, store }: Connected): Promise<Prepared | { readonly done: R }> {
    const { c, s, job, log } = this;
    const { planned, pairs } = s;
    const models = planned.models.map((p) => p.skeleton());
    const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
    const [f, g] = [models[pairs[0]!.f]!, models[pairs[0]!.g]!];
    const block = clusterBlock(f.m, f.n, g.n, maxPayload, s.tile);
    const sizes = (model: typeof f) => model.layers.map((l) => l.count);
    const superTiles = { m: f.m, f: sizes(f), g: sizes(g), block, workers: c.workers, superTile: c.superTile };
    const span = superTileSpan(superTiles, log);
    const { plan, nulls } = s.runtime.planner({ block, span });
    const inputs = await Promise.all(s.paths.map((p) => inputRef(p, c.upload, nc, log)));
    const partEntries = partEntriesFor(maxPayload);
    const spec = jobSpec({ job, inputs, pairs, options: s.options, plan, nulls, partEntries });
    const specJson = JSON.stringify(spec);

    const previous = await store.spec();
    if (previous !== null && previous !== specJson) {
      const differences = specDifferences(store.parse('spec', previous, isStoredSpec), spec, s.labels);
      throw new UsageError(
        (o) =>
          `job ${job} already exists with other inputs or options (${differences.join('; ') || 'its spec differs'}). Resume it with the same ones, pick another ${o('cluster.job')}, or remove it with \`neurocorr jobs --delete ${job} --redis URL\``,
      );
    }
    const finished = await store.report();
    if (finished !== null) return { done: s.restore((check) => store.parse('report', finished, check), job) };
    // The plan above is fixed; only this warning depends on the machine (tens of ms of calibration).
    warnIfCoordinatorBound(superTiles, measureMergeRate({ layers: [f.layers.length, g.layers.length], partEntries }), log);

    const progress = new JobProgress(plan, checkpointChunkLength());
    const resumed = await store.checkpoints.load(progress);
    s.runtime.clock.start(plan, progress.done);
    if (resumed) {
      log.info({ done: progress.doneTiles, tiles: plan.tiles.length, generation: store.checkpoints.generation }, 'resuming from checkpoint');
    }
    const prior = await store.state();
    await store.save(specJson, progress, {
      done: progress.doneTiles,
      tiles: plan.tiles.length,
      duplicates: prior?.duplicates ?? 0,
      redelivered: prior?.redelivered ?? 0,
      republished: prior?.republished ?? 0,
    });
    const jsm = await jetstreamManager(nc);
    const kv = await new Kvm(nc).create(JOB_BUCKET, { history: 1 });
    const prepared = { nc, plan, progress, spec: specJson, partEntries: spec.partEntries, jsm, kv };
    await this.ensureTransport(prepared);
    await sweepLeftovers(jsm, log).catch((err: unknown) => log.warn({ err: (err as Error).message }, 'sweeping tiles left by ended jobs failed'));
    return prepared;
  }

  /** (Re-)creates what the job needs in JetStream (job-transport.ts); true when something was missing. */
  private ensureTransport(prepared: { readonly nc: NatsConnection; readonly jsm: JetStreamManager; readonly spec: string }): Promise<boolean> {
    const { c, job, s, log } = this;
    const upload = c.upload ? () => Promise.all(s.paths.map((p) => inputRef(p, true, prepared.nc, log))) : null;
    return ensureJobTransport({ ...prepared, job, queue: c.queue, checkpointSeconds: c.checkpointSeconds, upload, log });
  }

  /** Publishes the tiles not done and folds in the results until every tile is done. */
  private async execute({ nc, store, metrics, redis }: Connected, prepared: Prepared): Promise<JetStreamExecutor> {
    const { plan, progress, spec, jsm } = prepared;
    const { c, s, job, log } = this;
    const prior = await store.state();
    s.runtime.onStart(plan, progress.doneTiles);
    // Results are checked against the models themselves: the coordinator reads them as an embedded run would.
    const sampler = c.verify > 0 ? await openSampler(s, plan, c.verify) : null;
    const executor: JetStreamExecutor = new JetStreamExecutor({
      nc,
      jsm,
      js: jetstream(nc),
      job,
      spec: specId(spec),
      plan,
      queue: c.queue,
      partEntries: prepared.partEntries,
      checkpointTiles: c.checkpointTiles,
      checkpointSeconds: c.checkpointSeconds,
      stallTimeoutMs: c.stallTimeoutMs,
      verify: sampler === null ? null : (tile, outcome) => sampler.check(tile, outcome),
      audit:
        sampler === null || c.audit === 0
          ? null
          : {
              tiles: new TileAudit(c.audit, sampler),
              undo: (ids) => {
                // Rare (a worker found false): the tiles that were done count again for the clock.
                const wasDone = Uint8Array.from(progress.done);
                const undone = progress.undo(ids);
                s.runtime.clock.reopen(
                  plan,
                  undone.filter((id) => wasDone[id] === 1),
                );
                return undone;
              },
            },
      persist: () =>
        store
          .save(spec, progress, {
            done: progress.doneTiles,
            tiles: plan.tiles.length,
            duplicates: (prior?.duplicates ?? 0) + executor.stats.duplicates,
            redelivered: (prior?.redelivered ?? 0) + executor.stats.redelivered,
            republished: (prior?.republished ?? 0) + executor.stats.republished,
          })
          .then(
            (w) => log.debug({ generation: w.generation, chunks: w.chunks, bytes: w.bytes, full: w.full }, 'checkpoint stored'),
            (err: unknown) => {
              redis.check(err);
              throw err;
            },
          ),
      recover: () => this.ensureTransport(prepared),
      log,
      registry: metrics.registry,
      onTile: (done) => s.runtime.onTile(done),
    });
    this.executor = executor;
    if (this.stopped !== null) executor.abort(this.stopped);
    await executor.execute(
      plan.tiles.filter((t) => progress.done[t.id] === 0),
      (tile, outcome) => {
        const merged = progress.accept(tile, outcome);
        s.runtime.clock.merged(tile, outcome, merged);
        return merged;
      },
    );
    return executor;
  }

  private async finish({ store }: Connected, { plan, progress, jsm, kv }: Prepared, executor: JetStreamExecutor): Promise<R> {
    const { c, s, job, log } = this;
    const prior = await store.state();
    const workers = [...executor.stats.workers].sort();
    const cluster: ClusterInfo = {
      job,
      workers,
      duplicates: prior?.duplicates ?? executor.stats.duplicates,
      redelivered: prior?.redelivered ?? executor.stats.redelivered,
      republished: prior?.republished ?? executor.stats.republished,
    };
    const { result, stored } = await s.finish(progress, { cluster, kernel: [...executor.stats.kernels].sort().join('+'), block: plan.block });
    await store.finish('done', c.ttlSeconds, { report: stored });
    await cleanUp(jsm, kv, job, log, c.serviceTimeoutMs);
    log.info({ duplicates: cluster.duplicates, redelivered: cluster.redelivered, republished: cluster.republished, workers }, 'job done');
    return result;
  }

  /** A job that failed is recorded as failed; one whose lease was taken belongs to the new holder; one whose services went away is left to resume. */
  private async recordFailure({ nc, store }: Connected, err: unknown): Promise<void> {
    if (!(err instanceof NeurocorrError) || err.code === 'E_LEASE_LOST' || err instanceof ServiceError) return;
    if ((await store.state().catch(() => null)) === null) return;
    await store.finish('failed', this.c.ttlSeconds, { error: err.message }).catch(() => undefined);
    // Workers stop taking its tiles; its results consumer stays, so a rerun gets what was not yet merged.
    await jetstreamManager(nc)
      .then((jsm) => retry('withdrawing tiles', this.log, () => withdrawTiles(jsm, this.job), 5000))
      .catch(() => undefined);
  }
}
