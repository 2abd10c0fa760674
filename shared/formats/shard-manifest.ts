/**
 * manifest.json of a shard set, checked completely before anything is sized
 * from it: types and ranges, layers contiguous from neuron 0, each layer's
 * shape consistent with its count, shards in order, contiguous, inside their
 * layer and large enough for their values.
 */
import { constants as bufferConstants } from 'node:buffer';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import type { ConvMode, Layout } from '../core/index.js';
import type { Grid } from './channels.js';
import { jsonSyntax, MAX_JSON_BYTES, readSmallFile } from './input-file.js';
import { MANIFEST, SHARD_FORMAT, SHARD_VERSION, type Manifest, type ShardEntry } from './shards.js';

/** Neuron indices are uint32 everywhere past the manifest, with 0xffffffff meaning "no partner". */
export const MAX_NEURONS = 2 ** 32 - 2;
/** A shard is read whole into one buffer. */
export const MAX_SHARD_BYTES = bufferConstants.MAX_LENGTH;

export const MANIFEST_FIX = 'regenerate the shard set with `neurocorr prepare`, or fix manifest.json to the documented schema';

type Layer = Manifest['layers'][number];
type Fail = (problem: string) => InputError;

const isInt = (v: unknown, min = 0): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A per-probe shape: positive integers whose product is one too. */
const isShape = (v: unknown): v is number[] => Array.isArray(v) && v.every((d) => isInt(d, 1)) && isInt(v.reduce((a: number, b: number) => a * b, 1));

/** Reads and checks `dir`/manifest.json. */
export function readManifest(dir: string): Manifest {
  const file = join(dir, MANIFEST);
  const bytes = readSmallFile(file, MAX_JSON_BYTES, 'E_INPUT_FORMAT', MANIFEST_FIX);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new InputError('E_INPUT_FORMAT', file, `not valid JSON (${jsonSyntax(err)})`, MANIFEST_FIX);
  }
  return checkManifest(json, file);
}

/** The manifest in `json`, checked; `file` names it in errors. */
export function checkManifest(json: unknown, file: string): Manifest {
  const fail: Fail = (problem) => new InputError('E_INPUT_FORMAT', file, problem, MANIFEST_FIX);
  if (!isRecord(json) || json['format'] !== SHARD_FORMAT) throw fail(`"format" must be "${SHARD_FORMAT}"`);
  const { version, model, probes, samples, fingerprint, conv } = json;
  if (version !== SHARD_VERSION) throw fail(`unsupported version ${JSON.stringify(version)}; this neurocorr reads version ${SHARD_VERSION}`);
  if (!isInt(probes, 2) || !isInt(samples, 2)) throw fail('"probes" and "samples" must be integers >= 2');
  if (conv !== 'units' && conv !== 'channels') throw fail('"conv" must be "units" or "channels"');
  const spatial = samples / probes;
  if (!Number.isInteger(spatial) || (conv === 'units' && spatial !== 1)) {
    throw fail(
      `"samples" (${samples}) must equal "probes" (${probes})${conv === 'channels' ? ' times the spatial positions of a channel' : ' with "conv": "units"'}`,
    );
  }
  if (typeof model !== 'string') throw fail('"model" must be a string');
  if (fingerprint !== null && typeof fingerprint !== 'string') throw fail('"fingerprint" must be a string or null');
  const grid = checkGrid(json['spatial'], conv, fail);
  const layers = checkLayers(json['layers'], conv, spatial, grid, fail);
  const last = layers.at(-1)!;
  const n = last.start + last.count;
  if (n * samples * 4 > Number.MAX_SAFE_INTEGER) throw fail(`${n} neurons x ${samples} samples is too large to address`);
  const shards = checkShards(json['shards'], layers, samples, fail);
  return { format: SHARD_FORMAT, version, model, probes, samples, fingerprint, conv, spatial: grid, layers, shards };
}

/** `spatial`: absent or null, or the grid a channels set's maps were pooled to. */
function checkGrid(raw: unknown, conv: ConvMode, fail: Fail): Grid | null {
  if (raw === undefined || raw === null) return null;
  if (conv !== 'channels' || !isRecord(raw) || !isInt(raw['height'], 1) || !isInt(raw['width'], 1) || Object.keys(raw).length !== 2) {
    throw fail('"spatial" must be null, or {"height": h, "width": w} (positive integers) with "conv": "channels"');
  }
  return { height: raw['height'], width: raw['width'] };
}

/** Neurons a layer of this per-probe shape has, and the samples per neuron over one probe (pooled to `grid`). */
function layerNeurons(
  shape: readonly number[],
  conv: ConvMode,
  count: number,
  layout: Layout | null,
  grid: Grid | null,
): { neurons: number; spatial: number } | null {
  const perProbe = shape.reduce((a, b) => a * b, 1);
  if (conv === 'units' || shape.length < 2) return { neurons: perProbe, spatial: 1 };
  if (grid !== null && shape.length !== 3) return null;
  // Channels come first (NCHW) or last (NHWC); older sets do not say which, so the count picks it.
  const channels = layout === 'nchw' ? shape[0]! : layout === 'nhwc' ? shape.at(-1)! : count === shape[0] || count === shape.at(-1) ? count : shape[0]!;
  if (perProbe % channels !== 0) return null;
  return { neurons: channels, spatial: grid === null ? perProbe / channels : grid.height * grid.width };
}

function checkLayers(raw: unknown, conv: ConvMode, spatial: number, grid: Grid | null, fail: Fail): Layer[] {
  if (!Array.isArray(raw) || raw.length === 0) throw fail('"layers" must be a non-empty array');
  const names = new Set<string>();
  let next = 0;
  return raw.map((l: unknown, i): Layer => {
    const at = `layers[${i}]`;
    if (!isRecord(l)) throw fail(`${at} must be an object`);
    const { name, depth, shape, start, count, total, constant, layout } = l;
    if (typeof name !== 'string' || name === '') throw fail(`${at}.name must be a non-empty string`);
    const label = `${at} ("${name}")`;
    if (names.has(name)) throw fail(`${label}: the name appears in more than one layer`);
    names.add(name);
    if (!isInt(depth)) throw fail(`${label}.depth must be a non-negative integer`);
    if (!isShape(shape)) throw fail(`${label}.shape must be an array of positive integers (the per-probe shape)`);
    if (!isInt(count, 1) || count > MAX_NEURONS) throw fail(`${label}.count must be an integer in 1..${MAX_NEURONS}`);
    if (start !== next)
      throw fail(`${label} starts at neuron ${JSON.stringify(start)}, expected ${next}: layers are listed in order, contiguous from neuron 0`);
    if (total !== count) throw fail(`${label}.total must equal its count (${count}): a shard set holds every neuron of its layers`);
    if (!isInt(constant) || constant > count) throw fail(`${label}.constant must be an integer in 0..${count}`);
    if (layout !== undefined && layout !== null && layout !== 'nchw' && layout !== 'nhwc') throw fail(`${label}.layout must be "nchw", "nhwc" or null`);
    const geometry = layerNeurons(shape, conv, count, layout ?? null, grid);
    const has = `${label} has shape [${shape.join(', ')}]`;
    if (geometry === null) throw fail(`${has}, which does not split into ${count} channels${grid === null ? '' : ' of 2-D maps'}`);
    if (geometry.neurons !== count) throw fail(`${has}, which makes ${geometry.neurons} neurons with "conv": "${conv}", but count ${count}`);
    if (geometry.spatial !== spatial) throw fail(`${has}: ${geometry.spatial} positions per channel, but "samples" / "probes" is ${spatial}`);
    next += count;
    if (next > MAX_NEURONS) throw fail(`the layers hold more than ${MAX_NEURONS} neurons, the most a model may have`);
    return { name, depth, shape, start, count, total, constant, layout: layout ?? null };
  });
}

const SHARD_NAME = /^[\w.-]+\.arrow$/;

function checkShards(raw: unknown, layers: readonly Layer[], samples: number, fail: Fail): ShardEntry[] {
  if (!Array.isArray(raw) || raw.length === 0) throw fail('"shards" must be a non-empty array');
  const files = new Set<string>();
  let next = 0;
  const shards = raw.map((s: unknown, i): ShardEntry => {
    const at = `shards[${i}]`;
    if (!isRecord(s)) throw fail(`${at} must be an object`);
    const { file, layer, first, count, bytes, sha256 } = s;
    if (typeof file !== 'string' || !SHARD_NAME.test(file) || file.includes('..')) {
      throw fail(
        `${at}.file must be a plain file name ending in .arrow, inside the set's directory (no "/", no "..", not absolute); got ${JSON.stringify(file)}`,
      );
    }
    const label = `${at} (${file})`;
    if (files.has(file)) throw fail(`${label}: the file is listed in more than one shard`);
    files.add(file);
    if (!isInt(layer) || layer >= layers.length) throw fail(`${label}.layer must be a layer index in 0..${layers.length - 1}`);
    if (!isInt(first) || !isInt(count, 1)) throw fail(`${label} needs "first" (an integer >= 0) and "count" (an integer >= 1)`);
    if (first !== next)
      throw fail(`${label} starts at neuron ${first}, expected ${next}: shards are listed in order, contiguous from neuron 0, each neuron in one shard`);
    const l = layers[layer]!;
    if (first + count > l.start + l.count || first < l.start) {
      throw fail(
        `${label} holds neurons ${first}..${first + count - 1}, not inside layer ${layer} ("${l.name}", ${l.start}..${l.start + l.count - 1}): a shard never straddles two layers`,
      );
    }
    if (!isInt(bytes) || bytes > MAX_SHARD_BYTES) throw fail(`${label}.bytes must be an integer in 0..${MAX_SHARD_BYTES}`);
    // Arrow stores the z values uncompressed (neurocorr reads no compressed IPC), so a shard is at least their size.
    if (bytes < count * samples * 4) throw fail(`${label} is ${bytes} bytes, too small for ${count} neurons x ${samples} float32 samples`);
    if (typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256)) throw fail(`${label}.sha256 must be 64 hex digits`);
    next += count;
    return { file, layer, first, count, bytes, sha256: sha256.toLowerCase() };
  });
  const last = layers.at(-1)!;
  if (next !== last.start + last.count)
    throw fail(`the shards hold neurons 0..${next - 1}, the layers ${last.start + last.count}: every neuron must be in a shard`);
  return shards;
}
