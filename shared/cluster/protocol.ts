/**
 * The cluster protocol: stream, subject, consumer and bucket names, the job
 * spec, and the binary codecs of tile specs, tile results and tile failures.
 * Result arrays travel as raw little-endian buffers, never as JSON numbers.
 */
import { createHash } from 'node:crypto';
import { Reader, Writer } from '../binary.js';
import { InternalError, UsageError } from '../errors.js';
import type { NullOptions } from '../core/index.js';
import { slicePart, tileResultBytes, tileResultView, type Block, type Range, type SuperPart, type TileResult } from '../tiles/index.js';
import type { PairOptions } from '../formats/index.js';
import type { JobPairInput, JobTile } from '../job/index.js';

export const TILE_STREAM = 'NEUROCORR_TILES';
export const RESULT_STREAM = 'NEUROCORR_RESULTS';
/**
 * The durable consumer every worker once shared. Jobs now each have their own
 * (`tileConsumer`); a coordinator removes this one where an older version left it,
 * since a work-queue stream refuses consumers whose filters overlap.
 */
export const LEGACY_WORKER_CONSUMER = 'neurocorr-workers';
/** KV bucket holding each running job's spec, read by workers. */
export const JOB_BUCKET = 'neurocorr-jobs';
/** Object store bucket for `score --upload`. */
export const FILE_BUCKET = 'neurocorr-files';

const TILE_CONSUMER_PREFIX = 'tiles-';
export const tileSubject = (job: string): string => `neurocorr.tiles.${job}`;
/**
 * Where a worker publishes a job's results: a subject of its own, so that
 * NATS permissions can bind each worker's credential to its identity
 * (`neurocorr.results.*.<worker>`), and the coordinator knows who sent what.
 */
export const resultSubject = (job: string, worker: string): string => `neurocorr.results.${job}.${worker}`;
/** Every result of a job, whichever worker sent it. */
export const jobResults = (job: string): string => `neurocorr.results.${job}.>`;
/** The worker a result came from, as its subject says (null: not a result subject of this job). */
export function senderOf(subject: string, job: string): string | null {
  const prefix = `neurocorr.results.${job}.`;
  const worker = subject.startsWith(prefix) ? subject.slice(prefix.length) : '';
  return WORKER_ID.test(worker) ? worker : null;
}

const WORKER_ID = /^[A-Za-z0-9_-]{1,128}$/;
/** A worker's identity, a subject token: letters, digits, _ and - (a hostname's dots become -). */
export function workerId(name: string): string {
  const id = name.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 128);
  return id === '' ? 'worker' : id;
}
/** Checks a worker identity given by its operator. */
export function checkWorkerId(id: string): string {
  if (!WORKER_ID.test(id))
    throw new UsageError((o) => `${o('id')} ${JSON.stringify(id)} is not a valid worker identity: use 1-128 letters, digits, '_' or '-'`);
  return id;
}
export const coordinatorConsumer = (job: string): string => `coordinator-${job}`;
/** A core NATS notice that a job's tiles were just published: idle workers look at the queue at once. */
export const tilesNotice = (job: string): string => `neurocorr.jobs.${job}`;
export const TILES_NOTICES = 'neurocorr.jobs.>';
/** A core NATS notice from a worker's lane that it is making progress on one of the job's tiles (its coordinator's stall timer hears it). */
export const workingNotice = (job: string): string => `neurocorr.working.${job}`;
/**
 * Each job's durable pull consumer of its tiles, made by its coordinator with
 * the job's ack wait and max deliver. Workers find the jobs by listing these,
 * and share their lanes between them.
 */
export const tileConsumer = (job: string): string => `${TILE_CONSUMER_PREFIX}${job}`;
/** The job of a tile consumer's name, or null for any other consumer. */
export function jobOfTileConsumer(name: string): string | null {
  if (!name.startsWith(TILE_CONSUMER_PREFIX)) return null;
  const job = name.slice(TILE_CONSUMER_PREFIX.length);
  return JOB_NAME.test(job) ? job : null;
}
export const maxDeliveriesAdvisory = (job: string): string => `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${TILE_STREAM}.${tileConsumer(job)}`;

const JOB_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Job names become NATS subject tokens and Redis key parts: letters, digits, _ and - only. */
export function checkJobName(job: string, option = 'cluster.job'): string {
  if (!JOB_NAME.test(job)) throw new UsageError((o) => `${o(option)} ${JSON.stringify(job)} is not a valid job name: use 1-64 letters, digits, '_' or '-'`);
  return job;
}

/** Where a worker finds one model's activation set. */
export type InputRef =
  | {
      readonly kind: 'path';
      readonly path: string;
      /** The files' paths, sizes and times, hashed: a rerun of the job on changed files is refused. */
      readonly fingerprint: string;
    }
  | {
      readonly kind: 'object';
      readonly bucket: string;
      /** Objects are named `${set}/${file}`; `set` is the sha256 of the file list, sizes and digests. */
      readonly set: string;
      /** The set's name as given (a folder or a .safetensors file); workers rebuild it under their cache as `${set}/${root}`. */
      readonly root: string;
      /** Each object: its path under the set's root folder, size and sha256 (workers verify both). */
      readonly files: readonly { readonly path: string; readonly size: number; readonly sha256: string }[];
    };

/** Everything a worker needs to plan the job exactly as the coordinator did. */
export interface JobSpec {
  readonly version: 4;
  readonly job: string;
  /** Where each model's activation set is. */
  readonly inputs: readonly InputRef[];
  /** Model indices of each pair (rows of its main tiles come from f). */
  readonly pairs: readonly JobPairInput[];
  /** How the models are read (conv semantics, partial selections). */
  readonly options: Omit<PairOptions, 'loops'>;
  readonly m: number;
  /** Neurons of each model. */
  readonly n: readonly number[];
  readonly block: number;
  /** Blocks per side of a main tile: above 1, main tiles are super-tiles that workers split (JobPlanOptions.span). */
  readonly span: number;
  /** Entries per result message of a super-tile: a worker sends its result in parts of this many (the last may be shorter), each within max_payload. */
  readonly partEntries: number;
  /** Tiles in the plan, main and null. */
  readonly tiles: number;
  /** Each pair's permutation null, with its sample size resolved (permutations 0: none). */
  readonly nulls: readonly NullOptions[];
}

export function encodeJobSpec(spec: JobSpec): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(spec));
}

const VERSION = 4;
const KIND_TILE = 1;
const KIND_RESULT = 2;
const KIND_FAILURE = 3;
const KIND_PART = 4;
/** A tile message's code for a super-tile (main tiles are 0, null tiles 1 + 2k + side). */
const SUPER = 0xffffffff;

function header(kind: number, job: string, tile: number): Writer {
  return new Writer().u8(VERSION).u8(kind).str(job).u32(tile);
}

function readHeader(data: Uint8Array): { reader: Reader; kind: number; job: string; tile: number } {
  const reader = new Reader(data, 'protocol message');
  const version = reader.u8();
  if (version !== VERSION) throw new InternalError(`protocol version ${version} is not ${VERSION}: run the same neurocorr version on coordinator and workers`);
  const kind = reader.u8();
  return { reader, kind, job: reader.str(), tile: reader.u32() };
}

const writeBlock = (w: Writer, b: Block): Writer => w.u32(b.layer, b.start, b.count);
const readBlock = (r: Reader): Block => ({ layer: r.u32(), start: r.u32(), count: r.u32() });
const writeRange = (w: Writer, b: Range): Writer => w.u32(b.start, b.count);
const readRange = (r: Reader): Range => ({ start: r.u32(), count: r.u32() });

export interface TileMessage {
  readonly job: string;
  /** specId of the job spec the tile was planned from: a worker never runs it against another. */
  readonly spec: string;
  /** A worker that must not compute this copy of the tile (an audit asks another for a second opinion); '' for none. */
  readonly avoid: string;
  readonly tile: JobTile;
}

/** A short digest of a job spec's JSON, carried by every tile of the job. */
export function specId(specJson: string | Uint8Array): string {
  return createHash('sha256').update(specJson).digest('hex').slice(0, 32);
}

/** A tile names its job's spec, its pair, its kind (main, or null permutation k and side) and its two blocks. */
/** A tile message; `avoid` names a worker that must not compute it (an audit's second opinion), '' for none. */
export function encodeTile(job: string, spec: string, tile: JobTile, avoid = ''): Uint8Array {
  const w = header(KIND_TILE, job, tile.id).str(spec).str(avoid).u32(tile.pair);
  if (tile.kind === 'main') return writeBlock(writeBlock(w.u32(0), tile.f), tile.g).done();
  if (tile.kind === 'super') return writeRange(writeRange(w.u32(SUPER), tile.f), tile.g).done();
  return writeBlock(writeBlock(w.u32(tile.k * 2 + tile.side + 1), tile.sample), tile.other).done();
}

export function decodeTile(data: Uint8Array): TileMessage {
  const { reader, kind, job, tile: id } = readHeader(data);
  if (kind !== KIND_TILE) throw new InternalError(`expected a tile message, got kind ${kind}`);
  const spec = reader.str();
  const avoid = reader.str();
  const pair = reader.u32();
  const code = reader.u32();
  if (code === SUPER) {
    const [f, g] = [readRange(reader), readRange(reader)];
    reader.end();
    return { job, spec, avoid, tile: { kind: 'super', id, pair, f, g } };
  }
  const a = readBlock(reader);
  const b = readBlock(reader);
  reader.end();
  if (code === 0) return { job, spec, avoid, tile: { kind: 'main', id, pair, f: a, g: b } };
  return { job, spec, avoid, tile: { kind: 'null', id, pair, k: (code - 1) >> 1, side: ((code - 1) & 1) as 0 | 1, sample: a, other: b } };
}

/** Who computed a tile, and how. */
export interface Provenance {
  readonly worker: string;
  readonly kernel: string;
  /** JetStream delivery count of the tile message (1 = first try). */
  readonly deliveries: number;
  readonly milliseconds: number;
}

export interface ResultMessage extends Provenance {
  readonly kind: 'result';
  readonly job: string;
  readonly tile: number;
  readonly result: TileResult;
  /** A main tile's constant flags (1 = constant) of its row neurons, then its column neurons; empty for a null tile. */
  readonly constant: Uint8Array;
}

/** One part of a super-tile's folded result. */
export interface PartMessage extends Provenance {
  readonly kind: 'part';
  readonly job: string;
  readonly tile: number;
  readonly part: SuperPart;
  /** The constant flags of the part's entries. */
  readonly constant: Uint8Array;
}

export interface FailureMessage extends Provenance {
  readonly kind: 'failure';
  readonly job: string;
  readonly tile: number;
  readonly error: string;
}

function provenance(w: Writer, p: Provenance): Writer {
  return w.str(p.worker).str(p.kernel).u32(p.deliveries).f64(p.milliseconds);
}

export function encodeResult(job: string, tile: number, result: TileResult, constant: Uint8Array, p: Provenance): Uint8Array {
  const rows = result.rowBest.length;
  const cols = result.colBest.length;
  if (constant.length !== 0 && constant.length !== rows + cols) {
    throw new InternalError(`tile ${tile}: ${constant.length} constant flags for a result of ${rows}x${cols}`);
  }
  const w = provenance(header(KIND_RESULT, job, tile), p).u32(rows, cols, constant.length);
  return w.array(result.rowBest).array(result.colBest).array(result.rowArg).array(result.colArg).bytes(constant).done();
}

/** Bytes an entry of a super-tile's result takes in a part message: best, |rho| of the penalized best, both partners, a constant flag. */
export const PART_ENTRY_BYTES = 8 + 8 + 4 + 4 + 1;

/** Entries per part so that a part message fits `maxPayload` (with room for its header). */
export function partEntriesFor(maxPayload: number): number {
  return Math.max(1, Math.floor((maxPayload - 4096) / PART_ENTRY_BYTES));
}

/**
 * A super-tile's folded result as messages of at most `partEntries` entries
 * each (entry ranges [k·partEntries, ...)), so any super-tile fits any
 * max_payload; `constant` holds the flags of all its entries.
 */
export function encodeParts(job: string, tile: number, result: SuperPart, constant: Uint8Array, partEntries: number, p: Provenance): Uint8Array[] {
  const total = result.best.length;
  if (constant.length !== total) throw new InternalError(`super-tile ${tile}: ${constant.length} constant flags for ${total} entries`);
  const out: Uint8Array[] = [];
  for (let at = 0; at < total; at += partEntries) {
    const part = slicePart(result, at, Math.min(partEntries, total - at));
    const w = provenance(header(KIND_PART, job, tile), p).u32(at, part.best.length);
    out.push(
      w
        .array(part.best)
        .array(part.penRho)
        .array(part.arg)
        .array(part.penArg)
        .bytes(constant.subarray(at, at + part.best.length))
        .done(),
    );
  }
  return out;
}

export function encodeFailure(job: string, tile: number, error: string, p: Provenance): Uint8Array {
  return provenance(header(KIND_FAILURE, job, tile), p)
    .str(error)
    .done();
}

export function decodeResult(data: Uint8Array): ResultMessage | PartMessage | FailureMessage {
  const { reader, kind, job, tile } = readHeader(data);
  if (kind !== KIND_RESULT && kind !== KIND_FAILURE && kind !== KIND_PART) throw new InternalError(`expected a result message, got kind ${kind}`);
  const p: Provenance = { worker: reader.str(), kernel: reader.str(), deliveries: reader.u32(), milliseconds: reader.f64() };
  if (kind === KIND_FAILURE) {
    const error = reader.str();
    reader.end();
    return { kind: 'failure', job, tile, error, ...p };
  }
  if (kind === KIND_PART) {
    const [offset, count] = [reader.u32(), reader.u32()];
    const buffer = reader.bytes(count * (PART_ENTRY_BYTES - 1)).buffer as ArrayBuffer;
    const part: SuperPart = {
      offset,
      best: new Float64Array(buffer, 0, count),
      penRho: new Float64Array(buffer, 8 * count, count),
      arg: new Uint32Array(buffer, 16 * count, count),
      penArg: new Uint32Array(buffer, 20 * count, count),
    };
    const constant = reader.bytes(count);
    reader.end();
    return { kind: 'part', job, tile, part, constant, ...p };
  }
  const [rows, cols, flags] = [reader.u32(), reader.u32(), reader.u32()];
  const result = tileResultView(reader.bytes(tileResultBytes(rows, cols)).buffer as ArrayBuffer, rows, cols);
  const constant = reader.bytes(flags);
  reader.end();
  return { kind: 'result', job, tile, result, constant, ...p };
}

/** Bytes on the wire for a result of rows x cols with constant flags, job name and provenance aside. */
export function resultPayloadBytes(rows: number, cols: number): number {
  return tileResultBytes(rows, cols) + rows + cols;
}

export interface TileQueueConfig {
  /** How long a worker may hold a tile without an ack or an in-progress ack. */
  readonly ackWaitMs: number;
  /** Deliveries of one tile before JetStream gives up on it (and the job fails). */
  readonly maxDeliver: number;
}

export const DEFAULT_TILE_QUEUE: TileQueueConfig = { ackWaitMs: 30_000, maxDeliver: 5 };
