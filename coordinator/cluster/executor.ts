/**
 * The tile executor of cluster runs: tiles go out on the JetStream work
 * queue, results come back on the job's results stream. JetStream is the
 * transport, not the truth (docs/ARCHITECTURE.md): results are acked only
 * once a checkpoint holding them is stored, tiles whose messages went
 * missing are published again, and a tile that failed on every delivery
 * fails the job.
 */
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Registry } from 'prom-client';
import { coordinatorConsumer, encodeTile, RESULT_STREAM, TILE_STREAM, tilesNotice, tileSubject, type TileQueueConfig } from '../../shared/cluster/index.js';
import type { NeurocorrError } from '../../shared/errors.js';
import { InternalError } from '../../shared/errors.js';
import { tilePairs, type Accept, type JobPlan, type JobTile, type TileExecutor, type TileOutcome } from '../../shared/job/index.js';
import type { Logger } from '../../shared/observe.js';
import { retry } from '../../shared/retry.js';
import { jobMetrics, type Metrics } from './executor-metrics.js';
import { admit } from './result-outcome.js';
import type { TileAudit } from './tile-audit.js';
import { TileRequeue } from './tile-requeue.js';
import { StallWatch, stallError, tileFailed, tileWhereabouts, watchMaxDeliveries } from './job-failures.js';

export interface JetStreamExecutorOptions {
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  readonly js: JetStreamClient;
  readonly job: string;
  /** specId of the job's spec, carried by every tile. */
  readonly spec: string;
  readonly plan: JobPlan;
  readonly queue: TileQueueConfig;
  /** The spec's entries per part of a super-tile's result. */
  readonly partEntries: number;
  readonly checkpointTiles: number;
  readonly checkpointSeconds: number;
  /** Checks a result's claims against the models before it is merged: null when they hold, else the problem. */
  readonly verify: ((tile: JobTile, outcome: TileOutcome) => string | null) | null;
  /** Second opinions on a share of the tiles (null: none), and how to undo the tiles of a worker found false (JobProgress.undo). */
  readonly audit: { readonly tiles: TileAudit; readonly undo: (ids: readonly number[]) => number[] } | null;
  /** Milliseconds without a finished tile (or part) before the job fails as stalled; null: never. */
  readonly stallTimeoutMs: number | null;
  /** Stores the job's state (a checkpoint); the results it holds are acked after it resolves. */
  readonly persist: () => Promise<void>;
  /** Re-creates whatever the job needs in JetStream that went missing; true when something did. */
  readonly recover: () => Promise<boolean>;
  readonly log: Logger;
  readonly registry: Registry;
  readonly onTile?: (done: number) => void;
}

/** What the faults cost, and who computed the job. */
export interface ExecutionStats {
  duplicates: number;
  redelivered: number;
  republished: number;
  readonly workers: Set<string>;
  readonly kernels: Set<string>;
}

/** Bytes of unacked results held before a checkpoint is taken anyway. */
const HELD_BYTES = 512 * 2 ** 20;

export class JetStreamExecutor implements TileExecutor {
  readonly stats: ExecutionStats = { duplicates: 0, redelivered: 0, republished: 0, workers: new Set(), kernels: new Set() };
  private readonly metrics: Metrics;
  /** Tiles not yet accepted, by id. */
  private readonly remaining = new Map<number, JobTile>();
  private readonly lastError = new Map<number, string>();
  private readonly requeue: TileRequeue;
  /** Once every tile is done, how long audits under way may still come in. */
  private auditsUntil: number | null = null;
  private held: JsMsg[] = [];
  /** Bytes of the held messages (kept in memory until their checkpoint). */
  private heldBytes = 0;
  private saving: Promise<void> = Promise.resolve();
  private lastSave = Date.now();
  private failure: NeurocorrError | null = null;
  private stop: () => void = () => undefined;
  /** The results being consumed now. */
  private current: ConsumerMessages | undefined;
  private pairsDone = 0;
  private readonly started = performance.now();
  private readonly stall: StallWatch;

  constructor(private readonly o: JetStreamExecutorOptions) {
    this.metrics = jobMetrics(o.registry);
    this.metrics.total.set(o.plan.tiles.length);
    this.stall = new StallWatch(o.stallTimeoutMs);
    this.requeue = new TileRequeue(o, this.metrics, this.remaining);
  }

  /** Stops the run: `execute` rejects with `err` once the results in hand are settled. */
  abort(err: NeurocorrError): void {
    this.failure ??= err;
    this.stop();
  }

  async execute(tiles: readonly JobTile[], accept: Accept): Promise<void> {
    const { o } = this;
    for (const tile of tiles) this.remaining.set(tile.id, tile);
    this.metrics.done.set(o.plan.tiles.length - tiles.length);
    // Leftovers of an earlier run are purged first, so they do not run twice.
    await retry('purging old tiles', o.log, () => o.jsm.streams.purge(TILE_STREAM, { filter: tileSubject(o.job) }));
    const published = await this.publishRemaining();
    o.log.info({ published, tiles: o.plan.tiles.length, block: o.plan.block, span: o.plan.span, partEntries: o.partEntries }, 'tiles published');
    await this.collect(accept);
  }

  private async publishRemaining(): Promise<number> {
    const missing = [...this.remaining.values()];
    const subject = tileSubject(this.o.job);
    // Pipelined in windows: awaiting JetStream's ack of each publish in turn caps the rate at a few thousand per second.
    await retry('publishing tiles', this.o.log, async () => {
      for (let i = 0; i < missing.length; i += 256) {
        await Promise.all(missing.slice(i, i + 256).map((tile) => this.o.js.publish(subject, encodeTile(this.o.job, this.o.spec, tile))));
      }
    });
    this.metrics.inFlight.set(missing.length);
    this.o.nc.publish(tilesNotice(this.o.job));
    return missing.length;
  }

  /** A checkpoint first, then the acks of the results it holds: a crash in between only replays them. */
  private checkpoint(): Promise<void> {
    const acks = this.held;
    this.held = [];
    this.heldBytes = 0;
    this.lastSave = Date.now();
    this.saving = this.saving
      .then(() => this.o.persist())
      .then(
        () => acks.forEach((msg) => msg.ack()),
        (err: unknown) => {
          this.o.log.warn({ err: (err as Error).message }, 'checkpoint failed; will retry');
          this.held = [...acks, ...this.held];
          this.heldBytes += acks.reduce((n, msg) => n + msg.data.length, 0);
        },
      );
    return this.saving;
  }

  /**
   * JetStream is a transport: what the job needs there (streams, consumers,
   * the spec in the KV bucket) is re-created from the coordinator's state
   * when missing, and then every tile not done is published again.
   */
  private async restoreTransport(): Promise<boolean> {
    const missing = await retry("restoring the job's JetStream state", this.o.log, () => this.o.recover(), this.o.queue.ackWaitMs * 4);
    if (missing && this.remaining.size > 0) {
      const n = await this.publishRemaining();
      this.stats.republished += n;
      this.metrics.republished.inc(n);
      this.o.log.warn({ tiles: n }, "JetStream had lost the job's streams, consumers or spec; re-created them and published the tiles not done again");
    }
    return missing;
  }

  /** No progress for the stall timeout: the job fails, its message naming where its tiles are. */
  private async stalled(): Promise<void> {
    const { o } = this;
    const where = await tileWhereabouts(o.jsm, o.job);
    if (!this.stall.overdue || this.failure !== null) return;
    const done = o.plan.tiles.length - this.remaining.size;
    this.abort(stallError({ job: o.job, limitMs: o.stallTimeoutMs!, done, tiles: o.plan.tiles.length, where, workers: [...this.stats.workers] }));
  }

  /** Nothing finished for a while: restore what JetStream lost; if neither stream holds anything of the job, publish the missing tiles again. */
  private async checkIdle(): Promise<void> {
    const { o } = this;
    if (await this.restoreTransport()) {
      // The results consumer may be a new one: consume from it.
      this.current?.stop();
      return;
    }
    const { queued } = await tileWhereabouts(o.jsm, o.job);
    const pending = await o.jsm.consumers.info(RESULT_STREAM, coordinatorConsumer(o.job));
    if (queued === null) return;
    if (queued > 0) {
      const stall = o.stallTimeoutMs === null ? '' : ` The job fails as stalled after ${Math.round(o.stallTimeoutMs / 1000)} s without progress.`;
      o.log.warn(
        { queued },
        `no tile finished in the last ${Math.round(this.idleMs / 1000)} s while tiles wait in the queue: are workers running (neurocorr worker --nats URL)?${stall}`,
      );
    } else if (pending.num_pending === 0 && pending.num_ack_pending <= this.held.length && this.remaining.size > 0) {
      const n = await this.publishRemaining();
      this.stats.republished += n;
      this.metrics.republished.inc(n);
      o.log.warn({ tiles: n }, 'tiles went missing from the work queue; published them again');
    }
  }

  private get idleMs(): number {
    return Math.max(2000, this.o.queue.ackWaitMs * 2);
  }

  /** Consumes results until every tile is accepted (or the job fails), checkpointing as it goes; a lost consumer is re-created. */
  private async collect(accept: Accept): Promise<void> {
    const { o } = this;
    const advisories = watchMaxDeliveries(o.nc, o.jsm, o.job, (id) => {
      const pending = this.remaining.get(id);
      if (pending === undefined) return;
      const avoid = this.lastError.has(id) ? null : (o.audit?.tiles.bounce(id) ?? null);
      if (avoid !== null) return this.requeue.again(pending, avoid);
      const why = this.lastError.get(id) ?? 'no worker reported an error: a worker may have died on it each time';
      this.abort(tileFailed(o.plan, o.job, pending, o.queue.maxDeliver, why));
    });
    const unwatch = this.stall.watch(o.nc, o.job, () => this.stalled());
    let lastRemaining = this.remaining.size;
    let checking: Promise<void> | null = null; // an idle check may publish tiles: awaited before the queue is cleaned up
    const timers = [
      setInterval(() => {
        if (this.held.length > 0 && Date.now() - this.lastSave >= o.checkpointSeconds * 1000) void this.checkpoint();
      }, 250),
      setInterval(() => {
        if (this.remaining.size !== lastRemaining || this.remaining.size === 0 || checking !== null) {
          lastRemaining = this.remaining.size;
          return;
        }
        checking = this.checkIdle()
          .catch((err: unknown) => o.log.warn({ err: (err as Error).message }, 'idle check failed; will retry'))
          .finally(() => (checking = null));
      }, this.idleMs),
    ];
    this.stop = () => this.current?.stop();
    try {
      while (this.working() && this.failure === null) {
        try {
          const consumer = await o.js.consumers.get(RESULT_STREAM, coordinatorConsumer(o.job));
          // Parts of super-tiles are up to max_payload each, so at most 32 MB of them are pulled at once: the server
          // drops a client that falls 64 MB behind (max_pending) as a slow consumer. Bounded by count, not max_bytes:
          // a pull with fewer bytes left than the next message gets a 409 that stalls nats.js's consumer until two
          // heartbeats are missed (both measured under a backlog: 30 s without a result).
          const batch = Math.min(100, Math.max(2, Math.floor((32 * 2 ** 20) / (o.nc.info?.max_payload ?? 2 ** 20))));
          this.current = await consumer.consume({ max_messages: batch, abort_on_missing_resource: true });
          if (this.failure !== null) this.current.stop();
          for await (const msg of this.current) {
            this.handle(msg, accept);
            if (!this.working()) break;
          }
        } catch (err) {
          o.log.warn({ err: (err as Error).message }, 'the results consumer went away; restoring it');
        }
        if (this.working() && this.failure === null)
          await this.restoreTransport().catch((err: unknown) => o.log.warn({ err: (err as Error).message }, 'restoring JetStream failed; will retry'));
      }
    } finally {
      timers.forEach(clearInterval);
      advisories.unsubscribe();
      unwatch();
      this.current?.stop();
    }
    // A tile published again must be in the stream before the job's queue is cleaned up, or it would outlive it.
    await checking;
    await this.requeue.published();
    if (this.failure !== null) {
      // What was merged is kept, so that a rerun with the same job name resumes from here.
      await this.checkpoint();
      throw this.failure;
    }
    if (this.remaining.size > 0) throw new InternalError(`the results stream closed with ${this.remaining.size} of ${o.plan.tiles.length} tiles not done`);
    for (;;) {
      await this.checkpoint();
      if (this.held.length === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** Folds in one result message (or drops or refuses it, saying why). */
  private handle(msg: JsMsg, accept: Accept): void {
    const { o, metrics, stats } = this;
    const incoming = admit(msg.subject, msg.data, o.job, o.plan, o.partEntries);
    if (incoming.kind === 'drop') {
      o.log.error({ sender: incoming.sender, seq: msg.seq, why: incoming.why }, 'dropping a message that is not a result of this job');
      msg.term();
      return;
    }
    const { tile, sender } = incoming;
    if (incoming.kind === 'failure') {
      // The job fails on JetStream's own count of deliveries (watchMaxDeliveries), never on a worker's word.
      this.lastError.set(tile.id, `worker ${sender} said: ${incoming.error}`);
      o.log.warn({ tile: tile.id, sender, err: incoming.error }, 'tile failed on a worker');
      msg.ack();
      return;
    }
    if (incoming.kind === 'refuse' || o.audit?.tiles.quarantined.has(sender)) {
      this.requeue.refuse(msg, tile, sender, incoming.kind === 'refuse' ? incoming.problem : `worker ${sender} is quarantined`);
      return;
    }
    const untrue = o.verify?.(tile, incoming.outcome) ?? null;
    if (untrue !== null) {
      this.requeue.refuse(msg, tile, sender, untrue);
      return;
    }
    let merged;
    try {
      merged = accept(tile, incoming.outcome);
    } catch (err) {
      this.requeue.refuse(msg, tile, sender, (err as Error).message);
      return;
    }
    stats.workers.add(sender);
    stats.kernels.add(incoming.kernel);
    if (merged === 'duplicate') {
      msg.ack();
      // An audit's second opinion is asked for, not a duplicate; it counts its tile once it agrees.
      const verdict = o.audit?.tiles.secondOpinion(tile, sender, incoming.outcome) ?? null;
      if (verdict === null) {
        stats.duplicates++;
        metrics.duplicates.inc();
      } else if (verdict.kind === 'false') this.requeue.quarantine(verdict.sender, verdict.why);
      if (!this.working()) this.current?.stop();
      return;
    }
    o.audit?.tiles.merged(tile, sender, incoming.outcome);
    this.stall.progress();
    this.held.push(msg);
    this.heldBytes += msg.data.length;
    // Parts of super-tiles are megabytes each: a checkpoint also lets go of the messages it holds.
    if (this.held.length >= o.checkpointTiles || this.heldBytes >= HELD_BYTES) void this.checkpoint();
    if (merged === 'part') return;
    const audited = o.audit?.tiles.auditOf(tile.id) ?? null;
    if (audited !== null) this.requeue.again(tile, audited);
    this.finished(tile, incoming.deliveries);
  }

  /**
   * Whether results are still wanted: tiles not done, or, once they all are,
   * audits under way for a short grace (an audit that finds a worker false
   * reopens its tiles; one that no other worker takes does not hold the job).
   */
  private working(): boolean {
    if (this.remaining.size > 0) return true;
    if ((this.o.audit?.tiles.pending ?? 0) === 0) return false;
    if (this.auditsUntil === null) {
      const grace = Math.max(5000, 2 * this.o.queue.ackWaitMs);
      this.auditsUntil = performance.now() + grace;
      setTimeout(() => void (this.working() || this.current?.stop()), grace + 10).unref();
    }
    return performance.now() < this.auditsUntil;
  }

  /** A tile is done: counted, and out of the tiles the job waits for. */
  private finished(tile: JobTile, deliveries: number): void {
    const { o, metrics, stats } = this;
    this.remaining.delete(tile.id);
    if (deliveries > 1) {
      stats.redelivered++;
      metrics.redelivered.inc();
    }
    const done = o.plan.tiles.length - this.remaining.size;
    metrics.done.set(done);
    metrics.inFlight.dec();
    metrics.pairs.inc(tilePairs(tile));
    this.pairsDone += tilePairs(tile);
    metrics.pairsPerSecond.set(this.pairsDone / ((performance.now() - this.started) / 1000));
    o.onTile?.(done);
  }
}
