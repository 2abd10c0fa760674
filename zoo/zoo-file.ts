/**
 * The zoo file: which models a zoo compares.
 *
 *   { "models": [ { "name": "resnet18-a", "path": "acts/resnet18-a", "tags": ["resnet"] },
 *                 { "name": "r18", "model": "models/r18.onnx", "layers"?: [...], "size"?: 224, "preprocess"?: "torch" } ],
 *     "extract"?: { "probes": "probes", "preprocess": "torch", "size"?: 224, "batch"?: 16, "layers"?: [...] } }
 *
 * An entry names an activation set (`path`) or a model (`model`: a
 * TensorFlow.js model.json or its folder, or an .onnx file) that the zoo
 * extracts on the zoo's probe set (the `extract` section; an entry may
 * override `layers`, `size` and `preprocess`). Paths are relative to the zoo
 * file's folder. Names are unique and safe to print and to use in file
 * names; the shorthand takes activation sets on the command line instead
 * (`name=path`, or a path whose base name becomes the name).
 */
import { basename, dirname, resolve } from 'node:path';
import { InputError, UsageError } from '../shared/errors.js';
import { jsonSyntax, MAX_JSON_BYTES, readSmallFile } from '../shared/formats/index.js';
import { PREPROCESS } from '../shared/options/index.js';
import { readExtractSection, readModelSpec, type ZooExtract, type ZooModelSpec } from './zoo-file-models.js';

export type { ZooExtract, ZooModelSpec } from './zoo-file-models.js';

export interface ZooEntry {
  readonly name: string;
  /** The activation set; for a model entry, the model file until the zoo has extracted it, then its extracted set. */
  readonly path: string;
  readonly tags: readonly string[];
  /** A model entry: the model and its extraction settings (before the zoo-wide defaults apply). */
  readonly model?: ZooModelSpec;
}

export interface ZooFileContents {
  readonly entries: ZooEntry[];
  /** The `extract` section, or null when the file has none. */
  readonly extract: ZooExtract | null;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const FORMAT =
  'fix the zoo file; format: {"models": [{"name": "a", "path": "activations/a", "tags"?: ["family"]} or {"name": "b", "model": "models/b.onnx"}, ...], "extract"?: {"probes": "probes", "preprocess": "torch", ...}} with paths relative to the file';
const MODEL_FIELDS = ['layers', 'size', 'preprocess'];

export const isZooFile = (path: string): boolean => path.toLowerCase().endsWith('.json');

export function readZooFile(file: string): ZooFileContents {
  const bytes = readSmallFile(file, MAX_JSON_BYTES, 'E_INPUT_FORMAT', FORMAT);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new InputError('E_INPUT_FORMAT', file, `is not JSON (${jsonSyntax(err)})`, FORMAT, { cause: err });
  }
  const bad = (problem: string) => new InputError('E_INPUT_FORMAT', file, problem, FORMAT);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('is not a JSON object');
  const known = new Set(['models', 'extract']);
  const extra = Object.keys(json).filter((k) => !known.has(k));
  if (extra.length > 0) throw bad(`has unknown field${extra.length > 1 ? 's' : ''} ${extra.map((k) => JSON.stringify(k)).join(', ')}`);
  const models = (json as { models?: unknown }).models;
  if (!Array.isArray(models)) throw bad('needs a "models" array');
  const root = dirname(resolve(file));
  const entries = models.map((entry: unknown, i): ZooEntry => {
    let at = `models[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw bad(`${at} is not an object`);
    const { name, path, model, tags, ...rest } = entry as Record<string, unknown>;
    if (typeof name !== 'string' || !NAME.test(name)) throw bad(`${at}.name must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`);
    at = `${at} (${JSON.stringify(name)})`;
    const unknown = Object.keys(rest).find((k) => !MODEL_FIELDS.includes(k));
    if (unknown !== undefined) throw bad(`${at} has unknown field ${JSON.stringify(unknown)}`);
    if ((path === undefined) === (model === undefined))
      throw bad(`${at} needs exactly one of "path" (an activation set) and "model" (a model the zoo extracts)`);
    if (tags !== undefined && (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string' || t === '' || t.length > 64)))
      throw bad(`${at}.tags must be a list of non-empty strings of at most 64 characters`);
    const common = { name, tags: (tags as string[] | undefined) ?? [] };
    if (path !== undefined) {
      if (typeof path !== 'string' || path === '') throw bad(`${at}.path must be a non-empty string`);
      const override = Object.keys(rest)[0];
      if (override !== undefined) throw bad(`${at}.${override} applies to model entries only (an entry with "model"); an activation set is extracted already`);
      return { ...common, path: resolve(root, path) };
    }
    const spec = readModelSpec(root, model, rest, (problem) => bad(`${at}${problem}`));
    return { ...common, path: spec.file, model: spec };
  });
  const section = (json as { extract?: unknown }).extract;
  const extract = section === undefined ? null : readExtractSection(root, section, (problem) => bad(`"extract"${problem}`));
  const first = entries.find((e) => e.model !== undefined);
  if (first !== undefined && extract === null) {
    throw bad(
      `model ${JSON.stringify(first.name)} names a model, and the file has no "extract" section: add {"extract": {"probes": "probes", "preprocess": "${PREPROCESS[1]}"}} (the zoo's probe set and how its images are fed)`,
    );
  }
  checkEntries(entries, (problem) => bad(problem));
  return { entries, extract };
}

/** The shorthand: each argument is `name=path` or a path named by its base name. */
export function entriesFromArgs(args: readonly string[]): ZooEntry[] {
  const entries = args.map((arg): ZooEntry => {
    const eq = arg.indexOf('=');
    const [name, path] = eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [basename(arg.replace(/\/+$/, '')).replace(/\.(safetensors)$/i, ''), arg];
    if (!NAME.test(name)) {
      throw new UsageError(
        `model name ${JSON.stringify(name)} (from ${JSON.stringify(arg)}) must be 1-128 letters, digits, '.', '_' or '-'; name it with name=path`,
      );
    }
    return { name, path: resolve(path), tags: [] };
  });
  checkEntries(entries, (problem) => new UsageError(`${problem}; name the models with name=path`));
  return entries;
}

/** At least two models, each name valid and unique. */
export function checkEntries(entries: readonly ZooEntry[], fail: (problem: string) => Error): void {
  const badName = entries.find((e) => !NAME.test(e.name));
  if (badName !== undefined)
    throw fail(`model name ${JSON.stringify(badName.name)} must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  if (entries.length < 2) throw fail(`a zoo needs at least 2 models, got ${entries.length}`);
  const seen = new Map<string, number>();
  entries.forEach((e, i) => {
    const first = seen.get(e.name);
    if (first !== undefined) throw fail(`models ${first} and ${i} are both named ${JSON.stringify(e.name)}`);
    seen.set(e.name, i);
  });
}
