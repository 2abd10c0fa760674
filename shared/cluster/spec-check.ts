/**
 * A job spec as a worker reads it from the KV bucket: untrusted. Every field
 * is checked, and bounded, before anything is sized or looped over from it
 * (a part size of 0 would loop for ever; a permutation count of 3e7 would
 * fill the machine). A spec that fails is refused with a message naming the
 * field, never a stack.
 */
import { UsageError } from '../errors.js';
import { LAYOUTS, MAX_SPATIAL, type Layout } from '../core/index.js';
import type { SpatialRequest } from '../formats/index.js';
import { checkJobName, type InputRef, type JobSpec } from './protocol.js';

/** A job spec this worker will not run. */
export class SpecRefusedError extends UsageError {}

const uint32 = 2 ** 32 - 1;
/** Bounds no honest spec comes near: the planner's own limits, or far beyond any model. */
const MAX_MODELS = 4096;
const MAX_PAIRS = MAX_MODELS * MAX_MODELS;
const MAX_PROBES = 1 << 24;
const MAX_PART_ENTRIES = 1 << 24;
const MAX_PERMUTATIONS = 1000;
/** Neurons a block, and blocks a super-tile's side: the planner clips both to the models. */
const MAX_BLOCKS = 1 << 24;

type Raw = Record<string, unknown>;

const refuse = (field: string, why: string): SpecRefusedError => new SpecRefusedError(`the job's spec is refused: ${field} ${why}`);

function object(field: string, value: unknown): Raw {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw refuse(field, 'is not an object');
  return value as Raw;
}

function int(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw refuse(field, `is ${JSON.stringify(value)}, not an integer from ${min} to ${max}`);
  return value;
}

function list(field: string, value: unknown, min: number, max: number): unknown[] {
  if (!Array.isArray(value) || value.length < min || value.length > max) throw refuse(field, `is not a list of ${min} to ${max} entries`);
  return value;
}

function text(field: string, value: unknown): string {
  if (typeof value !== 'string' || value === '' || value.length > 4096) throw refuse(field, 'is not a string of 1 to 4096 characters');
  return value;
}

function names(field: string, value: unknown): readonly string[] | null {
  return value === null || value === undefined ? null : list(field, value, 1, 1_000_000).map((v, k) => text(`${field}[${k}]`, v));
}

function inputRef(field: string, value: unknown): InputRef {
  const o = object(field, value);
  // The fingerprint is the coordinator's (it tells a rerun on changed files); a worker only carries it.
  if (o['kind'] === 'path')
    return { kind: 'path', path: text(`${field}.path`, o['path']), fingerprint: typeof o['fingerprint'] === 'string' ? o['fingerprint'] : '' };
  if (o['kind'] !== 'object') throw refuse(`${field}.kind`, 'is neither path nor object');
  // The files themselves are checked name by name where they are fetched (worker/cluster/inputs.ts).
  const files = list(`${field}.files`, o['files'], 1, 1_000_000).map((f, k) => {
    const file = object(`${field}.files[${k}]`, f);
    return {
      path: text(`${field}.files[${k}].path`, file['path']),
      size: int(`${field}.files[${k}].size`, file['size'], 0, Number.MAX_SAFE_INTEGER),
      sha256: text(`${field}.files[${k}].sha256`, file['sha256']),
    };
  });
  return { kind: 'object', bucket: text(`${field}.bucket`, o['bucket']), set: text(`${field}.set`, o['set']), root: text(`${field}.root`, o['root']), files };
}

function options(value: unknown): JobSpec['options'] {
  const o = object('options', value);
  const conv = o['conv'];
  if (conv !== 'units' && conv !== 'channels') throw refuse('options.conv', 'is neither units nor channels');
  const layout = o['layout'] ?? null;
  if (layout !== null && !(LAYOUTS as readonly unknown[]).includes(layout)) throw refuse('options.layout', `is not one of ${LAYOUTS.join(', ')}`);
  const spatial: SpatialRequest | null =
    o['spatial'] === null || o['spatial'] === undefined || o['spatial'] === 'min'
      ? ((o['spatial'] ?? null) as 'min' | null)
      : int('options.spatial', o['spatial'], 1, MAX_SPATIAL);
  const sample = o['sample'] === null || o['sample'] === undefined ? null : object('options.sample', o['sample']);
  return {
    conv,
    layout: layout as Layout | null,
    spatial,
    layers: names('options.layers', o['layers']),
    layersF: names('options.layersF', o['layersF']),
    layersG: names('options.layersG', o['layersG']),
    sample: sample === null ? null : { n: int('options.sample.n', sample['n'], 1, uint32), seed: int('options.sample.seed', sample['seed'], 0, uint32) },
    probes: o['probes'] === null || o['probes'] === undefined ? null : int('options.probes', o['probes'], 2, MAX_PROBES),
  };
}

/** The spec, every field checked against its type and bounds; SpecRefusedError naming the first that is not. */
export function checkJobSpec(value: unknown): JobSpec {
  const o = object('spec', value);
  if (o['version'] !== 4) throw refuse('version', `${JSON.stringify(o['version'])} is not 4: run the same neurocorr version everywhere`);
  let job: string;
  try {
    job = checkJobName(String(o['job']));
  } catch {
    throw refuse('job', 'is not a valid job name');
  }
  const inputs = list('inputs', o['inputs'], 1, MAX_MODELS).map((v, k) => inputRef(`inputs[${k}]`, v));
  const models = inputs.length;
  const pairs = list('pairs', o['pairs'], 1, MAX_PAIRS).map((v, k) => {
    const p = object(`pairs[${k}]`, v);
    return { f: int(`pairs[${k}].f`, p['f'], 0, models - 1), g: int(`pairs[${k}].g`, p['g'], 0, models - 1) };
  });
  const n = list('n', o['n'], models, models).map((v, k) => int(`n[${k}]`, v, 1, uint32));
  const nulls = list('nulls', o['nulls'], pairs.length, pairs.length).map((v, k) => {
    const x = object(`nulls[${k}]`, v);
    return {
      permutations: int(`nulls[${k}].permutations`, x['permutations'], 0, MAX_PERMUTATIONS),
      sample: int(`nulls[${k}].sample`, x['sample'], 0, uint32),
      seed: int(`nulls[${k}].seed`, x['seed'], 0, uint32),
    };
  });
  return {
    version: 4,
    job,
    inputs,
    pairs,
    options: options(o['options']),
    m: int('m', o['m'], 2, MAX_PROBES * MAX_SPATIAL),
    n,
    block: int('block', o['block'], 1, MAX_BLOCKS),
    span: int('span', o['span'], 1, MAX_BLOCKS),
    partEntries: int('partEntries', o['partEntries'], 1, MAX_PART_ENTRIES),
    tiles: int('tiles', o['tiles'], 1, uint32),
    nulls,
  };
}

/** A spec from the KV bucket, every field checked: a worker trusts nothing it reads there. */
export function decodeJobSpec(bytes: Uint8Array): JobSpec {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new SpecRefusedError("the job's spec is refused: it is not JSON");
  }
  return checkJobSpec(value);
}
