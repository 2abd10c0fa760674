/**
 * What a cluster job's spec says: its name, its block size, its inputs, and
 * how two specs of one job name differ. A job name is bound to its inputs
 * and options: a rerun with other ones is refused, naming the difference.
 */
import { createHash } from 'node:crypto';
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { resultPayloadBytes, type InputRef, type JobSpec } from '../../shared/cluster/index.js';
import { NULL_ROWS, type NullOptions } from '../../shared/core/index.js';
import type { JobPairInput, JobPlan } from '../../shared/job/index.js';
import { UsageError } from '../../shared/errors.js';
import { defaultBlockSize } from '../../shared/tiles/index.js';
import { uploadInput, type UploadLog } from '../../shared/nats/index.js';
import type { Logger } from '../../shared/observe.js';

/**
 * A cheap fingerprint of a set on a shared path: every file's relative path,
 * and what it resolves to (a symlink's target, followed), with its size,
 * modification time and inode. Retargeting a link or replacing a file
 * changes it. (Workers verify contents themselves: shard sha256s, and
 * object-store digests.)
 */
function fingerprint(path: string): string {
  const root = resolve(path);
  const files = statSync(root).isDirectory()
    ? readdirSync(root, { withFileTypes: true, recursive: true })
        .filter((e) => e.isFile() || e.isSymbolicLink())
        .map((e) => join(e.parentPath, e.name))
        .sort()
    : [root];
  const hash = createHash('sha256');
  for (const file of files) {
    let target = '';
    let st = { size: -1, mtimeMs: -1, ino: -1, dev: -1 };
    try {
      target = realpathSync(file);
      st = statSync(target);
    } catch {
      // A dangling link: fingerprinted as such (the readers refuse it).
    }
    hash.update(`${relative(root, file)}\0${target}\0${st.size}\0${st.mtimeMs}\0${st.dev}:${st.ino}\n`);
  }
  return hash.digest('hex');
}

/** The spec's reference to an input: its path and fingerprint, or (uploading) its objects in the NATS object store. */
export async function inputRef(path: string, upload: boolean, nc: NatsConnection, log: UploadLog): Promise<InputRef> {
  return upload ? uploadInput(nc, path, log) : { kind: 'path', path: resolve(path), fingerprint: fingerprint(path) };
}

const describeRef = (ref: InputRef | undefined): string =>
  ref === undefined ? 'none' : ref.kind === 'path' ? ref.path : `${ref.root} in the object store (set ${ref.set.slice(0, 12)})`;

/** A job's spec: everything a worker needs to plan it as `plan` was planned, and where its inputs are. */
export function jobSpec(o: {
  readonly job: string;
  readonly inputs: readonly InputRef[];
  readonly pairs: readonly JobPairInput[];
  readonly options: JobSpec['options'];
  readonly plan: JobPlan;
  readonly nulls: readonly NullOptions[];
  readonly partEntries: number;
}): JobSpec {
  const { plan } = o;
  const [m, n] = [plan.models[0]!.m, plan.models.map((model) => model.n)];
  const { job, inputs, pairs, options, nulls, partEntries } = o;
  return { version: 4, job, inputs, pairs, options, m, n, block: plan.block, span: plan.span, partEntries, tiles: plan.tiles.length, nulls };
}

/** What differs between a stored spec and this run's, in words (`labels` name the models); empty when they agree. */
export function specDifferences(was: JobSpec, now: JobSpec, labels: readonly string[]): string[] {
  const out: string[] = [];
  if (was.inputs.length !== now.inputs.length) out.push(`the job had ${was.inputs.length} models, this run has ${now.inputs.length}`);
  now.inputs.forEach((b, k) => {
    const a = was.inputs[k];
    if (a === undefined || JSON.stringify(a) === JSON.stringify(b)) return;
    const side = labels[k] ?? `model ${k}`;
    const samePlace = a.kind === 'path' && b.kind === 'path' && a.path === b.path;
    out.push(
      samePlace ? `${side}'s files at ${describeRef(b)} changed since the job was started` : `${side} was ${describeRef(a)}, this run's is ${describeRef(b)}`,
    );
  });
  const fields = ['pairs', 'options', 'nulls', 'block', 'span', 'partEntries', 'm', 'n', 'tiles'] as const;
  for (const field of fields) {
    if (JSON.stringify(was[field]) !== JSON.stringify(now[field]))
      out.push(`${field} was ${JSON.stringify(was[field])}, this run's is ${JSON.stringify(now[field])}`);
  }
  return out;
}

export function jobName(): string {
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

/** Float32 FLOP/s of the fastest worker the sizing plans for: one GPU (bench/RESULTS.md, "Cluster"). */
export const WORKER_FLOPS = 30e12;
/**
 * Result entries (neurons) per second the sizing lets into one coordinator:
 * about a third of what it merged, checkpoints included, on 2 shared cores
 * in `npm run bench:coordinator` (bench/RESULTS.md, "Simulated"). A fixed
 * figure, not this machine's: the span is part of the job's spec, so a
 * resumed job must size it identically (the warning measures instead).
 */
export const MERGE_RATE = 5e6;
/**
 * The share of a coordinator's CPU per result entry that the merge itself
 * (JobProgress.accept) takes: 30-31% at M = 10, 100 and 1000 in
 * `npm run bench:coordinator`; receiving, decoding, acking and checkpoints
 * are the rest.
 */
export const MERGE_SHARE = 0.3;
/** A job whose results one coordinator takes in within this many seconds is never called coordinator-bound. */
export const BOUND_SECONDS = 5;
/** Seconds a super-tile computes at least on a WORKER_FLOPS worker: its messages (tile, result, ack; about 1 ms) then cost about 0.1%. */
export const SUPER_TILE_SECONDS = 1;
/** Super-tiles per worker at least, so the last ones balance across workers and a killed worker loses little. */
export const SUPER_TILES_PER_WORKER = 8;

export interface SuperTileInput {
  readonly m: number;
  /** Neurons of each layer of F, and of G. */
  readonly f: readonly number[];
  readonly g: readonly number[];
  readonly block: number;
  /** Workers the job is sized for. */
  readonly workers: number;
  /** A side in neurons chosen by the user, or undefined for the rule below. */
  readonly superTile: number | undefined;
}

export interface SuperTileSize {
  /** Blocks per side of a main tile. */
  readonly span: number;
  /** Result entries per second into the coordinator when `workers` workers run at WORKER_FLOPS. */
  readonly inflow: number;
  /** Result entries of the job's main tiles, in all. */
  readonly entries: number;
  /** Seconds `workers` workers at WORKER_FLOPS compute the job's main tiles in. */
  readonly seconds: number;
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * The side of a super-tile, in blocks (docs/CLUSTER.md, "Super-tiles"). A super-tile
 * is `span` consecutive blocks of each model, across layers, so with B
 * blocks a model is cut into ceil(B / span) ranges, and the job's results
 * carry nF · (G's ranges) + nG · (F's ranges) entries in all. W workers at
 * R FLOP/s finish the job in 2·M·nF·nG / (W·R) s, so the coordinator's
 * inflow is the first over the second: the span is the smallest that keeps
 * it within MERGE_RATE, and that makes a super-tile compute for
 * SUPER_TILE_SECONDS at least (2·M·S² / R). It is at most
 * sqrt(nF·nG / (8·W)) neurons a side, so every worker gets 8 super-tiles or
 * more (balance, and the work a killed worker loses). Results of any size
 * travel in parts within max_payload, so it does not bound the side.
 */
export function superTileSize(o: SuperTileInput): SuperTileSize {
  const [nF, nG] = [sum(o.f), sum(o.g)];
  const seconds = (2 * o.m * nF * nG) / (o.workers * WORKER_FLOPS);
  const blocks = (layers: readonly number[]) => sum(layers.map((n) => Math.ceil(n / o.block)));
  const [bF, bG] = [blocks(o.f), blocks(o.g)];
  const entries = (span: number) => nF * Math.ceil(bG / span) + nG * Math.ceil(bF / span);
  const inflow = (span: number) => entries(span) / seconds;
  const size = (span: number) => ({ span, inflow: inflow(span), entries: entries(span), seconds });
  if (o.superTile !== undefined) return size(Math.max(1, Math.floor(o.superTile / o.block)));
  const most = Math.max(1, Math.floor(Math.sqrt((nF * nG) / (SUPER_TILES_PER_WORKER * o.workers)) / o.block));
  let span = Math.min(most, Math.ceil(Math.sqrt((SUPER_TILE_SECONDS * WORKER_FLOPS) / (2 * o.m)) / o.block));
  while (span < most && inflow(span) > MERGE_RATE) span++;
  return size(span);
}

/** superTileSize's span, logged with the inflow it expects. */
export function superTileSpan(o: SuperTileInput, log: Logger): number {
  const { span, inflow } = superTileSize(o);
  log.info({ block: o.block, span, superTile: span * o.block, workers: o.workers, inflow: Math.round(inflow) }, 'planned');
  return span;
}

export interface CoordinatorBound {
  /** Result entries per second the workers would send. */
  readonly inflow: number;
  /** Entries per second this coordinator takes in: its measured merge rate times MERGE_SHARE. */
  readonly sustained: number;
  /** Seconds the job's results take this coordinator, and the workers' compute. */
  readonly coordinatorSeconds: number;
  readonly workerSeconds: number;
}

/**
 * Whether the job would run at the coordinator's pace: its workers' planned
 * inflow beyond what this coordinator takes in, given `mergeRate` (entries
 * per second JobProgress.accept folds in, measured on this machine), on a
 * job whose results take the coordinator BOUND_SECONDS or more (a smaller
 * job is not slowed down in any way that matters). Null when not.
 */
export function coordinatorBound(size: SuperTileSize, mergeRate: number): CoordinatorBound | null {
  const sustained = mergeRate * MERGE_SHARE;
  const coordinatorSeconds = size.entries / sustained;
  if (size.inflow <= sustained || coordinatorSeconds < BOUND_SECONDS) return null;
  return { inflow: size.inflow, sustained, coordinatorSeconds, workerSeconds: size.seconds };
}

const entries = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(1)}M` : Math.round(x).toLocaleString('en-US'));
const duration = (s: number) => (s >= 120 ? `${(s / 60).toFixed(1)} min` : s >= 1 ? `${s.toFixed(1)} s` : `${(s * 1000).toPrecision(2)} ms`);

/** The warning for a coordinator-bound job, with what it assumed (workers, their speed) and what it measured. */
export function boundMessage(o: SuperTileInput, bound: CoordinatorBound, mergeRate: number): string {
  const why =
    o.superTile === undefined
      ? `super-tiles are as large as ${SUPER_TILES_PER_WORKER} per worker allows`
      : `super-tiles of ${o.superTile} neurons as asked; larger ones send fewer entries`;
  const workers = `${o.workers} worker${o.workers === 1 ? '' : 's'}`;
  return (
    `sized for ${workers} (cluster.workers, --workers) of ${WORKER_FLOPS / 1e12} TFLOP/s each (a GPU), this job's results would come in at ` +
    `${entries(bound.inflow)} entries/s, more than this coordinator takes in: about ${entries(bound.sustained)}/s (its merge alone measured ` +
    `${entries(mergeRate)}/s here, and takes about ${MERGE_SHARE * 100}% of a coordinator's work per entry). The job will run at the coordinator's pace, ` +
    `about ${duration(bound.coordinatorSeconds)} against the workers' ${duration(bound.workerSeconds)} (${why})`
  );
}

/** Warns when the job would run at the coordinator's pace (coordinatorBound), given this coordinator's measured merge rate. */
export function warnIfCoordinatorBound(o: SuperTileInput, mergeRate: number, log: Logger): boolean {
  const bound = coordinatorBound(superTileSize(o), mergeRate);
  log.debug({ mergeRate: Math.round(mergeRate), sustained: Math.round(mergeRate * MERGE_SHARE) }, 'merge rate measured');
  if (bound === null) return false;
  const { inflow, sustained, coordinatorSeconds, workerSeconds } = bound;
  const fields = { workers: o.workers, mergeRate: Math.round(mergeRate), inflow: Math.round(inflow), sustained: Math.round(sustained) };
  log.warn({ ...fields, coordinatorSeconds, workerSeconds }, boundMessage(o, bound, mergeRate));
  return true;
}
