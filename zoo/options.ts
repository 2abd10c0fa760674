/** `zoo`'s options object, checked at the edge like every entry point's (coordinator/options.ts). */
import { OptionRangeError, OptionTypeError, UsageError } from '../shared/errors.js';
import { num, OPTIONS } from '../shared/options/index.js';
import { isObject, knownKeys, optional, string, stringList } from '../shared/validate.js';
import { RUN_KEYS, runSettings, type RunOptions, type RunSettings } from '../coordinator/options.js';
import { STORE_NAME } from './contents.js';
import { checkEntries, readZooFile, type ZooEntry, type ZooExtract } from './zoo-file.js';
import { checkModelFeeds } from './zoo-feed.js';
import { join, resolve } from 'node:path';

export interface ZooModelInput {
  readonly name: string;
  /** An npy folder, a .safetensors file or a shard set. */
  readonly path: string;
  readonly tags?: readonly string[];
}

export interface ZooOptions extends Omit<RunOptions, 'layersF' | 'layersG' | 'sample'> {
  /** A zoo file (JSON: `{"models": [{"name", "path" | "model", "tags"?}], "extract"?: {...}}`, paths relative to it; see docs/ZOO.md); or give `models` (activation sets only). */
  readonly zoo?: string;
  readonly models?: readonly ZooModelInput[];
  /** The zoo's folder: matrices, heatmaps, report.html, and (by default) the results store. Created if missing; an existing one must be a zoo's (its zoo.json) or empty. */
  readonly out: string;
  /** The results store, an SQLite file (default OUT/zoo.sqlite): pairs already in it are not computed again. */
  readonly store?: string;
  /** Seconds to wait for another run holding the store (default 0: refuse at once). */
  readonly storeWait?: number;
}

export interface ZooSettings extends RunSettings {
  readonly entries: readonly ZooEntry[];
  /** The zoo file's `extract` section (null: none, or the models came as `models`). */
  readonly extract: ZooExtract | null;
  readonly source: string;
  readonly out: string;
  readonly store: string;
  /** Milliseconds (the option is in seconds). */
  readonly storeWaitMs: number;
}

const ZOO_KEYS = [...RUN_KEYS.filter((k) => k !== 'layersF' && k !== 'layersG' && k !== 'sample'), 'zoo', 'models', 'out', 'store', 'storeWait'];

function modelInputs(value: unknown): ZooEntry[] {
  if (!Array.isArray(value)) throw new OptionTypeError('models', 'must be an array of {name, path, tags?}');
  const entries = value.map((v: unknown, i) => {
    const o = isObject(`models[${i}]`, v);
    knownKeys(`models[${i}]`, o, ['name', 'path', 'tags']);
    return {
      name: string(`models[${i}].name`, o['name']),
      path: resolve(string(`models[${i}].path`, o['path'])),
      tags: optional<readonly string[]>(o['tags'], (t) => stringList(`models[${i}].tags`, t), []),
    };
  });
  checkEntries(entries, (problem) => new OptionRangeError('models', `are refused: ${problem}`));
  return entries;
}

export function zooSettings(options: ZooOptions): ZooSettings {
  const o = isObject('', options);
  for (const key of ['layersF', 'layersG', 'sample']) {
    if (o[key] !== undefined)
      throw new UsageError((n) => `${n(key)} does not apply to a zoo: it compares whole models (${n('layers')} and ${n('probes')} select for every model)`);
  }
  knownKeys('', o, ZOO_KEYS);
  if ((o['zoo'] === undefined) === (o['models'] === undefined)) throw new OptionTypeError('', 'must give exactly one of zoo (a zoo file) and models');
  const source = o['zoo'] === undefined ? 'the command line' : string('zoo', o['zoo']);
  const { entries, extract } = o['zoo'] === undefined ? { entries: modelInputs(o['models']), extract: null } : readZooFile(source);
  if (extract !== null) checkModelFeeds(source, entries, extract);
  const out = resolve(string('out', o['out']));
  return {
    ...runSettings(o),
    entries,
    extract,
    source,
    out,
    store: resolve(optional(o['store'], (v) => string('store', v), join(out, STORE_NAME))),
    storeWaitMs: num(OPTIONS.storeWait, o['storeWait']) * 1000,
  };
}
