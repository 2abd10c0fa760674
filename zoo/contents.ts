/**
 * What each file of a zoo's output folder holds, built in memory from a
 * ZooResult (outputs.ts writes them). Every number comes from the pairs'
 * reports as they are: matrix.csv, matrix.json and matrix.arrow agree with
 * them exactly.
 */
import type { MatchMode } from '../shared/core/index.js';
import { matrixArrow } from './arrow-table.js';
import { heatmapSvg } from './heatmap.js';
import { reportHtml } from './html.js';
import { hasNull, matrixCsv, zooMatrices, zooRows } from './matrix.js';
import { averageLinkage, symmetricDistance, type Merge } from './order.js';
import { rasterize } from './png.js';
import type { ZooResult } from './types.js';

/** The marker that says neurocorr zoo wrote a folder; written last. */
export const ZOO_MARKER = 'zoo.json';
export const ZOO_FORMAT = 'neurocorr-zoo';
/** The files of an output folder, in the order they are renamed into place (the marker last). */
export const ZOO_FILES = ['matrix.csv', 'matrix.json', 'matrix.arrow', 'heatmap.svg', 'heatmap.png', 'report.html', ZOO_MARKER] as const;
/** The results store's files when it is in the output folder (its default place): kept there, never written by the outputs. */
export const STORE_NAME = 'zoo.sqlite';
export const STORE_FILES = [STORE_NAME, `${STORE_NAME}-wal`, `${STORE_NAME}-shm`, `${STORE_NAME}-journal`] as const;
/** The folder of extracted sets (a zoo whose file names models): the zoo's own, listed in its marker. */
export const EXTRACTED_DIR = 'extracted';
export type ZooFileName = (typeof ZOO_FILES)[number];

export interface ZooFile {
  readonly name: ZooFileName;
  readonly chunks: Iterable<string | Uint8Array>;
}

/** How the heatmaps order the models (order.ts): the clustering, on the corrected score when every pair has a null, else on the raw score. */
export interface ZooOrder {
  readonly score: 'corrected' | 'raw';
  readonly mode: MatchMode;
  /** Model indices in leaf order. */
  readonly order: readonly number[];
  readonly merges: readonly Merge[];
  /** The same, in words, for the figure and the page. */
  readonly description: string;
}

export function zooOrder(result: ZooResult): ZooOrder {
  const score = hasNull(result) ? 'corrected' : 'raw';
  const forward = zooMatrices(result)[result.match].forward;
  const { order, merges } = averageLinkage(symmetricDistance(forward[score]));
  const description = `average-linkage clustering of the ${score} score (${result.match}), distance 1 \u2212 (C[F][G] + C[G][F]) / 2`;
  return { score, mode: result.match, order, merges, description };
}

/** matrix.json: the models, the clustering, and each mode and direction's K x K matrices in model order (null: no null, or a value JSON cannot hold). */
export function matrixJson(result: ZooResult, order: ZooOrder): string {
  const names = result.models.map((m) => m.name);
  const json = {
    format: 'neurocorr-zoo-matrix',
    version: 1,
    layout: 'matrices[mode][direction][field][i][j] is the pair F = models[i], G = models[j]',
    match: result.match,
    models: result.models,
    order: order.order.map((i) => names[i]!),
    clustering: {
      method: 'average linkage',
      distance: '1 - (C[F][G] + C[G][F]) / 2',
      score: order.score,
      mode: order.mode,
      direction: 'forward',
      merges: order.merges,
    },
    options: result.options,
    computed: result.computed,
    reused: result.reused,
    ...(result.extraction !== undefined ? { extraction: result.extraction } : {}),
    seconds: result.seconds,
    matrices: zooMatrices(result),
  };
  return `${JSON.stringify(json, null, 1)}\n`;
}

/** zoo.json: what wrote the folder and which files are its own (only those are ever replaced); `result` null: a folder claimed before its first outputs. */
export function zooMarker(result: ZooResult | null): string {
  const marker = {
    format: ZOO_FORMAT,
    tag: 'neurocorr zoo',
    version: 1,
    models: result?.models.map((m) => m.name) ?? [],
    pairs: result?.pairs.length ?? 0,
    files: [...ZOO_FILES.filter((f) => f !== ZOO_MARKER), ...(result?.models.some((m) => m.model !== undefined) ? [EXTRACTED_DIR] : [])],
  };
  return `${JSON.stringify(marker, null, 1)}\n`;
}

const reorder = <T>(matrix: readonly (readonly T[])[], order: readonly number[]): T[][] => order.map((i) => order.map((j) => matrix[i]![j]!));

/** Every file's contents, in ZOO_FILES order. */
export async function zooFiles(result: ZooResult): Promise<ZooFile[]> {
  const rows = zooRows(result);
  const order = zooOrder(result);
  const forward = zooMatrices(result)[result.match].forward;
  const svg = await heatmapSvg({
    names: order.order.map((i) => result.models[i]!.name),
    mode: result.match,
    raw: reorder(forward.raw, order.order),
    corrected: hasNull(result) ? reorder(forward.corrected, order.order) : null,
    orderedBy: order.description,
  });
  const png = await rasterize(svg);
  return [
    { name: 'matrix.csv', chunks: [matrixCsv(rows)] },
    { name: 'matrix.json', chunks: [matrixJson(result, order)] },
    { name: 'matrix.arrow', chunks: [matrixArrow(rows)] },
    { name: 'heatmap.svg', chunks: [svg] },
    { name: 'heatmap.png', chunks: [png.png] },
    { name: 'report.html', chunks: [reportHtml({ result, order: order.order, svg, orderedBy: order.description })] },
    { name: ZOO_MARKER, chunks: [zooMarker(result)] },
  ];
}
