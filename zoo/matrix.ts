/**
 * The zoo's numbers, read from each pair's report and nothing else: the long
 * table (one row per ordered pair, match mode and direction) behind
 * matrix.csv and matrix.arrow, and the K x K matrices behind matrix.json and
 * the heatmaps. Entry [i][j] of a matrix is the pair (F = models[i],
 * G = models[j]) in that direction; the diagonal (F = G) is included.
 */
import { MATCH_MODES, type MatchMode } from '../shared/core/index.js';
import { InternalError } from '../shared/errors.js';
import type { ZooPair, ZooResult } from './types.js';

export const DIRECTIONS = ['forward', 'backward', 'symmetric'] as const;
export type Direction = (typeof DIRECTIONS)[number];

/** The value columns of the long table, in order; null where the permutation null is off. */
export const VALUE_COLUMNS = ['raw', 'null_mean', 'null_se', 'corrected', 'corrected_se', 'z'] as const;
export type ValueColumn = (typeof VALUE_COLUMNS)[number];

/** One row of the long table. */
export interface ZooRow {
  readonly f: string;
  readonly g: string;
  readonly mode: MatchMode;
  readonly direction: Direction;
  readonly values: Readonly<Record<ValueColumn, number | null>>;
}

/** The pairs as a K x K grid, [i][j] = (F = models[i], G = models[j]); fails (internal error) unless every ordered pair is there exactly once. */
export function pairGrid(result: ZooResult): ZooPair[][] {
  const index = new Map(result.models.map((m, i) => [m.name, i]));
  if (index.size !== result.models.length) throw new InternalError('zoo result: two models have the same name');
  const k = result.models.length;
  const grid: (ZooPair | undefined)[][] = Array.from({ length: k }, () => new Array<ZooPair | undefined>(k).fill(undefined));
  for (const pair of result.pairs) {
    const [i, j] = [index.get(pair.f), index.get(pair.g)];
    if (i === undefined || j === undefined) throw new InternalError(`zoo result: pair ${pair.f} x ${pair.g} names a model the zoo does not list`);
    if (grid[i]![j] !== undefined) throw new InternalError(`zoo result: pair ${pair.f} x ${pair.g} is listed twice`);
    grid[i]![j] = pair;
  }
  return grid.map((row, i) =>
    row.map((pair, j) => {
      if (pair === undefined) throw new InternalError(`zoo result: pair ${result.models[i]!.name} x ${result.models[j]!.name} is missing`);
      return pair;
    }),
  );
}

/** A pair's values in one mode and direction, from its report. */
export function pairValues(pair: ZooPair, mode: MatchMode, direction: Direction): Record<ValueColumn, number | null> {
  const stat = pair.report.null?.scores[mode][direction] ?? null;
  return {
    raw: pair.report.scores[mode][direction],
    null_mean: stat?.mean ?? null,
    null_se: stat?.se ?? null,
    corrected: stat?.corrected ?? null,
    corrected_se: stat?.correctedSe ?? null,
    z: stat?.z ?? null,
  };
}

/** The long table: model order F-major, then match mode, then direction. */
export function zooRows(result: ZooResult): ZooRow[] {
  const rows: ZooRow[] = [];
  for (const line of pairGrid(result)) {
    for (const pair of line) {
      for (const mode of MATCH_MODES) {
        for (const direction of DIRECTIONS) rows.push({ f: pair.f, g: pair.g, mode, direction, values: pairValues(pair, mode, direction) });
      }
    }
  }
  return rows;
}

/** A CSV field: quoted when it holds a comma, a quote or a line break. */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** A number as pandas and polars read it back exactly: the shortest round-trip form; empty for null, `inf`, `-inf`, `NaN`. */
export function csvNumber(x: number | null): string {
  if (x === null) return '';
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  return String(x);
}

export const CSV_HEADER = ['f', 'g', 'mode', 'direction', ...VALUE_COLUMNS] as const;

/** matrix.csv: a header, then one line per row. */
export function matrixCsv(rows: readonly ZooRow[]): string {
  const lines = [CSV_HEADER.join(',')];
  for (const r of rows) {
    lines.push([csvField(r.f), csvField(r.g), r.mode, r.direction, ...VALUE_COLUMNS.map((c) => csvNumber(r.values[c]))].join(','));
  }
  return `${lines.join('\n')}\n`;
}

/** The matrices of one mode and direction, keyed as matrix.json spells them. */
export interface DirectionMatrices {
  readonly raw: (number | null)[][];
  readonly nullMean: (number | null)[][];
  readonly nullSe: (number | null)[][];
  readonly corrected: (number | null)[][];
  readonly correctedSe: (number | null)[][];
  readonly z: (number | null)[][];
}

const JSON_KEYS: Readonly<Record<keyof DirectionMatrices, ValueColumn>> = {
  raw: 'raw',
  nullMean: 'null_mean',
  nullSe: 'null_se',
  corrected: 'corrected',
  correctedSe: 'corrected_se',
  z: 'z',
};

/** Every mode and direction's K x K matrices, in model order. */
export function zooMatrices(result: ZooResult): Record<MatchMode, Record<Direction, DirectionMatrices>> {
  const grid = pairGrid(result);
  const out = {} as Record<MatchMode, Record<Direction, DirectionMatrices>>;
  for (const mode of MATCH_MODES) {
    const byDirection = {} as Record<Direction, DirectionMatrices>;
    for (const direction of DIRECTIONS) {
      const values = grid.map((line) => line.map((pair) => pairValues(pair, mode, direction)));
      const matrices = {} as Record<keyof DirectionMatrices, (number | null)[][]>;
      for (const [key, column] of Object.entries(JSON_KEYS) as [keyof DirectionMatrices, ValueColumn][]) {
        matrices[key] = values.map((line) => line.map((v) => v[column]));
      }
      byDirection[direction] = matrices;
    }
    out[mode] = byDirection;
  }
  return out;
}

/** Whether every pair has the permutation null (so corrected scores exist). */
export const hasNull = (result: ZooResult): boolean => result.pairs.length > 0 && result.pairs.every((p) => p.report.null !== null);
