/**
 * report.html: one self-contained page. The heatmap SVG, the style sheet, the
 * script and the data are inline; a strict Content-Security-Policy allows
 * exactly that style sheet and that script (by hash) and no request at all,
 * so the page opens offline and can load nothing. Every name, tag and path
 * comes from user files and is escaped. The page holds the heatmaps, the
 * models, a sortable table of every ordered pair (headline mode) and, for
 * each pair, a collapsed <details> with its chance level and per-layer
 * breakdown (filled in from the page's JSON when opened).
 */
import { createHash } from 'node:crypto';
import type { MatchMode } from '../shared/core/index.js';
import { REPORT_CSS, REPORT_SCRIPT } from './html-assets.js';
import { pairData, scriptJson } from './html-data.js';
import { pairGrid, pairValues } from './matrix.js';
import type { ZooPair, ZooResult } from './types.js';

/** Text or an attribute value, escaped for HTML. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** The page's policy: nothing but its own inline style sheet and script, and no request of any kind. */
export function contentSecurityPolicy(css: string, script: string): string {
  return [
    "default-src 'none'",
    `style-src ${sha256(css)}`,
    `script-src ${sha256(script)}`,
    "img-src 'none'",
    "connect-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
}

const fmt = (x: number | null, digits = 4): string => (x === null ? '\u2014' : Number.isFinite(x) ? x.toFixed(digits) : String(x));
/** A sort key: full precision, empty for missing and NaN. */
const key = (x: number | null): string => (x === null || Number.isNaN(x) ? '' : String(x));

export interface ReportInput {
  readonly result: ZooResult;
  /** Model indices in the heatmaps' order. */
  readonly order: readonly number[];
  readonly svg: string;
  /** What ordered the models, in words. */
  readonly orderedBy: string;
}

const pairId = (index: number): string => `pair-${index}`;

function header(result: ZooResult): string {
  const k = result.models.length;
  const options = Object.entries(result.options)
    .map(([name, value]) => `<code>${escapeHtml(name)}: ${escapeHtml(JSON.stringify(value) ?? 'undefined')}</code>`)
    .join(' ');
  return `<header>
<h1>neurocorr zoo: ${k} model${k === 1 ? '' : 's'}</h1>
<p class="muted">${result.pairs.length} ordered pairs (diagonal included): ${result.computed} computed, ${result.reused} reused from the results store, ${result.seconds.toFixed(1)} s. Headline match mode <b>${escapeHtml(result.match)}</b>.</p>
<p class="muted">Options: ${options === '' ? 'none' : options}</p>
</header>`;
}

function heatmapSection(input: ReportInput): string {
  return `<section id="heatmap">
<h2>Heatmaps</h2>
<figure>${input.svg}</figure>
<p class="note">Row F, column G: the forward score, the mean over F\u2019s neurons of each one\u2019s best match in G (${escapeHtml(input.result.match)} mode). The corrected score is (raw \u2212 chance) / (1 \u2212 chance) with the permutation null as chance: 0 is what unrelated models of these sizes score on these probes, 1 a perfect match. Models are ordered by ${escapeHtml(input.orderedBy)}.</p>
</section>`;
}

function modelsSection(result: ZooResult): string {
  const rows = result.models.map(
    (m) =>
      `<tr><td>${escapeHtml(m.name)}</td><td>${m.tags.map((t) => `<span class="tag">${escapeHtml(t)}</span>`).join('')}</td><td class="num">${m.neurons}</td><td class="num">${m.probes}</td><td>${escapeHtml(m.fingerprint ?? '\u2014')}</td><td class="path">${escapeHtml(m.path)}</td></tr>`,
  );
  return `<section id="models">
<h2>Models</h2>
<div class="wrap"><table><thead><tr><th>name</th><th>tags</th><th class="num">neurons</th><th class="num">probes</th><th>probe fingerprint</th><th>activations</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table></div>
</section>`;
}

interface Column {
  readonly title: string;
  readonly hint: string;
  readonly numeric: boolean;
}

function pairColumns(mode: MatchMode): Column[] {
  return [
    { title: 'F', hint: 'row model', numeric: false },
    { title: 'G', hint: 'column model', numeric: false },
    { title: 'raw \u2192', hint: `forward score (${mode}): F's neurons matched in G`, numeric: true },
    { title: 'raw \u2190', hint: `backward score (${mode}): G's neurons matched in F`, numeric: true },
    { title: 'raw \u2194', hint: `symmetric score (${mode}): the mean of both directions`, numeric: true },
    { title: 'chance \u2192', hint: 'forward permutation null: mean', numeric: true },
    { title: '\u00b1 se', hint: "standard error of the null's mean", numeric: true },
    { title: 'corrected \u2192', hint: 'forward corrected score: (raw - chance) / (1 - chance)', numeric: true },
    { title: '\u00b1 se', hint: 'standard error of the corrected score', numeric: true },
    { title: 'z \u2192', hint: 'forward z-score against the null', numeric: true },
    { title: 'corrected \u2194', hint: 'symmetric corrected score', numeric: true },
    { title: 'analytic \u2192', hint: 'analytic chance level (expected best |r| of independent neurons), forward', numeric: true },
    { title: 'reused', hint: 'taken from the results store', numeric: false },
  ];
}

function pairRow(pair: ZooPair, index: number, mode: MatchMode): string {
  const forward = pairValues(pair, mode, 'forward');
  const backward = pairValues(pair, mode, 'backward');
  const symmetric = pairValues(pair, mode, 'symmetric');
  const numbers: [number | null, number][] = [
    [forward.raw, 4],
    [backward.raw, 4],
    [symmetric.raw, 4],
    [forward.null_mean, 4],
    [forward.null_se, 4],
    [forward.corrected, 4],
    [forward.corrected_se, 4],
    [forward.z, 1],
    [symmetric.corrected, 4],
    [pair.report.chance.forward, 4],
  ];
  const link = (name: string) => `<a class="pair-link" href="#${pairId(index)}">${escapeHtml(name)}</a>`;
  const cells = [
    `<td>${link(pair.f)}</td>`,
    `<td>${link(pair.g)}</td>`,
    ...numbers.map(([x, digits]) => `<td class="num" data-v="${key(x)}">${fmt(x, digits)}</td>`),
    `<td>${pair.reused ? 'yes' : 'no'}</td>`,
  ];
  return `<tr data-i="${index}">${cells.join('')}</tr>`;
}

function pairsSection(pairs: readonly ZooPair[], mode: MatchMode): string {
  const head = pairColumns(mode)
    .map(
      (c) =>
        `<th scope="col" data-type="${c.numeric ? 'number' : 'text'}"${c.numeric ? ' class="num"' : ''} title="${escapeHtml(c.hint)}"><button type="button">${c.title}</button></th>`,
    )
    .join('');
  return `<section id="pairs">
<h2>Pairs</h2>
<p class="note">Every ordered pair in the ${escapeHtml(mode)} mode (\u2192 forward, \u2190 backward, \u2194 symmetric). Click a column header to sort; click a model name for the pair\u2019s chance level and layers.</p>
<div class="scroll"><table id="pairs-table"><thead><tr>${head}</tr></thead>
<tbody>
${pairs.map((p, i) => pairRow(p, i, mode)).join('\n')}
</tbody></table></div>
</section>`;
}

function detailsSection(pairs: readonly ZooPair[], mode: MatchMode): string {
  const items = pairs.map((pair, i) => {
    const v = pairValues(pair, mode, 'forward');
    const corrected = v.corrected === null ? 'no null' : `corrected ${fmt(v.corrected)} \u00b1 ${fmt(v.corrected_se)}, z ${fmt(v.z, 1)}`;
    return `<details id="${pairId(i)}" data-pair="${i}"><summary><b>${escapeHtml(pair.f)}</b> \u2192 <b>${escapeHtml(pair.g)}</b>: raw ${fmt(v.raw)}, ${corrected}</summary><div class="body"></div></details>`;
  });
  return `<section id="details">
<h2>Per-pair details</h2>
<p class="note">Forward scores (${escapeHtml(mode)}) in the summaries; open a pair for both modes and directions, the chance level and every layer.</p>
${items.join('\n')}
</section>`;
}

/** report.html's text. */
export function reportHtml(input: ReportInput): string {
  const { result } = input;
  const grid = pairGrid(result);
  // Pairs F-major in the heatmaps' order, so the table starts as the heatmap reads.
  const pairs = input.order.flatMap((i) => input.order.map((j) => grid[i]![j]!));
  const data = scriptJson({ pairs: pairs.map(pairData) });
  const title = `neurocorr zoo: ${result.models.length} models`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(contentSecurityPolicy(REPORT_CSS, REPORT_SCRIPT))}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="neurocorr zoo">
<title>${escapeHtml(title)}</title>
<style>${REPORT_CSS}</style>
</head>
<body>
${header(result)}
${heatmapSection(input)}
${modelsSection(result)}
${pairsSection(pairs, result.match)}
${detailsSection(pairs, result.match)}
<script type="application/json" id="zoo-data">${data}</script>
<script>${REPORT_SCRIPT}</script>
</body>
</html>
`;
}
