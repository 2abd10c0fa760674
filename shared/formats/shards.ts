/**
 * Shard sets: the scalable form of a standardized activation set
 * (docs/ARCHITECTURE.md, "Formats"). A directory with `manifest.json` and Arrow IPC files;
 * each record batch has a column `neuron` (uint32 or uint64, global index) and
 * a column `z` (FixedSizeList<float32>[m]), so the z child buffer is one
 * neuron-major Float32Array. A shard never straddles two layers.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { MAX_JSON_BYTES, readExactly, readSmallFile, regularFileSize, requireRegularFile } from './input-file.js';
import type { ConvMode, LayerInfo } from '../core/index.js';

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

const MANIFEST_FIX = 'regenerate the shard set with `neurocorr prepare`, or fix manifest.json to the documented schema';

/** Reads and checks manifest.json: every field typed, layers and shards consistent with each other. */
export function readManifest(dir: string): Manifest {
  const file = join(dir, MANIFEST);
  const fail = (problem: string) => new InputError('E_INPUT_FORMAT', file, problem, MANIFEST_FIX);
  const bytes = readSmallFile(file, MAX_JSON_BYTES, 'E_INPUT_FORMAT', MANIFEST_FIX);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw fail(`not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const m = json as Partial<Manifest> | null;
  if (m === null || typeof m !== 'object' || m.format !== SHARD_FORMAT) throw fail(`"format" must be "${SHARD_FORMAT}"`);
  if (m.version !== SHARD_VERSION) throw fail(`unsupported version ${String(m.version)}; this neurocorr reads version ${SHARD_VERSION}`);
  const isCount = (v: unknown, min = 0): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
  if (!isCount(m.probes, 2) || !isCount(m.samples, 2)) throw fail('"probes" and "samples" must be integers >= 2');
  if (m.conv !== 'units' && m.conv !== 'channels') throw fail('"conv" must be "units" or "channels"');
  if (typeof m.model !== 'string') throw fail('"model" must be a string');
  if (m.fingerprint !== null && typeof m.fingerprint !== 'string') throw fail('"fingerprint" must be a string or null');
  if (!Array.isArray(m.layers) || m.layers.length === 0) throw fail('"layers" must be a non-empty array');
  if (!Array.isArray(m.shards)) throw fail('"shards" must be an array');
  let next = 0;
  m.layers.forEach((l, i) => {
    if (typeof l.name !== 'string' || !isCount(l.depth) || !isCount(l.start) || !isCount(l.count, 1) || !isCount(l.constant) || !Array.isArray(l.shape)) {
      throw fail(`layers[${i}] needs name, depth, shape, start, count >= 1 and constant`);
    }
    if (l.start !== next) throw fail(`layers[${i}] starts at neuron ${l.start}, expected ${next} (layers are contiguous, in order)`);
    next += l.count;
  });
  const covered = new Array<number>(m.layers.length).fill(0);
  m.shards.forEach((s, i) => {
    if (
      typeof s.file !== 'string' ||
      !/^[\w.-]+\.arrow$/.test(s.file) ||
      !isCount(s.layer) ||
      !isCount(s.first) ||
      !isCount(s.count, 1) ||
      !isCount(s.bytes) ||
      typeof s.sha256 !== 'string'
    ) {
      throw fail(`shards[${i}] needs file (*.arrow, no directories), layer, first, count >= 1, bytes and sha256`);
    }
    const layer = m.layers![s.layer];
    if (layer === undefined || s.first < layer.start || s.first + s.count > layer.start + layer.count) {
      throw fail(`shards[${i}] (${s.file}) does not lie inside layer ${s.layer}: a shard never straddles two layers`);
    }
    covered[s.layer]! += s.count;
  });
  covered.forEach((c, i) => {
    if (c !== m.layers![i]!.count) throw fail(`the shards of layer ${i} ("${m.layers![i]!.name}") hold ${c} neurons, the layer has ${m.layers![i]!.count}`);
  });
  return m as Manifest;
}

/**
 * The shard's bytes, checked against the manifest's size and sha256. With
 * `buffer`, they are read into it (grown when too small) rather than into
 * fresh memory; the result is then a view of it, valid until its next use.
 * `verify: false` skips the sha256 (for a shard already verified in this run).
 */
export function readShardBytes(dir: string, shard: ShardEntry, buffer?: { bytes: Uint8Array }, verify = true): Uint8Array {
  const file = join(dir, shard.file);
  let bytes: Uint8Array;
  try {
    regularFileSize(file);
    bytes = buffer === undefined ? readFileSync(file) : readInto(file, buffer);
  } catch (err) {
    if (err instanceof InputError) throw err;
    throw new InputError(
      'E_INPUT_MISSING',
      file,
      `shard cannot be read (${err instanceof Error ? err.message : String(err)})`,
      'restore the shard or regenerate the set with `neurocorr prepare`',
      { cause: err },
    );
  }
  if (bytes.length !== shard.bytes) {
    throw new InputError(
      'E_INPUT_TRUNCATED',
      file,
      `shard holds ${bytes.length} bytes, the manifest says ${shard.bytes}`,
      'the shard is damaged or truncated; regenerate the set with `neurocorr prepare`',
    );
  }
  const digest = verify ? sha256(bytes) : shard.sha256;
  if (digest !== shard.sha256) {
    throw new InputError(
      'E_INPUT_VALUES',
      file,
      `sha256 ${digest} does not match the manifest's ${shard.sha256}`,
      'the shard is damaged; regenerate the set with `neurocorr prepare`',
    );
  }
  return bytes;
}
