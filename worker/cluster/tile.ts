/**
 * One tile message, from delivery to ack: open its job, check the tile
 * against this worker's plan, compute it, publish the result, then ack. A
 * failure is reported to the coordinator in words this worker wrote (never
 * a file's contents) and the tile is handed back, or ended on its last
 * allowed delivery.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { decodeTile, encodeFailure, encodeParts, encodeResult, resultSubject, type Provenance, type TileQueueConfig } from '../../shared/cluster/index.js';
import { InternalError, NeurocorrError } from '../../shared/errors.js';
import { sameTile, tilePairs } from '../../shared/job/index.js';
import type { Logger } from '../../shared/observe.js';
import { retry } from '../../shared/retry.js';
import type { WorkerJob } from './job.js';
import type { WorkerMetrics } from './metrics.js';

export interface TileContext {
  readonly js: JetStreamClient;
  readonly log: Logger;
  readonly m: WorkerMetrics;
  readonly open: (job: string, spec: string, beat: () => void) => Promise<WorkerJob | null>;
  readonly kernel: string;
  readonly id: string;
  readonly queue: () => TileQueueConfig;
  readonly fault: string | null;
  onDone?: (pairs: number) => void;
}

/** What the coordinator is told about a failure: neurocorr's own message (it names files, never their contents), else a pointer to this worker's log. */
function reportable(err: unknown, worker: string): string {
  return err instanceof NeurocorrError ? err.message : `internal error on worker ${worker} (see its log)`;
}

export async function handleTile(ctx: TileContext, msg: JsMsg): Promise<void> {
  const started = performance.now();
  const { job, spec, tile } = decodeTile(msg.data);
  const deliveries = msg.info.deliveryCount;
  const queue = ctx.queue();
  const beat = () => msg.working();
  const heartbeat = setInterval(beat, Math.max(200, queue.ackWaitMs / 3));
  ctx.m.inFlight.inc();
  if (deliveries > 1) ctx.m.redelivered.inc();
  const provenance = (): Provenance => ({ worker: ctx.id, kernel: ctx.kernel, deliveries, milliseconds: performance.now() - started });
  try {
    const opened = await ctx.open(job, spec, beat);
    if (opened === null) {
      // The job finished, was removed, or its name now belongs to another spec: its leftover tiles are dropped.
      ctx.log.info({ job, tile: tile.id }, 'dropping a tile of a job that is gone');
      msg.term();
      return;
    }
    const planned = opened.plan.tiles[tile.id];
    if (planned === undefined || !sameTile(planned, tile)) throw new InternalError(`tile ${tile.id} does not match this worker's plan of job ${job}`);
    const slow = /^slow:(\d+)$/.exec(ctx.fault ?? '');
    if (slow) await delay(Number(slow[1]));
    const outcome = await opened.runner.run(planned);
    const payloads =
      outcome.kind === 'part'
        ? encodeParts(job, tile.id, outcome.part, outcome.constant, opened.spec.partEntries, provenance())
        : [encodeResult(job, tile.id, outcome.result, outcome.constant ?? new Uint8Array(0), provenance())];
    const copies = ctx.fault === 'duplicate' ? 2 : 1;
    for (let k = 0; k < copies; k++) {
      for (const payload of payloads) await retry('publishing a result', ctx.log, () => ctx.js.publish(resultSubject(job), payload), queue.ackWaitMs * 4);
    }
    msg.ack();
    ctx.m.done.inc();
    ctx.m.pairs.inc(tilePairs(tile));
    ctx.onDone?.(tilePairs(tile));
  } catch (err) {
    ctx.m.failed.inc();
    // neurocorr's own errors say what is wrong in words; anything else is a bug, logged with its stack.
    ctx.log.error({ job, tile: tile.id, deliveries, err: err instanceof NeurocorrError ? err.message : err }, 'tile failed');
    await ctx.js.publish(resultSubject(job), encodeFailure(job, tile.id, reportable(err, ctx.id), provenance())).catch(() => undefined);
    // The last allowed delivery ends it here; the coordinator fails the job on this failure report.
    if (deliveries >= queue.maxDeliver) msg.term();
    else msg.nak(Math.min(5000, 250 * 2 ** deliveries));
  } finally {
    clearInterval(heartbeat);
    ctx.m.inFlight.dec();
  }
}
