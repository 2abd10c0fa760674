/**
 * TensorFlow.js for extract: the wasm backend (about 40x the plain cpu
 * backend on a ResNet; the cpu backend only where wasm fails to start), and
 * a tfjs `model.json` read from disk with its weight files, without
 * tfjs-node (whose install downloads libtensorflow).
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import type * as TfCore from '@tensorflow/tfjs-core';
import { InputError } from '../shared/errors.js';
import { jsonSyntax, MAX_JSON_BYTES, readSmallFile } from '../shared/formats/index.js';
import { checkLayerGraph } from './tfjs-topology.js';

export type Tf = typeof TfCore;

let loading: Promise<Tf> | null = null;

/** tfjs-core on the wasm backend, or the cpu backend where wasm does not start; loaded once per process. */
export function loadTf(): Promise<Tf> {
  loading ??= (async () => {
    const tf = await import('@tensorflow/tfjs-core');
    // PROD silences tfjs's console banner about installing tfjs-node.
    tf.env().set('PROD', true);
    try {
      await import('@tensorflow/tfjs-backend-wasm');
      if (await tf.setBackend('wasm')) return tf;
    } catch {
      // fall through to the cpu backend
    }
    await import('@tensorflow/tfjs-backend-cpu');
    if (!(await tf.setBackend('cpu'))) throw new Error('no TensorFlow.js backend (wasm or cpu) could be started');
    return tf;
  })();
  return loading;
}

/** Runs `fn` on the backend in use; a kernel the wasm backend lacks moves the run (and every later one) to the cpu backend. */
export async function withFallback<T>(tf: Tf, fn: () => Promise<T>, log?: (line: string) => void): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const missing = err instanceof Error && /not registered for backend/.test(err.message);
    if (!missing || tf.getBackend() === 'cpu') throw err;
    await import('@tensorflow/tfjs-backend-cpu');
    await tf.setBackend('cpu');
    log?.(`extract: ${err.message.split('\n')[0]}; running on the tfjs cpu backend`);
    return fn();
  }
}

export type TfjsFormat = 'layers-model' | 'graph-model';

export interface TfjsModelFile {
  readonly path: string;
  readonly format: TfjsFormat;
  readonly json: TfCore.io.ModelJSON;
  /** The weight files, in manifest order, as paths on disk. */
  readonly weights: readonly string[];
}

const MODEL_FIX =
  'pass a TensorFlow.js model.json (tensorflowjs_converter output: "format": "layers-model" or "graph-model", with its weight files next to it) or an .onnx file';

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reads and checks a tfjs model.json: its format, and that every weight file it lists is there. */
export function readModelJson(path: string): TfjsModelFile {
  const fail = (problem: string): InputError => new InputError('E_INPUT_FORMAT', path, problem, MODEL_FIX);
  const text = new TextDecoder().decode(readSmallFile(path, MAX_JSON_BYTES, 'E_INPUT_FORMAT', MODEL_FIX));
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw fail(`not JSON (${jsonSyntax(err)})`);
  }
  if (!isRecord(json) || !isRecord(json['modelTopology'])) throw fail('not a TensorFlow.js model.json (no "modelTopology" object)');
  const topology = json['modelTopology'];
  // Files from before tfjs 1.0 may lack "format": tell the two kinds by their topology.
  const format =
    json['format'] ??
    (Array.isArray(topology['node']) ? 'graph-model' : isRecord(topology['model_config']) || 'class_name' in topology ? 'layers-model' : null);
  if (format !== 'layers-model' && format !== 'graph-model') {
    throw fail(`unknown model format ${JSON.stringify(format)}; extract runs "layers-model" and "graph-model"`);
  }
  if (format === 'layers-model') checkLayerGraph(topology, path);
  const weights = weightFiles(path, json['weightsManifest'] ?? [], fail);
  return { path, format, json: json as unknown as TfCore.io.ModelJSON, weights };
}

/**
 * The weight files a manifest lists, each once (a path listed twice, or a
 * weight named twice, is refused), each a regular file, and together as
 * large as the weights they hold: checked on their sizes, before any is read.
 */
function weightFiles(path: string, manifest: unknown, fail: (problem: string) => InputError): string[] {
  if (!Array.isArray(manifest) || !manifest.every((g) => isRecord(g) && Array.isArray(g['paths']) && Array.isArray(g['weights']))) {
    throw fail('"weightsManifest" must be an array of {"paths": [...], "weights": [...]}');
  }
  const dir = dirname(path);
  const files = new Map<string, number>();
  const names = new Set<string>();
  let expected: number | null = 0;
  for (const group of manifest as { paths: unknown[]; weights: unknown[] }[]) {
    for (const p of group.paths) {
      if (typeof p !== 'string' || p === '') throw fail('a weightsManifest path is not a non-empty string');
      const name = normalize(decodedPath(p, fail));
      if (isAbsolute(name) || name === '..' || name.startsWith(`..${sep}`)) throw fail(`weight file ${JSON.stringify(p)} is outside the model's folder`);
      const file = join(dir, name);
      if (files.has(file)) throw fail(`its weightsManifest lists the weight file ${JSON.stringify(p)} more than once`);
      files.set(file, weightFileSize(path, file));
    }
    for (const spec of group.weights) {
      const bytes = specBytes(spec);
      if (bytes === undefined) throw fail('a weightsManifest weight is not {"name", "shape": [sizes], "dtype"}');
      const { name } = spec as { name: string };
      if (names.has(name)) throw fail(`its weightsManifest lists the weight ${JSON.stringify(name)} more than once`);
      names.add(name);
      // String weights have no fixed size.
      expected = bytes === null || expected === null ? null : expected + bytes;
    }
  }
  const actual = [...files.values()].reduce((sum, size) => sum + size, 0);
  if (expected !== null && actual !== expected) throw sizeMismatch(path, actual, expected);
  return [...files.keys()];
}

function decodedPath(p: string, fail: (problem: string) => InputError): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw fail(`weight file ${JSON.stringify(p)} is not a valid URI path`);
  }
}

function weightFileSize(path: string, file: string): number {
  try {
    const st = statSync(file);
    if (st.isFile()) return st.size;
  } catch {
    // said below
  }
  throw new InputError(
    'E_INPUT_MISSING',
    file,
    `weight file of ${path} is missing or not a regular file`,
    'copy every weight shard listed in model.json next to it',
  );
}

const sizeMismatch = (path: string, actual: number, expected: number): InputError =>
  new InputError(
    'E_INPUT_TRUNCATED',
    path,
    `its weight files hold ${actual} bytes but its weightsManifest describes ${expected}`,
    're-export the model: a weight shard is truncated or belongs to another model',
  );

/** An IOHandler that loads the model from disk: its JSON, then each weight file. */
export function diskHandler(tf: Tf, model: TfjsModelFile): TfCore.io.IOHandler {
  return {
    load: () =>
      tf.io.getModelArtifactsForJSON(model.json, async (manifest) => {
        const specs = manifest.flatMap((group) => group.weights);
        const buffers = model.weights.map((file) => {
          const bytes = readFileSync(file);
          return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
        });
        // String weights have no fixed size; every other kind must fill the files exactly (files may have changed since they were checked).
        const expected = specs.some((spec) => spec.dtype === 'string') ? null : specs.reduce((sum, spec) => sum + weightBytes(spec), 0);
        const actual = buffers.reduce((sum, b) => sum + b.byteLength, 0);
        if (expected !== null && actual !== expected) throw sizeMismatch(model.path, actual, expected);
        return [specs, buffers];
      }),
  };
}

const DTYPE_BYTES: Readonly<Record<string, number>> = { float32: 4, int32: 4, bool: 1, float16: 2, uint8: 1, uint16: 2 };

function weightBytes(spec: TfCore.io.WeightsManifestEntry): number {
  const count = spec.shape.reduce((a, b) => a * b, 1);
  const dtype = spec.quantization?.dtype ?? spec.dtype;
  return count * (DTYPE_BYTES[dtype] ?? 4);
}

/** A manifest weight's bytes (null for a string weight), or undefined when it is not a weight entry. */
function specBytes(spec: unknown): number | null | undefined {
  if (!isRecord(spec) || typeof spec['name'] !== 'string' || typeof spec['dtype'] !== 'string') return undefined;
  const shape = spec['shape'];
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return undefined;
  return spec['dtype'] === 'string' ? null : weightBytes(spec as unknown as TfCore.io.WeightsManifestEntry);
}

/** Turns a failure inside tfjs while loading `path` into an InputError naming it. */
export function loadError(path: string, err: unknown): InputError {
  if (err instanceof InputError) return err;
  const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
  return new InputError('E_INPUT_FORMAT', path, `TensorFlow.js cannot load it (${message})`, MODEL_FIX, { cause: err });
}
