/**
 * report.html's data for the per-pair details, embedded as JSON in a
 * `<script type="application/json">` (inert: it is parsed, never run) and
 * turned into tables by the page's script when a pair is opened. Compact
 * arrays keep a 50-model zoo's 2,500 pairs to a few megabytes; non-finite
 * numbers travel as the strings "inf", "-inf", "NaN" (JSON has no such numbers).
 */
import { MATCH_MODES, type NullStat, type Report } from '../shared/core/index.js';
import { DIRECTIONS } from './matrix.js';
import type { ZooPair } from './types.js';

type Num = number | string | null;

/** A number for the page: finite numbers to 6 decimals (the page shows 4; the matrix files keep every digit), the others as text. */
export function jsonNumber(x: number | null | undefined): Num {
  if (x === null || x === undefined) return null;
  if (Number.isFinite(x)) return Math.round(x * 1e6) / 1e6;
  return Number.isNaN(x) ? 'NaN' : x > 0 ? 'inf' : '-inf';
}

export interface PairData {
  /** Label and value lines: neurons, probes, scope, the null's size. */
  readonly info: readonly (readonly [string, string])[];
  /** mode, direction, raw, null mean, null se, null sd, corrected, corrected se, z, analytic chance. */
  readonly chance: readonly (readonly [string, string, Num, Num, Num, Num, Num, Num, Num, Num])[];
  /** model, layer, depth, neurons, constant, mean paper, mean penalized, null paper mean, se, null penalized mean, se. */
  readonly layers: readonly (readonly [string, string, number, number, number, Num, Num, Num, Num, Num, Num])[];
}

function info(pair: ZooPair): [string, string][] {
  const r = pair.report;
  const lines: [string, string][] = [
    ['F', `${pair.f} (${r.models.F})`],
    ['G', `${pair.g} (${r.models.G})`],
    ['neurons', `${r.neurons[0]} x ${r.neurons[1]} (constant ${r.constant[0]} / ${r.constant[1]}, ${r.constantMode}d)`],
    ['probes', r.samples === r.probes ? String(r.probes) : `${r.probes} (${r.samples} samples per neuron)`],
    ['scope', r.scope],
    [
      'permutation null',
      r.null === null
        ? 'off (--null 0): analytic chance only'
        : `${r.null.permutations} permutations of ${r.null.sample[0]} + ${r.null.sample[1]} sampled neurons, seed ${r.null.seed}`,
    ],
    ['result', pair.reused ? 'reused from the results store' : `computed in this run (${r.seconds.toFixed(2)} s)`],
  ];
  return lines;
}

const stat = (s: NullStat | null | undefined) => s ?? null;

function chanceRows(r: Report): PairData['chance'] {
  return MATCH_MODES.flatMap((mode) =>
    DIRECTIONS.map((direction) => {
      const s = stat(r.null?.scores[mode][direction]);
      return [
        mode,
        direction,
        jsonNumber(r.scores[mode][direction]),
        jsonNumber(s?.mean),
        jsonNumber(s?.se),
        jsonNumber(s?.sd),
        jsonNumber(s?.corrected),
        jsonNumber(s?.correctedSe),
        jsonNumber(s?.z),
        jsonNumber(r.chance[direction]),
      ] as const;
    }),
  );
}

function layerRows(r: Report): PairData['layers'] {
  return r.layers.map(
    (l) =>
      [
        l.model,
        l.name,
        l.depth,
        l.neurons,
        l.constant,
        jsonNumber(l.mean.paper),
        jsonNumber(l.mean.penalized),
        jsonNumber(l.null?.paper?.mean),
        jsonNumber(l.null?.paper?.se),
        jsonNumber(l.null?.penalized?.mean),
        jsonNumber(l.null?.penalized?.se),
      ] as const,
  );
}

export function pairData(pair: ZooPair): PairData {
  return { info: info(pair), chance: chanceRows(pair.report), layers: layerRows(pair.report) };
}

/** JSON that is safe inside a <script> element: no `<` (so no `</script>` or `<!--`), and no line separators. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}
