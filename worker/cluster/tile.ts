/**
 * One tile message, from delivery to ack: open its job, check the tile
 * against this worker's plan, compute it, publish the result, then ack. The
 * tile's lease is extended only while the lane makes progress (LaneWatch).
 * A failure is reported to the coordinator in words this worker wrote
 * (never a file's contents) and the tile is handed back, or ended on its
 * last allowed delivery.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { decodeTile, encodeFailure, encodeParts, encodeResult, resultSubject, workingNotice, type Provenance } from '../../shared/cluster/index.js';
import { InternalError, NeurocorrError, type OptionNamer } from '../../shared/errors.js';
import { sameTile, tilePairs } from '../../shared/job/index.js';
import type { Logger } from '../../shared/observe.js';
import { retry } from '../../shared/retry.js';
import { hold, lie } from './faults.js';
import type { CachedJob, JobCache } from './job-cache.js';
import { LaneWatch, type TileRate } from './lane-watch.js';
import type { WorkerMetrics } from './metrics.js';
import type { Taken } from './queues.js';

export interface TileContext {
  readonly nc: NatsConnection;
  /** Aborted when the worker stops: a publish still retrying then gives up (its tile is delivered again). */
  readonly stopped: AbortSignal;
  readonly js: JetStreamClient;
  readonly log: Logger;
  readonly m: WorkerMetrics;
  readonly cache: JobCache;
  readonly rate: TileRate;
  /** The least a lane may go without progress before it gives its tile up (ms). */
  readonly tileTimeoutMs: number;
  readonly kernel: string;
  readonly id: string;
  /** How option names read in messages sent to coordinators (the CLI's flags, or the library's names). */
  readonly optionName: OptionNamer;
  readonly fault: string | null;
  /** A lane gave its tile up (true), or its step returned after all (false). */
  readonly onWedged: (wedged: boolean) => void;
  readonly onDone: (pairs: number) => void;
}

/** What the coordinator is told about a failure: neurocorr's own message (it names files, never their contents), else a pointer to this worker's log. */
function reportable(err: unknown, ctx: TileContext): string {
  return err instanceof NeurocorrError ? err.describe(ctx.optionName) : `internal error on worker ${ctx.id} (see its log)`;
}

export async function handleTile(ctx: TileContext, { job: queue, msg }: Taken): Promise<void> {
  const started = performance.now();
  const { job, spec, tile, avoid } = decodeTile(msg.data);
  if (job !== queue.job) throw new InternalError(`a tile of job ${job} came from job ${queue.job}'s queue`);
  if (avoid === ctx.id) {
    // An audit's copy of a tile this worker computed: another worker is to compute it.
    msg.nak(1000);
    return;
  }
  const deliveries = msg.info.deliveryCount;
  const { ackWaitMs, maxDeliver } = queue.queue;
  const watch = new LaneWatch(ctx.tileTimeoutMs);
  let gaveUp = false;
  const heartbeat = setInterval(
    () => {
      if (watch.alive) {
        msg.working();
        // A tile that computes for longer than the job's stall timeout is progress too.
        ctx.nc.publish(workingNotice(job));
        return;
      }
      if (gaveUp) return;
      gaveUp = true;
      ctx.onWedged(true);
      ctx.m.wedged.inc();
      ctx.log.warn(
        { job, tile: tile.id, ...watch.state },
        "this lane made no progress on its tile within the bound; it stops extending the tile's lease, so JetStream gives the tile to another worker",
      );
    },
    Math.max(200, ackWaitMs / 3),
  );
  // A wedged lane's heartbeat must not keep a drained worker's process alive.
  heartbeat.unref();
  ctx.m.inFlight.inc();
  if (deliveries > 1) ctx.m.redelivered.inc();
  const provenance = (): Provenance => ({ worker: ctx.id, kernel: ctx.kernel, deliveries, milliseconds: performance.now() - started });
  let held: CachedJob | null = null;
  try {
    held = await ctx.cache.acquire(job, spec, () => {
      watch.progress();
      msg.working();
    });
    if (held === null) {
      // The job finished, was removed, or its name now belongs to another spec: its leftover tiles are dropped.
      ctx.log.info({ job, tile: tile.id }, 'dropping a tile of a job that is gone');
      msg.term();
      return;
    }
    const opened = held.job;
    const planned = opened.plan.tiles[tile.id];
    if (planned === undefined || !sameTile(planned, tile)) throw new InternalError(`tile ${tile.id} does not match this worker's plan of job ${job}`);
    const units = tilePairs(planned) * opened.spec.m;
    watch.progress(ctx.rate.expectedMs(units));
    const computing = performance.now();
    await hold(ctx.fault);
    const computed = await opened.runner.run(planned);
    const outcome = planned.kind === 'main' ? lie(ctx.fault, opened, planned, computed) : computed;
    ctx.rate.record(units, (performance.now() - computing) / 1000);
    const payloads =
      outcome.kind === 'part'
        ? encodeParts(job, tile.id, outcome.part, outcome.constant, opened.spec.partEntries, provenance())
        : [encodeResult(job, tile.id, outcome.result, outcome.constant ?? new Uint8Array(0), provenance())];
    const copies = ctx.fault === 'duplicate' ? 2 : 1;
    for (let k = 0; k < copies; k++) {
      for (const payload of payloads) {
        watch.progress();
        await retry('publishing a result', ctx.log, () => ctx.js.publish(resultSubject(job, ctx.id), payload), ackWaitMs * 4, ctx.stopped);
      }
    }
    msg.ack();
    ctx.m.done.inc();
    ctx.m.pairs.inc(tilePairs(tile));
    ctx.onDone(tilePairs(tile));
  } catch (err) {
    ctx.m.failed.inc();
    // neurocorr's own errors say what is wrong in words; anything else is a bug, logged with its stack.
    ctx.log.error({ job, tile: tile.id, deliveries, err: err instanceof NeurocorrError ? err.describe(ctx.optionName) : err }, 'tile failed');
    await ctx.js.publish(resultSubject(job, ctx.id), encodeFailure(job, tile.id, reportable(err, ctx), provenance())).catch(() => undefined);
    // Handed back, even on its last allowed delivery: JetStream then stops delivering it and says so in an
    // advisory, which is what fails the job (the coordinator never takes a worker's word for the count).
    msg.nak(deliveries >= maxDeliver ? 0 : Math.min(5000, 250 * 2 ** deliveries));
  } finally {
    held?.release();
    clearInterval(heartbeat);
    if (gaveUp) ctx.onWedged(false);
    ctx.m.inFlight.dec();
  }
}
