/**
 * The cluster protocol: stream, subject, consumer and bucket names, the job
 * spec, and the binary codecs of tile specs, tile results and tile failures.
 * Result arrays travel as raw little-endian buffers, never as JSON numbers.
 */
import { Reader, Writer } from './binary.js';
import { InternalError, UsageError } from '../errors.js';
import type { NullOptions } from '../core/index.js';
import type { PairOptions } from '../formats/index.js';
import { tileResultBytes, tileResultView, type Block, type Tile, type TileResult } from '../core/index.js';

export const TILE_STREAM = 'NEUROCORR_TILES';
export const RESULT_STREAM = 'NEUROCORR_RESULTS';
/** The one durable pull consumer every worker shares (work-queue semantics). */
export const WORKER_CONSUMER = 'neurocorr-workers';
/** KV bucket holding each running job's spec, read by workers. */
export const JOB_BUCKET = 'neurocorr-jobs';
/** Object store bucket for `score --upload`. */
export const FILE_BUCKET = 'neurocorr-files';

export const tileSubject = (job: string): string => `neurocorr.tiles.${job}`;
export const resultSubject = (job: string): string => `neurocorr.results.${job}`;
export const coordinatorConsumer = (job: string): string => `coordinator-${job}`;
export const maxDeliveriesAdvisory = (): string => `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${TILE_STREAM}.${WORKER_CONSUMER}`;

const JOB_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Job names become NATS subject tokens and Redis key parts: letters, digits, _ and - only. */
export function checkJobName(job: string): string {
  if (!JOB_NAME.test(job)) throw new UsageError(`--job ${JSON.stringify(job)} is not a valid job name: use 1-64 letters, digits, '_' or '-'`);
  return job;
}

/** Where a worker finds one model's activation set. */
export type InputRef =
  | { readonly kind: 'path'; readonly path: string }
  | {
      readonly kind: 'object';
      readonly bucket: string;
      /** Objects are named `${set}/${file}`; `set` is the sha256 of the file list, sizes and digests. */
      readonly set: string;
      /** The set's name as given (a folder or a .safetensors file); workers rebuild it under their cache as `${set}/${root}`. */
      readonly root: string;
      readonly files: readonly { readonly path: string; readonly size: number }[];
    };

/** Everything a worker needs to reproduce the coordinator's plan, exactly. */
export interface JobSpec {
  readonly version: 1;
  readonly job: string;
  readonly f: InputRef;
  readonly g: InputRef;
  readonly pair: Omit<PairOptions, 'loops'>;
  readonly m: number;
  readonly n: readonly [number, number];
  readonly block: number;
  /** Main tiles; the null's follow them, with ids from `tiles` on. */
  readonly tiles: number;
  /** The permutation null, with its sample size resolved (permutations 0: none). */
  readonly null: NullOptions;
}

export function encodeJobSpec(spec: JobSpec): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(spec));
}

export function decodeJobSpec(bytes: Uint8Array): JobSpec {
  const spec = JSON.parse(new TextDecoder().decode(bytes)) as JobSpec;
  if (spec.version !== 1) throw new InternalError(`job spec version ${String(spec.version)} is not supported by this worker; upgrade it`);
  return spec;
}

const VERSION = 1;
const KIND_TILE = 1;
const KIND_RESULT = 2;
const KIND_FAILURE = 3;

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

/** Which permutation-null work a tile is: permutation k, and the side whose sample forms its rows. */
export interface NullPart {
  readonly k: number;
  readonly side: 0 | 1;
}

export interface TileMessage {
  readonly job: string;
  /** For a null tile, f is a block of the side's sample and g a block of the other model. */
  readonly tile: Tile;
  readonly null: NullPart | null;
}

export function encodeTile(job: string, tile: Tile, part: NullPart | null = null): Uint8Array {
  return writeBlock(writeBlock(header(KIND_TILE, job, tile.id), tile.f), tile.g)
    .u32(part === null ? 0 : part.k * 2 + part.side + 1)
    .done();
}

export function decodeTile(data: Uint8Array): TileMessage {
  const { reader, kind, job, tile } = readHeader(data);
  if (kind !== KIND_TILE) throw new InternalError(`expected a tile message, got kind ${kind}`);
  const f = readBlock(reader);
  const g = readBlock(reader);
  const code = reader.u32();
  reader.end();
  return { job, tile: { id: tile, f, g }, null: code === 0 ? null : { k: (code - 1) >> 1, side: ((code - 1) & 1) as 0 | 1 } };
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
  readonly tile: Tile;
  readonly result: TileResult;
  /** Constant flags (1 = constant) of the tile's F neurons, then its G neurons. */
  readonly constant: Uint8Array;
}

export interface FailureMessage extends Provenance {
  readonly kind: 'failure';
  readonly job: string;
  readonly tile: Tile;
  readonly error: string;
}

function provenance(w: Writer, p: Provenance): Writer {
  return w.str(p.worker).str(p.kernel).u32(p.deliveries).f64(p.milliseconds);
}

export function encodeResult(job: string, tile: Tile, result: TileResult, constant: Uint8Array, p: Provenance): Uint8Array {
  const nf = tile.f.count;
  const ng = tile.g.count;
  if (result.rowBest.length !== nf || result.colBest.length !== ng || constant.length !== nf + ng) {
    throw new InternalError(`tile ${tile.id}: result of ${result.rowBest.length}x${result.colBest.length} does not fit ${nf}x${ng}`);
  }
  const w = provenance(writeBlock(writeBlock(header(KIND_RESULT, job, tile.id), tile.f), tile.g), p);
  return w.array(result.rowBest).array(result.colBest).array(result.rowArg).array(result.colArg).bytes(constant).done();
}

export function encodeFailure(job: string, tile: Tile, error: string, p: Provenance): Uint8Array {
  return provenance(writeBlock(writeBlock(header(KIND_FAILURE, job, tile.id), tile.f), tile.g), p)
    .str(error)
    .done();
}

export function decodeResult(data: Uint8Array): ResultMessage | FailureMessage {
  const { reader, kind, job, tile: id } = readHeader(data);
  if (kind !== KIND_RESULT && kind !== KIND_FAILURE) throw new InternalError(`expected a result message, got kind ${kind}`);
  const tile: Tile = { id, f: readBlock(reader), g: readBlock(reader) };
  const p: Provenance = { worker: reader.str(), kernel: reader.str(), deliveries: reader.u32(), milliseconds: reader.f64() };
  if (kind === KIND_FAILURE) {
    const error = reader.str();
    reader.end();
    return { kind: 'failure', job, tile, error, ...p };
  }
  const nf = tile.f.count;
  const ng = tile.g.count;
  const result = tileResultView(reader.bytes(tileResultBytes(nf, ng)).buffer as ArrayBuffer, nf, ng);
  const constant = reader.bytes(nf + ng);
  reader.end();
  return { kind: 'result', job, tile, result, constant, ...p };
}

/** Bytes on the wire for a result of nf x ng, job name and provenance aside. */
export function resultPayloadBytes(nf: number, ng: number): number {
  return tileResultBytes(nf, ng) + nf + ng;
}
