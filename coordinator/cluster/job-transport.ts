/**
 * A cluster job's JetStream state, made and removed by its coordinator: the
 * streams, the job's tile consumer (with its ack wait and max deliver), its
 * results consumer, and its spec in the KV bucket. JetStream is a transport:
 * whatever of this went missing is made again from the coordinator's state.
 */
import { JetStreamApiCodes, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  coordinatorConsumer,
  encodeJobSpec,
  JOB_BUCKET,
  RESULT_STREAM,
  jobResults,
  TILE_STREAM,
  encodeTile,
  jobOfTileConsumer,
  tileConsumer,
  tilesNotice,
  tileSubject,
  type JobSpec,
  type TileQueueConfig,
} from '../../shared/cluster/index.js';
import { ensureResultConsumer, ensureStreams, ensureTileConsumer, isApiError } from '../../shared/nats/index.js';
import type { JobTile } from '../../shared/job/index.js';
import type { Logger } from '../../shared/observe.js';
import { retry } from '../../shared/retry.js';

export interface JobTransport {
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  readonly job: string;
  /** The job's spec, as JSON. */
  readonly spec: string;
  readonly queue: TileQueueConfig;
  readonly checkpointSeconds: number;
  /** Puts the job's sets in the object store again (uploading skips what is there); null without --upload. */
  readonly upload: (() => Promise<unknown>) | null;
  readonly log: Logger;
}

/** Makes what the job needs in JetStream; true when something was missing. */
export async function ensureJobTransport(t: JobTransport): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await createTransport(t);
    } catch (err) {
      // nats-server 2.9 can lose the files of a stream (or consumer) deleted and created again at the same moment;
      // every use of it then fails. Deleting the stream clears that: the coordinators re-create what they need, and
      // publish again the tiles that were not done.
      const broken = /no such file or directory/.test((err as Error).message) ? /\/streams\/([^/]+)\//.exec((err as Error).message)?.[1] : undefined;
      if (broken === undefined || attempt >= 3) throw err;
      t.log.warn({ stream: broken, err: (err as Error).message }, 'a JetStream stream is broken; deleting it and creating it again');
      await t.jsm.streams.delete(broken).catch(() => false);
    }
  }
}

async function createTransport({ nc, jsm, job, spec, queue, checkpointSeconds, upload }: JobTransport): Promise<boolean> {
  let missing = await ensureStreams(jsm);
  missing = (await ensureTileConsumer(jsm, job, queue)) || missing;
  // Results wait (unacked) for up to two checkpoint periods before JetStream hands them out again.
  missing = (await ensureResultConsumer(jsm, job, Math.max(30_000, 4 * checkpointSeconds * 1000))) || missing;
  const kv = await new Kvm(nc).create(JOB_BUCKET, { history: 1 });
  const entry = await kv.get(job);
  if (entry === null || entry.operation !== 'PUT' || entry.string() !== spec) {
    await kv.put(job, encodeJobSpec(JSON.parse(spec) as JobSpec));
    missing = missing || entry !== null;
  }
  // An object store that lost the job's sets gets them again.
  if (upload !== null && missing) await upload();
  return missing;
}

/**
 * Takes a job's tiles off the work queue: its consumer first (workers find
 * jobs by their consumers), then its messages. A purge filtered to one
 * job's subject leaves other jobs' consumers alone (nats-server moves the
 * sequence of every consumer whose filter covers the purged subject).
 */
export async function withdrawTiles(jsm: JetStreamManager, job: string, log?: Logger): Promise<void> {
  await jsm.consumers.delete(TILE_STREAM, tileConsumer(job)).catch(notFound);
  const subject = tileSubject(job);
  await jsm.streams.purge(TILE_STREAM, { filter: subject });
  // Under load nats-server 2.9 was seen to count a message of a purged subject that no purge removes: one that can
  // still be read is deleted by its sequence; one that cannot is only in the server's count, and nothing is left to run.
  for (let round = 0, left = await subjectCount(jsm, subject); left > 0 && round < 16; round++, left = await subjectCount(jsm, subject)) {
    const msg = await jsm.streams.getMessage(TILE_STREAM, { last_by_subj: subject });
    if (msg === null) {
      log?.warn({ counted: left }, 'nats-server counts tiles of the job that it cannot return (its accounting, not a tile); nothing is left to run');
      return;
    }
    await jsm.streams.deleteMessage(TILE_STREAM, msg.seq, false);
  }
}

/**
 * Tiles of jobs that have no tile consumer (finished or withdrawn jobs': the
 * purge above may miss one) are purged when a job starts, so the queue that
 * a scaler reads drains to zero. A job's coordinator makes its consumer
 * before it publishes, so a running job's tiles are never taken for these.
 */
export async function sweepLeftovers(jsm: JetStreamManager, log: Logger): Promise<void> {
  const all = tileSubject('>');
  const info = await jsm.streams.info(TILE_STREAM, { subjects_filter: all });
  const subjects = Object.entries(info.state.subjects ?? {}).filter(([, n]) => n > 0);
  if (subjects.length === 0) return;
  const jobs = new Set<string>();
  for await (const c of jsm.consumers.list(TILE_STREAM)) jobs.add(jobOfTileConsumer(c.name) ?? '');
  for (const [subject, tiles] of subjects) {
    const job = subject.slice(all.length - 1);
    if (jobs.has(job)) continue;
    await jsm.streams.purge(TILE_STREAM, { filter: subject });
    log.info({ job, tiles }, 'purged tiles left in the queue by a job that has ended');
  }
}

async function subjectCount(jsm: JetStreamManager, subject: string): Promise<number> {
  return (await jsm.streams.info(TILE_STREAM, { subjects_filter: subject })).state.subjects?.[subject] ?? 0;
}

/**
 * A finished job's JetStream state, all of it, each step retried through a
 * server that is paused or restarting (for up to `giveUpMs`): a purge lost
 * after the job's consumer was deleted would leave its last messages in the
 * stream for good, with no consumer to take them.
 */
export async function cleanUp(jsm: JetStreamManager, kv: KV, job: string, log: Logger, giveUpMs: number): Promise<void> {
  const step = (what: string, run: () => Promise<unknown>) => retry(what, log, run, giveUpMs).catch(() => undefined);
  await step('deleting the results consumer', () => jsm.consumers.delete(RESULT_STREAM, coordinatorConsumer(job)).catch(notFound));
  await step("withdrawing the job's tiles", () => withdrawTiles(jsm, job, log));
  await step("purging the job's results", () => jsm.streams.purge(RESULT_STREAM, { filter: jobResults(job) }));
  await step("deleting the job's spec", () => kv.delete(job));
}

/** A consumer that is already gone is what a delete wanted. */
function notFound(err: unknown): boolean {
  if (isApiError(err, JetStreamApiCodes.ConsumerNotFound)) return false;
  throw err;
}

/** What publishing a job's tiles takes. */
export interface TilePublisher {
  readonly js: JetStreamClient;
  readonly nc: NatsConnection;
  readonly log: Logger;
  readonly job: string;
  readonly spec: string;
}

/** Publishes one tile of the job again (never to be computed by `avoid`, when given), and tells idle workers. */
export function republishTile(o: TilePublisher, tile: JobTile, avoid = ''): Promise<void> {
  return retry('publishing a tile again', o.log, () => o.js.publish(tileSubject(o.job), encodeTile(o.job, o.spec, tile, avoid))).then(
    () => o.nc.publish(tilesNotice(o.job)),
    () => undefined,
  );
}
