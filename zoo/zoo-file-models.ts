/**
 * The model side of a zoo file: a model entry's settings and the `extract`
 * section (the zoo's probe set, preprocessing, input size, batch and default
 * layer selection). Every value is checked against the option table's
 * bounds and choices; `fail` names the zoo file and where in it.
 */
import { resolve } from 'node:path';
import { OPTIONS, PREPROCESS, type OptionSpec } from '../shared/options/index.js';

export type Preprocess = (typeof PREPROCESS)[number];

/** A model entry: its file and the settings it overrides (null: the `extract` section's). */
export interface ZooModelSpec {
  /** Absolute: a model.json, the folder holding one, or an .onnx file. */
  readonly file: string;
  readonly layers: readonly string[] | null;
  readonly size: number | null;
  readonly preprocess: Preprocess | null;
}

/** The `extract` section. */
export interface ZooExtract {
  /** Absolute: a folder of images, an IDX file or a .npy of model inputs. */
  readonly probes: string;
  readonly preprocess: Preprocess | null;
  readonly size: number | null;
  readonly batch: number | null;
  /** The default layer selection (null: each model's block outputs). */
  readonly layers: readonly string[] | null;
}

type Fail = (problem: string) => Error;

function integer(spec: OptionSpec, value: unknown, at: string, fail: Fail): number | null {
  if (value === undefined) return null;
  const [min, max] = [spec.min ?? 1, spec.max ?? Number.MAX_SAFE_INTEGER];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) throw fail(`${at} must be an integer from ${min} to ${max}`);
  return value;
}

function preprocessOf(value: unknown, at: string, fail: Fail): Preprocess | null {
  if (value === undefined) return null;
  if (typeof value !== 'string' || !(PREPROCESS as readonly string[]).includes(value)) throw fail(`${at} must be one of ${PREPROCESS.join(', ')}`);
  return value as Preprocess;
}

function layersOf(value: unknown, at: string, fail: Fail): string[] | null {
  if (value === undefined) return null;
  if (!Array.isArray(value) || value.length === 0 || value.some((v) => typeof v !== 'string' || v === ''))
    throw fail(`${at} must be a non-empty list of layer names, globs or /regex/es`);
  return value as string[];
}

/** A model entry's `model` and overrides (`rest`: its fields other than name, path, model and tags). */
export function readModelSpec(root: string, model: unknown, rest: Record<string, unknown>, fail: Fail): ZooModelSpec {
  if (typeof model !== 'string' || model === '') throw fail('.model must be a non-empty string: a TensorFlow.js model.json (or its folder) or an .onnx file');
  return {
    file: resolve(root, model),
    layers: layersOf(rest['layers'], '.layers', fail),
    size: integer(OPTIONS.size, rest['size'], '.size', fail),
    preprocess: preprocessOf(rest['preprocess'], '.preprocess', fail),
  };
}

export function readExtractSection(root: string, section: unknown, fail: Fail): ZooExtract {
  if (typeof section !== 'object' || section === null || Array.isArray(section)) throw fail(' must be an object');
  const { probes, preprocess, size, batch, layers, ...rest } = section as Record<string, unknown>;
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw fail(` has unknown field ${JSON.stringify(unknown)} (it takes probes, preprocess, size, batch and layers)`);
  if (typeof probes !== 'string' || probes === '') throw fail('.probes must be a non-empty string: a folder of images, an IDX file or a .npy of model inputs');
  return {
    probes: resolve(root, probes),
    preprocess: preprocessOf(preprocess, '.preprocess', fail),
    size: integer(OPTIONS.size, size, '.size', fail),
    batch: integer(OPTIONS.batch, batch, '.batch', fail),
    layers: layersOf(layers, '.layers', fail),
  };
}

/** A model's settings: its own overrides, else the section's. */
export function modelSettings(spec: ZooModelSpec, extract: ZooExtract): Omit<ZooModelSpec, 'file'> {
  return { layers: spec.layers ?? extract.layers, size: spec.size ?? extract.size, preprocess: spec.preprocess ?? extract.preprocess };
}
