/**
 * The shape of the JSON documents a coordinator stores in Redis (a job's
 * spec, its report), checked before a rerun reads one back: anything else in
 * the key (another version's, a hand edit, `{"version": 1}`) is then the
 * "corrupt key" error naming the key, never a TypeError further on.
 */
import type { JobSpec } from '../../shared/cluster/index.js';
import type { Report } from '../../shared/core/index.js';

type Check = (value: unknown) => boolean;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const num: Check = (v) => typeof v === 'number';
const str: Check = (v) => typeof v === 'string';
const bool: Check = (v) => typeof v === 'boolean';
const is =
  (...values: unknown[]): Check =>
  (v) =>
    values.includes(v);
const nullOr =
  (check: Check): Check =>
  (v) =>
    v === null || check(v);
const arrayOf =
  (check: Check): Check =>
  (v) =>
    Array.isArray(v) && v.every(check);
const pairOf =
  (check: Check): Check =>
  (v) =>
    Array.isArray(v) && v.length === 2 && v.every(check);
const fields =
  (shape: Record<string, Check>): Check =>
  (v) =>
    isRecord(v) && Object.entries(shape).every(([key, check]) => check(v[key]));
const byMode = (check: Check): Check => fields({ paper: check, penalized: check });
const byDirection = (check: Check): Check => fields({ forward: check, backward: check, symmetric: check });

// JSON writes a z-score of ±Infinity as null.
const nullStat = fields({ mean: num, sd: num, se: num, z: nullOr(num), corrected: num, correctedSe: num });

/** Everything a stored report is read for: the summary, the chance warning, `--out`, a zoo's outputs. */
const report = fields({
  version: is(1),
  models: fields({ F: str, G: str }),
  scores: byMode(byDirection(num)),
  match: is('paper', 'penalized'),
  constantMode: is('include', 'exclude'),
  conv: str,
  scope: is('full', 'subset', 'estimate'),
  probes: num,
  samples: num,
  neurons: pairOf(num),
  constant: pairOf(num),
  layers: arrayOf(fields({ model: is('F', 'G'), name: str, neurons: num, mean: byMode(nullOr(num)) })),
  partial: bool,
  kernel: str,
  threads: num,
  block: num,
  tiles: num,
  pairs: num,
  seconds: num,
  pairsPerSecond: num,
  chance: fields({ forward: num, backward: num, symmetric: num, samples: num, probesForTenth: num }),
  null: nullOr(fields({ permutations: num, sample: pairOf(num), scores: byMode(byDirection(nullStat)), target: fields({ correctedSe: num, met: bool }) })),
  cluster: nullOr(fields({ job: str, workers: arrayOf(str), duplicates: num, redelivered: num, republished: num })),
});

/** A finished job's stored result: its pairs' reports (a `score` job stored before the one job driver: its report alone). */
export const isStoredResult = (value: unknown): value is Report | Report[] => report(value) || (Array.isArray(value) && value.every(report));

const inputRef: Check = (v) => isRecord(v) && (v['kind'] === 'path' ? str(v['path']) : v['kind'] === 'object' && str(v['root']) && str(v['set']));

/** What comparing a stored spec with a rerun's reads (specDifferences). */
const spec = fields({
  version: is(4),
  job: str,
  inputs: arrayOf(inputRef),
  pairs: arrayOf(fields({ f: num, g: num })),
  options: isRecord,
  m: num,
  n: arrayOf(num),
  block: num,
  span: num,
  partEntries: num,
  tiles: num,
  nulls: arrayOf(isRecord),
});

export const isStoredSpec = (value: unknown): value is JobSpec => spec(value);
