/**
 * Shard sets: the scalable form of a standardized activation set
 * (docs/ARCHITECTURE.md, "Formats"). A directory with `manifest.json` and Arrow IPC files;
 * each record batch has a column `neuron` (uint32 or uint64, global index) and
 * a column `z` (FixedSizeList<float32>[m]), so the z child buffer is one
 * neuron-major Float32Array. A shard never straddles two layers.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { readExactly, requireRegularFile } from './input-file.js';
import type { ConvMode, LayerInfo } from '../core/index.js';
import type { Grid } from './channels.js';

export const MANIFEST = 'manifest.json';
export const SHARD_FORMAT = 'neurocorr-shards';
export const SHARD_VERSION = 1;

export interface ShardEntry {
  readonly file: string;
  /** Index into the manifest's layers. */
  readonly layer: number;
  /** Global index of the shard's first neuron. */
  readonly first: number;
  readonly count: number;
  readonly bytes: number;
  readonly sha256: string;
}

export interface Manifest {
  readonly format: typeof SHARD_FORMAT;
  readonly version: number;
  readonly model: string;
  /** Probes the set was standardized over. */
  readonly probes: number;
  /** Samples per neuron (probes, or probes x spatial positions with conv channels). */
  readonly samples: number;
  readonly fingerprint: string | null;
  readonly conv: ConvMode;
  /** The grid every layer's maps were pooled to (prepare's `spatial`); null (absent in older sets) when not pooled. */
  readonly spatial: Grid | null;
  /** Each layer's `layout` (absent in older sets) is its file's, or prepare's `layout` option's. */
  readonly layers: readonly Omit<LayerInfo, 'source'>[];
  readonly shards: readonly ShardEntry[];
}

export const isShardSet = (path: string): boolean => existsSync(join(path, MANIFEST)) && statSync(path).isDirectory();

function readInto(file: string, buffer: { bytes: Uint8Array }): Uint8Array {
  const fd = openSync(file, 'r');
  try {
    const stats = fstatSync(fd);
    requireRegularFile(file, stats);
    const size = stats.size;
    if (buffer.bytes.length < size) buffer.bytes = new Uint8Array(Math.max(size, buffer.bytes.length * 2));
    const view = buffer.bytes.subarray(0, size);
    readExactly(fd, view, 0, file);
    return view;
  } finally {
    closeSync(fd);
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const REGENERATE = 'regenerate the set with `neurocorr prepare`';

/**
 * Checks, before reading it, that a shard is a regular file of the size the
 * manifest gives: nothing is allocated for a shard that is not there.
 */
export function checkShardFile(dir: string, shard: ShardEntry): void {
  const file = join(dir, shard.file);
  let stats: Stats;
  try {
    stats = statSync(file);
  } catch (err) {
    const problem = `shard cannot be read (${err instanceof Error ? err.message : String(err)})`;
    throw new InputError('E_INPUT_MISSING', file, problem, `restore the shard or ${REGENERATE}`, { cause: err });
  }
  requireRegularFile(file, stats);
  if (stats.size !== shard.bytes) {
    const problem = `shard holds ${stats.size} bytes, the manifest says ${shard.bytes}`;
    throw new InputError('E_INPUT_TRUNCATED', file, problem, `the shard is damaged or truncated; ${REGENERATE}`);
  }
}

/**
 * The shard's bytes, checked against the manifest's size and sha256. With
 * `buffer`, they are read into it (grown when too small) rather than into
 * fresh memory; the result is then a view of it, valid until its next use.
 * `verify: false` skips the sha256 (for a shard already verified in this run).
 */
export function readShardBytes(dir: string, shard: ShardEntry, buffer?: { bytes: Uint8Array }, verify = true): Uint8Array {
  const file = join(dir, shard.file);
  checkShardFile(dir, shard);
  let bytes: Uint8Array;
  try {
    bytes = buffer === undefined ? readFileSync(file) : readInto(file, buffer);
  } catch (err) {
    if (err instanceof InputError) throw err;
    const problem = `shard cannot be read (${err instanceof Error ? err.message : String(err)})`;
    throw new InputError('E_INPUT_MISSING', file, problem, `restore the shard or ${REGENERATE}`, { cause: err });
  }
  if (bytes.length !== shard.bytes) {
    const problem = `shard holds ${bytes.length} bytes, the manifest says ${shard.bytes}`;
    throw new InputError('E_INPUT_TRUNCATED', file, problem, `the shard is damaged or truncated; ${REGENERATE}`);
  }
  const digest = verify ? sha256(bytes) : shard.sha256;
  if (digest !== shard.sha256) {
    throw new InputError('E_INPUT_VALUES', file, `sha256 ${digest} does not match the manifest's ${shard.sha256}`, `the shard is damaged; ${REGENERATE}`);
  }
  return bytes;
}
