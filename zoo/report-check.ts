/**
 * A stored pair's report, checked before a store takes it from an export or
 * a zoo shows it: its shape, and each number within what a report can hold
 * (shared/core/report.ts): a score, a chance level or a layer's mean S is a
 * mean of |rho| / (1 + depth gap), so in [0, 1]; counts are whole; nothing is
 * infinite (JSON's 1e999 parses as Infinity). And it must fit its key: a
 * content key stands for one set of activations, so every report that names
 * it under the same options describes that model alike (layers, neurons,
 * probes), both sides alike when F and G are the same key, and alike to the
 * models a zoo run has in hand.
 */
import type { LayerRow, Model, Report } from '../shared/core/index.js';
import type { PairKey } from './pair-key.js';

const MODES = ['paper', 'penalized'] as const;
const DIRECTIONS = ['forward', 'backward', 'symmetric'] as const;
const SIDES = ['F', 'G'] as const;
type Side = (typeof SIDES)[number];

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isFinite = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
/** JSON has no NaN: a report writes one (a mean over no neuron, an undefined z) as null. */
const orNull = (test: (v: unknown) => boolean) => (v: unknown) => v === null || test(v);

/** The first of `checks` (a path and whether its value passes) that fails, as a problem. */
function first(checks: readonly (readonly [string, boolean])[], what: string): string | null {
  const bad = checks.find(([, ok]) => !ok);
  return bad === undefined ? null : `"${bad[0]}" must be ${what}`;
}

function directions(path: string, value: unknown, test: (v: unknown) => boolean): [string, boolean][] {
  return DIRECTIONS.map((d) => [`${path}.${d}`, isRecord(value) && test(value[d])]);
}

/** What is wrong with `value` as a single pair's report, or null. */
export function reportProblem(value: unknown): string | null {
  if (!isRecord(value)) return 'it must be an object';
  if (value['version'] !== 1) return '"version" must be 1';
  const models = value['models'];
  if (!isRecord(models) || typeof models['F'] !== 'string' || typeof models['G'] !== 'string') return '"models" must be {"F": path, "G": path}';
  if (!MODES.some((m) => m === value['match'])) return '"match" must be "paper" or "penalized"';
  const bound = isRecord(value['precision']) ? value['precision']['bestRhoBound'] : undefined;
  if (!isFinite(bound) || (bound as number) < 0 || (bound as number) > 1) return '"precision.bestRhoBound" must be a number from 0 to 1';
  // A |rho| summed in float32 may pass 1 by up to the report's own bound (the diagonal of a zoo is 1.0000001).
  const isUnit = (v: unknown): boolean => typeof v === 'number' && v >= 0 && v <= 1 + (bound as number);
  const scores = value['scores'];
  const units = first(
    [
      ...MODES.flatMap((mode) => directions(`scores.${mode}`, isRecord(scores) ? scores[mode] : null, orNull(isUnit))),
      ...directions('chance', value['chance'], isUnit),
    ],
    "a number from 0 to 1 (within the report's precision.bestRhoBound)",
  );
  if (units !== null) return units;
  const neurons = value['neurons'];
  const constant = value['constant'];
  if (!Array.isArray(neurons) || neurons.length !== 2 || !neurons.every(isCount)) return '"neurons" must be [n_F, n_G]';
  if (!Array.isArray(constant) || constant.length !== 2 || !constant.every((c, k) => isCount(c) && c <= (neurons[k] as number)))
    return '"constant" must be [c_F, c_G], each at most its side\'s neurons';
  const { probes, samples } = value;
  if (!isCount(probes) || probes < 1 || !isCount(samples) || samples < probes) return '"probes" and "samples" must be whole numbers, samples >= probes >= 1';
  const counts = first(
    ['tiles', 'pairs', 'seconds', 'pairsPerSecond'].map((k) => [k, isFinite(value[k]) && (value[k] as number) >= 0]),
    'a finite number >= 0',
  );
  return counts ?? layersProblem(value['layers'], neurons, constant, isUnit) ?? nullProblem(value['null'], isUnit);
}

function layersProblem(layers: unknown, neurons: readonly number[], constant: readonly number[], isUnit: (v: unknown) => boolean): string | null {
  if (!Array.isArray(layers)) return '"layers" must be an array';
  for (const [i, row] of layers.entries()) {
    const ok =
      isRecord(row) &&
      SIDES.some((s) => s === row['model']) &&
      typeof row['name'] === 'string' &&
      isFinite(row['depth']) &&
      Array.isArray(row['shape']) &&
      row['shape'].every(isCount) &&
      isCount(row['neurons']) &&
      isCount(row['constant']) &&
      row['constant'] <= row['neurons'] &&
      isRecord(row['mean']) &&
      MODES.every((m) => orNull(isUnit)((row['mean'] as Record<string, unknown>)[m]));
    if (!ok) return `"layers[${i}]" must be a layer row (model F or G, name, depth, shape, neurons, constant, mean S from 0 to 1 per mode)`;
  }
  const rows = layers as LayerRow[];
  for (const [k, side] of SIDES.entries()) {
    const mine = rows.filter((r) => r.model === side);
    const sum = (f: (r: LayerRow) => number) => mine.reduce((s, r) => s + f(r), 0);
    if (sum((r) => r.neurons) !== neurons[k] || sum((r) => r.constant) !== constant[k])
      return `the layers of ${side} must add up to its "neurons" and "constant"`;
  }
  return null;
}

function nullProblem(value: unknown, isUnit: (v: unknown) => boolean): string | null {
  if (value === null) return null;
  if (!isRecord(value) || !isCount(value['permutations']) || value['permutations'] < 1) return '"null" must be null or a null report with "permutations" >= 1';
  const scores = value['scores'];
  const stat = (v: unknown) =>
    isRecord(v) &&
    orNull(isUnit)(v['mean']) &&
    ['sd', 'se', 'correctedSe'].every((k) => orNull((x) => isFinite(x) && (x as number) >= 0)(v[k])) &&
    ['z', 'corrected'].every((k) => orNull(isFinite)(v[k]));
  return first(
    MODES.flatMap((mode) => directions(`null.scores.${mode}`, isRecord(scores) ? scores[mode] : null, stat)),
    '{mean from 0 to 1, sd, se, z, corrected, correctedSe: finite numbers or null}',
  );
}

export function isReport(value: unknown): value is Report {
  return reportProblem(value) === null;
}

/** How a report describes one side's model: probes, samples and each layer (name, depth, shape, neurons, constant). */
export function sideSignature(report: Report, side: Side): string {
  const rows = report.layers.filter((l) => l.model === side).map((l) => [l.name, l.depth, l.shape, l.neurons, l.constant]);
  return JSON.stringify([report.probes, report.samples, rows]);
}

/**
 * Checks each record's report against its key, as records come: a content
 * key under one options key and score version describes the same model in
 * every record, and in the pairs the store holds (`stored` gives the
 * signature a stored pair has for a content key, or null).
 */
export class KeyCheck {
  private readonly seen = new Map<string, { signature: string; where: string }>();

  constructor(private readonly stored: (content: string, key: PairKey) => string | null) {}

  /** What is wrong with `report` under `key` (from `where`, e.g. "line 4"), or null; remembers its sides. */
  problem(key: PairKey, report: Report, where: string): string | null {
    const [f, g] = [sideSignature(report, 'F'), sideSignature(report, 'G')];
    if (key.f === key.g && f !== g)
      return '"report" does not fit its key: "f" and "g" are the same content key, but its F and G sides describe different models';
    for (const [side, content, signature] of [['F', key.f, f] as const, ['G', key.g, g] as const]) {
      const id = `${content} ${key.options} ${key.version}`;
      let known = this.seen.get(id);
      if (known === undefined) {
        const stored = this.stored(content, key);
        known = { signature: stored ?? signature, where: stored === null ? where : 'a pair the store holds' };
        this.seen.set(id, known);
      }
      if (known.signature !== signature) {
        return `"report" does not fit its key: its ${side} side describes another model (layers, neurons or probes) than ${known.where} does for the same content key ${content.slice(0, 12)}..; a record was relabelled or edited`;
      }
    }
    return null;
  }
}

/** Whether `report` describes `f` and `g` as a zoo run has planned them (neurons, probes, layers): a stored report that does not is not theirs. */
export function fitsModels(report: Report, f: Model, g: Model): boolean {
  const side = (s: Side, model: Model) => {
    const rows = report.layers.filter((l) => l.model === s);
    return rows.length === model.layers.length && rows.every((r, h) => r.name === model.layers[h]!.name && r.neurons === model.layers[h]!.count);
  };
  return report.neurons[0] === f.n && report.neurons[1] === g.n && report.probes === f.probes && report.samples === f.m && side('F', f) && side('G', g);
}
