/**
 * Loads an activation set (a directory of .npy files or one .safetensors
 * file) into a RawModel: layers in model order, each [M, ...], all with the
 * same M.
 *
 * Directory of .npy files: every `*.npy`, sorted by file name (code units),
 * one layer each, named by file stem, depth null. An optional `layers.json`
 * in the directory selects, orders and describes the layers:
 *
 *   { "probes": "optional probe-set fingerprint string",
 *     "layers": [ { "file": "conv1.npy", "name": "optional new name", "depth": 0, "layout": "nchw" }, ... ] }
 *
 * - `probes` (optional, non-empty string) becomes the set's fingerprint.
 * - `layers` (optional; if present, a non-empty array) lists exactly the
 *   layers used, in model order. `file` must be a .npy file in the directory;
 *   `name` renames it (default: file stem); `depth` is a non-negative integer
 *   or null (default null: use position); `layout` is "nchw" or "nhwc"
 *   (default: not known). Files and names must be unique; unknown keys are
 *   rejected.
 *
 * .safetensors: one layer per tensor, sorted by name, unless `__metadata__`
 * (all values are strings) holds:
 * - `layers`: JSON array of tensor names, e.g. "[\"conv1\",\"fc\"]", which
 *   selects and orders the layers;
 * - `depths`: JSON array of non-negative integers, one per layer;
 * - `layouts`: JSON array of "nchw", "nhwc" or null, one per layer;
 * - `probe_fingerprint`: the fingerprint.
 *
 * A layout never defaults: channels mode refuses a rank >= 3 layer whose
 * layout neither its file nor the `layout` option gives (channels.ts).
 */

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { InputError } from '../errors.js';
import { jsonSyntax, MAX_JSON_BYTES, readSmallFile, requireRegularFile } from './input-file.js';
import { formatShape, npyHeaderLength, parseNpyHeader } from './npy.js';
import { probeReader, readHead } from './layer-file.js';
import type { Layout, RawLayer, RawModel } from './raw.js';
import { isRecord, parseSafetensorsHeader, safetensorsHeaderLength } from './safetensors.js';

const PATH_FIX = 'check the path; expected a directory of .npy files or a .safetensors file';
const LAYER_MAP_FIX =
  'fix layers.json; format: {"probes"?: "fingerprint", "layers": [{"file": "conv1.npy", "name"?: "conv1", "depth"?: 0, "layout"?: "nchw" | "nhwc"}]}';
const METADATA_FIX =
  'set __metadata__ "layers" to a JSON array string of tensor names in the file, e.g. "[\\"conv1\\",\\"fc\\"]", and "depths" and "layouts" to JSON array strings of the same length (non-negative integers; "nchw", "nhwc" or null)';

export function loadActivationSet(path: string): RawModel {
  const stat = fsCall(path, PATH_FIX, () => statSync(path));
  if (!stat.isDirectory()) requireRegularFile(path, stat);
  if (!stat.isDirectory() && !path.toLowerCase().endsWith('.safetensors')) {
    const fix = PATH_FIX + ' (put a single .npy file in a directory of its own)';
    throw new InputError('E_INPUT_FORMAT', path, 'not a directory of .npy files or a .safetensors file', fix);
  }
  const model = stat.isDirectory() ? loadNpyDir(path) : loadSafetensors(path);
  validateLayers(model.layers);
  return model;
}

/** Runs an fs call, turning its failure into an InputError naming `file`. */
function fsCall<T>(file: string, fix: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InputError) throw err;
    const missing = err instanceof Error && 'code' in err && err.code === 'ENOENT';
    const problem = missing ? 'no such file or directory' : `cannot be read (${err instanceof Error ? err.message : String(err)})`;
    throw new InputError('E_INPUT_MISSING', file, problem, fix, { cause: err });
  }
}

const READABLE_FIX = 'check that the file exists and is readable';

/** Enough of a file's start to parse its header: a first guess, then what the header declares. */
function readHeader(file: string, declared: (prefix: Uint8Array) => number | null): { head: Uint8Array; size: number } {
  const first = fsCall(file, READABLE_FIX, () => readHead(file, 64 * 1024));
  const need = declared(first.head);
  if (need === null || need <= first.head.length || need > first.size) return first;
  return fsCall(file, READABLE_FIX, () => readHead(file, need));
}

const perProbe = (shape: readonly number[]): number => shape.slice(1).reduce((a, b) => a * b, 1);

interface LayerSpec {
  file: string;
  name: string;
  depth: number | null;
  layout: Layout | null;
}

const stem = (file: string): string => file.slice(0, -'.npy'.length);
const defaultSpec = (file: string): LayerSpec => ({ file, name: stem(file), depth: null, layout: null });

function loadNpyDir(dir: string): RawModel {
  const files = fsCall(dir, PATH_FIX, () => readdirSync(dir))
    .filter((f) => f.endsWith('.npy'))
    .sort();
  if (files.length === 0) {
    const fix = 'put one .npy file per layer ([M, ...], probes first) in the directory, or pass a .safetensors file';
    throw new InputError('E_INPUT_MISSING', dir, 'directory holds no .npy files', fix);
  }
  const mapFile = join(dir, 'layers.json');
  const map = existsSync(mapFile) ? readLayerMap(mapFile, files) : { fingerprint: null, specs: files.map(defaultSpec) };
  const layers = map.specs.map(({ file, name, depth, layout }): RawLayer => {
    const source = join(dir, file);
    const { head, size } = readHeader(source, npyHeaderLength);
    const { shape, dtype, dataOffset } = parseNpyHeader(head, size, source);
    return { name, depth, source, shape, dtype, read: probeReader(source, dataOffset, dtype, perProbe(shape)), layout };
  });
  return { path: dir, layers, fingerprint: map.fingerprint };
}

function readLayerMap(file: string, available: readonly string[]): { fingerprint: string | null; specs: LayerSpec[] } {
  const fail = (problem: string): InputError => new InputError('E_LAYER_MAP', file, problem, LAYER_MAP_FIX);
  const text = new TextDecoder().decode(fsCall(file, READABLE_FIX, () => readSmallFile(file, MAX_JSON_BYTES, 'E_LAYER_MAP', LAYER_MAP_FIX)));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw fail(`invalid JSON (${jsonSyntax(err)})`);
  }
  if (!isRecord(json)) throw fail('must be a JSON object');
  rejectUnknownKeys(json, ['probes', 'layers'], 'the top level', fail);
  const probes = json['probes'];
  if (probes !== undefined && (typeof probes !== 'string' || probes === '')) throw fail('"probes" must be a non-empty string');
  const entries = json['layers'];
  if (entries === undefined) return { fingerprint: probes ?? null, specs: available.map(defaultSpec) };
  if (!Array.isArray(entries) || entries.length === 0) throw fail('"layers" must be a non-empty array');
  const specs = entries.map((entry: unknown, i) => layerSpec(entry, `layers[${i}]`, available, fail));
  for (const key of ['file', 'name'] as const) {
    const dup = firstDuplicate(specs.map((s) => s[key]));
    if (dup !== undefined) throw fail(`${key} "${dup}" appears in more than one entry`);
  }
  return { fingerprint: probes ?? null, specs };
}

function layerSpec(entry: unknown, at: string, available: readonly string[], fail: (p: string) => InputError): LayerSpec {
  if (!isRecord(entry)) throw fail(`${at} must be an object like {"file": "conv1.npy"}`);
  rejectUnknownKeys(entry, ['file', 'name', 'depth', 'layout'], at, fail);
  const { file, name, depth, layout } = entry;
  if (typeof file !== 'string') throw fail(`${at}.file must be a string naming a .npy file in the directory`);
  const label = `${at} (${typeof name === 'string' ? `"${name}", ` : ''}file "${file}")`;
  if (!available.includes(file)) throw fail(`${label} names a file that is not in the directory; available: ${available.join(', ')}`);
  if (name !== undefined && (typeof name !== 'string' || name === '')) throw fail(`${at}.name must be a non-empty string`);
  if (depth !== undefined && depth !== null && !isDepth(depth)) {
    throw fail(`${label}: depth must be a non-negative integer, got ${JSON.stringify(depth)}`);
  }
  if (layout !== undefined && layout !== 'nchw' && layout !== 'nhwc') {
    throw fail(`${label}: layout must be "nchw" or "nhwc", got ${JSON.stringify(layout)}`);
  }
  return { file, name: name ?? stem(file), depth: depth ?? null, layout: layout ?? null };
}

function rejectUnknownKeys(obj: Record<string, unknown>, known: readonly string[], at: string, fail: (p: string) => InputError): void {
  const unknown = Object.keys(obj).find((k) => !known.includes(k));
  if (unknown !== undefined) throw fail(`unknown key "${unknown}" in ${at} (known: ${known.join(', ')})`);
}

const isDepth = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function firstDuplicate(values: readonly string[]): string | undefined {
  return values.find((v, i) => values.indexOf(v) !== i);
}

function loadSafetensors(file: string): RawModel {
  const { head, size } = readHeader(file, safetensorsHeaderLength);
  const { tensors, metadata } = parseSafetensorsHeader(head, size, file);
  const fail = (problem: string): InputError => new InputError('E_LAYER_MAP', file, problem, METADATA_FIX);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const available = [...byName.keys()].sort();
  if (available.length === 0) {
    throw new InputError('E_INPUT_MISSING', file, 'file holds no tensors', 'save one [M, ...] tensor per layer');
  }
  const names = metadataArray(metadata, 'layers', fail) ?? available;
  if (names.length === 0 || !names.every((n): n is string => typeof n === 'string')) {
    throw fail('__metadata__.layers must be a non-empty JSON array of tensor names');
  }
  const dup = firstDuplicate(names);
  if (dup !== undefined) throw fail(`__metadata__.layers lists "${dup}" more than once`);
  const depths = metadataArray(metadata, 'depths', fail) ?? names.map(() => null);
  if (depths.length !== names.length || !depths.every((d) => d === null || isDepth(d))) {
    throw fail(`__metadata__.depths must be a JSON array of ${names.length} non-negative integers, one per layer`);
  }
  const layouts = metadataArray(metadata, 'layouts', fail) ?? names.map(() => null);
  if (layouts.length !== names.length || !layouts.every((l): l is Layout | null => l === null || l === 'nchw' || l === 'nhwc')) {
    throw fail(`__metadata__.layouts must be a JSON array of ${names.length} entries, "nchw", "nhwc" or null, one per layer`);
  }
  const layers = names.map((name, i): RawLayer => {
    const tensor = byName.get(name);
    if (!tensor) throw fail(`__metadata__.layers names tensor "${name}", which is not in the file; available: ${available.join(', ')}`);
    const depth = depths[i];
    return {
      name,
      depth: typeof depth === 'number' ? depth : null,
      source: `${file}#${name}`,
      shape: tensor.shape,
      dtype: tensor.dtype,
      read: probeReader(file, tensor.offset, tensor.dtype, perProbe(tensor.shape)),
      layout: layouts[i] ?? null,
    };
  });
  return { path: file, layers, fingerprint: metadata['probe_fingerprint'] ?? null };
}

function metadataArray(metadata: Record<string, string>, key: string, fail: (p: string) => InputError): unknown[] | undefined {
  const text = metadata[key];
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (!Array.isArray(value)) throw fail(`__metadata__.${key} must be a JSON array string, got ${JSON.stringify(text)}`);
  return value;
}

function validateLayers(layers: readonly RawLayer[]): void {
  const first = layers[0];
  for (const layer of layers) {
    if (layer.shape.length === 0 || layer.shape.some((d) => d === 0)) {
      const problem = `layer "${layer.name}" is empty (shape ${formatShape(layer.shape)}); a layer needs shape [M, ...] with every dim > 0`;
      const fix = 'remove it from the set (or from layers.json / __metadata__.layers), or re-export it with its activations';
      throw new InputError('E_INPUT_SHAPE', layer.source, problem, fix);
    }
    if (first && layer.shape[0] !== first.shape[0]) {
      const problem = `layer "${layer.name}" has M=${layer.shape[0]} probes (first dim) but ${first.source} has M=${first.shape[0]}`;
      const fix = 'export every layer from the same probes, in the same order (first dim = number of probes)';
      throw new InputError('E_INPUT_MISMATCH', layer.source, problem, fix);
    }
  }
}
