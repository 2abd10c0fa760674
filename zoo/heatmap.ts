/**
 * heatmap.svg: the headline mode's forward scores (row F, column G) as two
 * heatmaps side by side, the raw score and the chance-corrected score, drawn
 * with vega-lite and rendered by vega in Node (no browser, no canvas). Models
 * are in the clustering order (order.ts). Colour scales are fixed so nightly
 * runs compare at a glance: raw on [0, 1] (viridis, sequential), corrected
 * on [-1, 1] (blue-orange, diverging at 0 = chance; values past the ends are
 * clamped). Without a permutation null there is no corrected score: one panel.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { MatchMode } from '../shared/core/index.js';
import { vegaTextWidth, type TextItem } from './text-width.js';

/** The font the SVG names; heatmap.png is rendered with DejaVu Sans loaded explicitly (png.ts), so the PNG needs no system fonts. */
export const HEATMAP_FONT = 'DejaVu Sans, Verdana, Arial, sans-serif';

export interface HeatmapInput {
  /** Model names in display order. */
  readonly names: readonly string[];
  readonly mode: MatchMode;
  /** Forward scores, [i][j] = (F = names[i], G = names[j]), in display order. */
  readonly raw: readonly (readonly (number | null)[])[];
  /** Forward corrected scores in display order, or null when the permutation null is off. */
  readonly corrected: readonly (readonly (number | null)[])[] | null;
  /** What ordered the models, for the subtitle. */
  readonly orderedBy: string;
}

interface Cell {
  readonly f: string;
  readonly g: string;
  readonly value: number;
}

function cells(names: readonly string[], matrix: readonly (readonly (number | null)[])[]): Cell[] {
  const out: Cell[] = [];
  names.forEach((f, i) =>
    names.forEach((g, j) => {
      const value = matrix[i]?.[j] ?? null;
      if (value !== null && Number.isFinite(value)) out.push({ f, g, value });
    }),
  );
  return out;
}

/** Side of a cell in pixels: large for a few models, at least 14 px for many. */
export const cellSize = (k: number): number => Math.max(14, Math.min(40, Math.floor(560 / Math.max(1, k))));

interface PanelStyle {
  readonly title: string;
  readonly subtitle: string;
  readonly legend: string;
  readonly scheme: 'viridis' | 'blueorange';
  readonly domain: readonly [number, number];
  readonly domainMid?: number;
  /** Cell values where the colour is dark enough for white text. */
  readonly darkTest: string;
}

type HConcat = Extract<TopLevelSpec, { hconcat: unknown }>;
type Panel = Extract<HConcat['hconcat'][number], { layer: unknown }>;

function panel(input: HeatmapInput, values: Cell[], style: PanelStyle): Panel {
  const k = input.names.length;
  const cell = cellSize(k);
  const side = cell * k;
  const domain = [...input.names];
  const labelLimit = 180;
  const layers: Panel['layer'] = [
    {
      mark: { type: 'rect', stroke: 'white', strokeWidth: k > 30 ? 0.25 : 0.75, aria: false },
      encoding: {
        color: {
          field: 'value',
          type: 'quantitative',
          title: style.legend,
          scale: { scheme: style.scheme, domain: [...style.domain], clamp: true, ...(style.domainMid !== undefined ? { domainMid: style.domainMid } : {}) },
          legend: { gradientLength: Math.max(120, Math.min(side, 240)), titleFontSize: 11, labelFontSize: 10, format: '.1f' },
        },
      },
    },
  ];
  // Values in the cells while they fit (up to about 18 models).
  if (cell >= 30) {
    layers.push({
      mark: { type: 'text', fontSize: 10, aria: false },
      encoding: {
        text: { field: 'value', type: 'quantitative', format: '.2f' },
        color: { condition: { test: style.darkTest, value: 'white' }, value: '#1a1a1a' },
      },
    });
  }
  return {
    title: { text: style.title, subtitle: style.subtitle, anchor: 'start', fontSize: 13, subtitleFontSize: 10, subtitleColor: '#555' },
    data: { values },
    width: side,
    height: side,
    encoding: {
      x: {
        field: 'g',
        type: 'nominal',
        scale: { domain },
        title: 'G (column model)',
        axis: { labelAngle: -45, labelAlign: 'right', labelLimit, labelFontSize: k > 30 ? 8 : 11, ticks: false, domain: false, labelPadding: 4 },
      },
      y: {
        field: 'f',
        type: 'nominal',
        scale: { domain },
        title: 'F (row model)',
        axis: { labelLimit, labelFontSize: k > 30 ? 8 : 11, ticks: false, domain: false, labelPadding: 4 },
      },
    },
    layer: layers,
  };
}

/** The vega-lite specification of the heatmaps (inline data only: rendering it reads nothing). */
export function heatmapSpec(input: HeatmapInput): TopLevelSpec {
  const mode = input.mode;
  const panels: Panel[] = [
    panel(input, cells(input.names, input.raw), {
      title: `raw score (${mode}, forward)`,
      subtitle: 'mean best match of F\u2019s neurons in G',
      legend: 'raw',
      scheme: 'viridis',
      domain: [0, 1],
      darkTest: 'datum.value < 0.6',
    }),
  ];
  if (input.corrected !== null) {
    panels.push(
      panel(input, cells(input.names, input.corrected), {
        title: `corrected score (${mode}, forward)`,
        subtitle: '(raw \u2212 chance) / (1 \u2212 chance): 0 is chance, 1 a perfect match',
        legend: 'corrected',
        scheme: 'blueorange',
        domain: [-1, 1],
        domainMid: 0,
        darkTest: 'abs(datum.value) > 0.55',
      }),
    );
  }
  const k = input.names.length;
  const subtitle =
    input.corrected === null
      ? `rows F, columns G; ordered by ${input.orderedBy}; permutation null off (--null 0): no corrected scores`
      : `rows F, columns G; ordered by ${input.orderedBy}`;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    padding: { top: 16, left: 16, bottom: 16, right: 40 },
    title: { text: `neurocorr zoo: ${k} model${k === 1 ? '' : 's'}`, subtitle, anchor: 'start', fontSize: 15, subtitleFontSize: 11, offset: 14 },
    hconcat: panels,
    spacing: 40,
    resolve: { scale: { color: 'independent' } },
    config: { font: HEATMAP_FONT, view: { stroke: null }, axis: { titleFontSize: 11, titleColor: '#333', labelColor: '#222' } },
  };
}

/**
 * Lays text out with DejaVu Sans's real widths (text-width.ts) rather than
 * vega's guess. vega documents `textMetrics.width` as replaceable but its
 * typings leave it out; it is process-wide, and only this module renders vega.
 */
function useFontMetrics(vega: object): void {
  const metrics = (vega as { textMetrics?: { width?: (item: TextItem, text: unknown) => number } }).textMetrics;
  if (metrics !== undefined) metrics.width = vegaTextWidth;
}

/** heatmap.svg: the specification rendered by vega in Node (renderer 'none': no canvas, no browser). */
export async function heatmapSvg(input: HeatmapInput): Promise<string> {
  // vega and vega-lite take about half a second to load: only writing the outputs pays for it.
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const { View, parse } = vega;
  useFontMetrics(vega);
  const view = new View(parse(compile(heatmapSpec(input)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
