/**
 * The jobs a worker serves, and which one each lane pulls from next. Every
 * job has its own tile consumer (made by its coordinator); a worker finds
 * them by listing the tile stream's consumers, and its lanes take turns
 * between the jobs that have tiles waiting, so no job starves while another
 * has tiles. A job whose waiting tiles are all delivered may still get some
 * back (a lapsed lease, a nak): one lane probes it now and then.
 */
import type { Consumer, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import { jobOfTileConsumer, TILE_STREAM, type TileQueueConfig } from '../../shared/cluster/index.js';
import type { Logger } from '../../shared/observe.js';

/** One job's queue, as this worker last saw it. */
export interface JobQueue {
  readonly job: string;
  readonly consumer: Consumer;
  /** The job's ack wait and max deliver (its coordinator set them on its consumer). */
  readonly queue: TileQueueConfig;
  /** Tiles not yet delivered to any worker (the consumer's num_pending, or what the last delivery said). */
  pending: number;
  /** Tiles delivered and not yet acked: in flight somewhere, or due again. */
  ackPending: number;
  /** When a lane last found nothing to take here. */
  emptyAt: number;
}

export interface Taken {
  readonly job: JobQueue;
  readonly msg: JsMsg;
}

/** How long one pull waits for a tile (nats.js's least). */
const PULL_MS = 1000;
/** How much longer a pull may take before the lane gives it up: a server that stopped answering never ends it, and nats.js waits for the reconnect. */
const PULL_GRACE_MS = 2000;
/**
 * How often the consumer list is read while lanes are busy, and while they
 * are idle (a coordinator's notice that it published tiles makes idle lanes
 * look at once).
 */
const REFRESH_BUSY_MS = 2000;
const REFRESH_IDLE_MS = 1000;
/** A job with nothing waiting but tiles out is probed for a redelivery at most this often. */
const PROBE_MS = 3000;

export class TileQueues {
  private readonly jobs = new Map<string, JobQueue>();
  /** Round-robin order of the jobs, and where the next turn starts. */
  private order: string[] = [];
  private cursor = 0;
  private refreshedAt = 0;
  private refreshing: Promise<void> | null = null;
  private missingSaid = 0;
  /** The lanes waiting for work. */
  private readonly sleepers = new Set<() => void>();

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly log: Logger,
    /** Told the names of the jobs that have a queue, after each refresh. */
    private readonly onJobs: (jobs: ReadonlySet<string>) => void = () => undefined,
  ) {}

  /** The jobs with a queue now. */
  get names(): readonly string[] {
    return this.order;
  }

  /** A coordinator published tiles: read the queues again now. */
  notice(): void {
    this.refreshedAt = 0;
    for (const wake of [...this.sleepers]) wake();
  }

  /** A tile to compute, with its job; null after a short wait when no job has one for this lane. */
  async take(): Promise<Taken | null> {
    await this.refresh(this.waiting() ? REFRESH_BUSY_MS : REFRESH_IDLE_MS);
    const job = this.pick(performance.now());
    if (job === null) {
      await this.idle(REFRESH_IDLE_MS);
      return null;
    }
    // Counted as taken at once, so the next lane turns to another job rather than waiting on the same tile.
    job.pending = Math.max(0, job.pending - 1);
    let msg: JsMsg | null;
    try {
      msg = await pull(job.consumer);
    } catch (err) {
      // The job's consumer is gone (the job ended), or NATS is in trouble: the next refresh tells which.
      this.log.debug({ job: job.job, err: (err as Error).message }, 'pull failed');
      this.refreshedAt = 0;
      await this.idle(REFRESH_IDLE_MS);
      return null;
    }
    if (msg === null) {
      job.pending = 0;
      job.emptyAt = performance.now();
      return null;
    }
    // A redelivery suggests more are due (a worker died with several tiles, or they were handed back): the lanes
    // keep taking this job in turn until a pull comes back empty.
    job.pending = Math.max(msg.info.pending, msg.info.redelivered ? 1 : 0);
    return { job, msg };
  }

  /** Waits `ms`, or until a notice. */
  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  /** Whether some job has tiles waiting, as last seen. */
  private waiting(): boolean {
    for (const job of this.jobs.values()) if (job.pending > 0) return true;
    return false;
  }

  /**
   * The next job in turn with tiles waiting; else one whose tiles are all
   * out and that was not probed lately (it gets the lane's turn once).
   */
  private pick(now: number): JobQueue | null {
    const probe = (j: JobQueue) => j.ackPending > 0 && now - j.emptyAt >= PROBE_MS;
    for (const wanted of [(j: JobQueue) => j.pending > 0, probe]) {
      for (let k = 0; k < this.order.length; k++) {
        const at = (this.cursor + k) % this.order.length;
        const job = this.jobs.get(this.order[at]!)!;
        if (!wanted(job)) continue;
        this.cursor = (at + 1) % this.order.length;
        // One lane probes a job at a time.
        if (wanted === probe) job.emptyAt = now;
        return job;
      }
    }
    return null;
  }

  /** Reads the tile stream's consumers when the last read is older than `maxAgeMs` (one read at a time). */
  private refresh(maxAgeMs: number): Promise<void> {
    if (performance.now() - this.refreshedAt < maxAgeMs) return Promise.resolve();
    this.refreshing ??= this.list()
      .catch((err: unknown) => {
        if (Date.now() - this.missingSaid > 30_000) {
          this.missingSaid = Date.now();
          this.log.warn({ err: (err as Error).message }, 'cannot list the work queue (a coordinator creates it); waiting for it');
        }
      })
      .finally(() => {
        this.refreshedAt = performance.now();
        this.refreshing = null;
      });
    return this.refreshing;
  }

  private async list(): Promise<void> {
    const seen = new Set<string>();
    for await (const info of this.jsm.consumers.list(TILE_STREAM)) {
      const job = jobOfTileConsumer(info.name);
      if (job === null) continue;
      seen.add(job);
      const known = this.jobs.get(job);
      const fields = { pending: info.num_pending, ackPending: info.num_ack_pending };
      const queue = { ackWaitMs: (info.config.ack_wait ?? 30e9) / 1e6, maxDeliver: info.config.max_deliver ?? 5 };
      if (known !== undefined && known.queue.ackWaitMs === queue.ackWaitMs && known.queue.maxDeliver === queue.maxDeliver) {
        Object.assign(known, fields);
        continue;
      }
      this.jobs.set(job, { job, consumer: this.js.consumers.getConsumerFromInfo(info), queue, ...fields, emptyAt: known?.emptyAt ?? 0 });
    }
    for (const job of this.jobs.keys()) if (!seen.has(job)) this.jobs.delete(job);
    this.order = [...this.jobs.keys()];
    this.cursor = this.order.length === 0 ? 0 : this.cursor % this.order.length;
    this.onJobs(seen);
  }
}

/** One tile from `consumer`, or null when none came within the pull's expiry (plus its grace). */
async function pull(consumer: Consumer): Promise<JsMsg | null> {
  const messages = await consumer.fetch({ max_messages: 1, expires: PULL_MS });
  const timer = setTimeout(() => messages.stop(), PULL_MS + PULL_GRACE_MS);
  try {
    for await (const msg of messages) return msg;
    return null;
  } finally {
    clearTimeout(timer);
  }
}
