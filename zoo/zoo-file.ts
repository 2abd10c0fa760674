/**
 * The zoo file: which models a zoo compares.
 *
 *   { "models": [ { "name": "resnet18-a", "path": "acts/resnet18-a", "tags": ["resnet"] }, ... ] }
 *
 * Paths are relative to the zoo file's folder. Names are unique and safe to
 * print and to use in file names; the shorthand takes sets on the command
 * line instead (`name=path`, or a path whose base name becomes the name).
 */
import { basename, dirname, resolve } from 'node:path';
import { InputError, UsageError } from '../shared/errors.js';
import { jsonSyntax, MAX_JSON_BYTES, readSmallFile } from '../shared/formats/index.js';

export interface ZooEntry {
  readonly name: string;
  readonly path: string;
  readonly tags: readonly string[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const FORMAT = 'fix the zoo file; format: {"models": [{"name": "a", "path": "activations/a", "tags"?: ["family"]}, ...]} with paths relative to the file';

export const isZooFile = (path: string): boolean => path.toLowerCase().endsWith('.json');

export function readZooFile(file: string): ZooEntry[] {
  const bytes = readSmallFile(file, MAX_JSON_BYTES, 'E_INPUT_FORMAT', FORMAT);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new InputError('E_INPUT_FORMAT', file, `is not JSON (${jsonSyntax(err)})`, FORMAT, { cause: err });
  }
  const bad = (problem: string) => new InputError('E_INPUT_FORMAT', file, problem, FORMAT);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('is not a JSON object');
  const known = new Set(['models']);
  const extra = Object.keys(json).filter((k) => !known.has(k));
  if (extra.length > 0) throw bad(`has unknown field${extra.length > 1 ? 's' : ''} ${extra.map((k) => JSON.stringify(k)).join(', ')}`);
  const models = (json as { models?: unknown }).models;
  if (!Array.isArray(models)) throw bad('needs a "models" array');
  const root = dirname(resolve(file));
  const entries = models.map((entry: unknown, i): ZooEntry => {
    const at = `models[${i}]`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw bad(`${at} is not an object`);
    const { name, path, tags, ...rest } = entry as Record<string, unknown>;
    if (Object.keys(rest).length > 0) throw bad(`${at} has unknown field ${JSON.stringify(Object.keys(rest)[0])}`);
    if (typeof name !== 'string' || !NAME.test(name)) throw bad(`${at}.name must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`);
    if (typeof path !== 'string' || path === '') throw bad(`${at}.path must be a non-empty string`);
    if (tags !== undefined && (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string' || t === '' || t.length > 64)))
      throw bad(`${at}.tags must be a list of non-empty strings of at most 64 characters`);
    return { name, path: resolve(root, path), tags: (tags as string[] | undefined) ?? [] };
  });
  checkEntries(entries, (problem) => bad(problem));
  return entries;
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
