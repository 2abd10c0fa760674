/**
 * How a cluster job ends without its report: a tile that failed on every
 * delivery (exit 4), or no progress for the stall timeout (exit 5; the
 * message says where its tiles are: queued, held by workers, pulls waiting).
 * Either way its state stays in Redis for a rerun.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { decodeTile, maxDeliveriesAdvisory, TILE_STREAM, tileConsumer, tileSubject, workingNotice } from '../../shared/cluster/index.js';
import { JobFailedError, JobStalledError } from '../../shared/errors.js';
import { describeTile, type JobPlan, type JobTile } from '../../shared/job/index.js';

/**
 * Calls `failed` with each tile of the job that JetStream stopped delivering
 * (its max deliveries reached): the server's own count, never a worker's claim.
 */
export function watchMaxDeliveries(nc: NatsConnection, jsm: JetStreamManager, job: string, failed: (tile: number) => void): { unsubscribe(): void } {
  return nc.subscribe(maxDeliveriesAdvisory(job), {
    callback: (err, msg) => {
      if (err) return;
      const { stream_seq: seq } = msg.json<{ stream_seq: number }>();
      jsm.streams
        .getMessage(TILE_STREAM, { seq })
        .then((stored) => {
          if (stored === null) return;
          const tile = decodeTile(stored.data);
          if (tile.job === job) failed(tile.tile.id);
        })
        .catch(() => undefined);
    },
  });
}

export function tileFailed(plan: JobPlan, job: string, tile: JobTile, deliveries: number, why: string): JobFailedError {
  return new JobFailedError(
    'E_TILE_FAILED',
    (name) =>
      `${describeTile(plan, tile)} of job ${job} failed ${deliveries} times (max_deliver): ${why}. Fix: fix what that message names (an input, or a worker's settings), then run the job again with the same ${name('cluster.job')} to resume`,
  );
}

/** Counts from JetStream; null where it could not be read. */
export interface TileWhereabouts {
  readonly queued: number | null;
  readonly held: number | null;
  readonly pulling: number | null;
}

export async function tileWhereabouts(jsm: JetStreamManager, job: string): Promise<TileWhereabouts> {
  const [stream, consumer] = await Promise.all([
    jsm.streams.info(TILE_STREAM, { subjects_filter: tileSubject(job) }).catch(() => null),
    jsm.consumers.info(TILE_STREAM, tileConsumer(job)).catch(() => null),
  ]);
  return {
    queued: stream === null ? null : (stream.state.subjects?.[tileSubject(job)] ?? 0),
    held: consumer?.num_ack_pending ?? null,
    pulling: consumer?.num_waiting ?? null,
  };
}

export interface Stall {
  readonly job: string;
  readonly limitMs: number;
  readonly done: number;
  readonly tiles: number;
  readonly where: TileWhereabouts;
  /** Workers that returned results in this run. */
  readonly workers: readonly string[];
}

export function stallError({ job, limitMs, done, tiles, where, workers }: Stall): JobStalledError {
  const n = (value: number | null) => (value === null ? 'unknown' : String(value));
  return new JobStalledError(
    (name) =>
      `job ${job} made no progress for ${Math.round(limitMs / 1000)} s (${name('cluster.stallTimeout')}: no tile finished, and no worker said it was working on one): ${done} of ${tiles} tiles done, ` +
      `${n(where.queued)} queued, ${n(where.held)} held by workers, ${n(where.pulling)} worker pulls waiting; workers seen in this run: ${workers.length === 0 ? 'none' : [...workers].sort().join(', ')}. ` +
      `Its state is kept: start workers (neurocorr worker --nats URL) or find what holds its tiles, then run it again with the same ${name('cluster.job')} to resume`,
  );
}

/**
 * Watches a job's progress: a tile or part merged (`progress()`), or a
 * worker's notice that one of its lanes is making progress on a tile of the
 * job (loading its models, computing a long super-tile). After `limitMs`
 * without either, `stalled` is called (again each second while it lasts).
 */
export class StallWatch {
  private last = performance.now();

  constructor(private readonly limitMs: number | null) {}

  progress(): void {
    this.last = performance.now();
  }

  /** Whether the job has gone `limitMs` without progress. */
  get overdue(): boolean {
    return this.limitMs !== null && performance.now() - this.last >= this.limitMs;
  }

  /** Starts watching; returns the function that stops it. */
  watch(nc: NatsConnection, job: string, stalled: () => Promise<void>): () => void {
    const notices = nc.subscribe(workingNotice(job), { callback: () => this.progress() });
    let judging = false;
    const timer =
      this.limitMs === null
        ? undefined
        : setInterval(
            () => {
              if (judging || !this.overdue) return;
              judging = true;
              void stalled().finally(() => (judging = false));
            },
            Math.min(1000, this.limitMs / 4),
          );
    return () => {
      clearInterval(timer);
      notices.unsubscribe();
    };
  }
}
