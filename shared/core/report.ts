/** The score report: what `score --json` prints and `--out` writes. */
import { chanceLevel, samplesForChance, type ChanceLevel } from './chance.js';
import type { ConvMode, Layout, Model } from './model.js';
import type { NullReduction } from './null-reduction.js';
import { nullStats, type DirectionNull, type NullResult, type NullStat } from './null-stats.js';
import {
  MATCH_MODES,
  meanOver,
  neuronScores,
  scoresFor,
  type ConstantMode,
  type DirectionScores,
  type MatchMode,
  type NeuronScores,
  type Reduction,
} from './reduce.js';

export interface LayerRow {
  readonly model: 'F' | 'G';
  readonly name: string;
  readonly depth: number;
  readonly source: string;
  readonly shape: readonly number[];
  /** A rank >= 3 layer's layout (from its file, else the `layout` option); null where unknown (units mode) or for dense layers. */
  readonly layout: Layout | null;
  readonly neurons: number;
  readonly constant: number;
  /** Mean S of the layer's neurons, per match mode (null when every neuron is excluded). */
  readonly mean: Record<MatchMode, number | null>;
  /** Depth of each neuron's partner -> count, per match mode. */
  readonly matchDepths: Record<MatchMode, Record<string, number>>;
  /** The permutation null of `mean`, from the sampled neurons of this layer (null when none was sampled, or the null is off). */
  readonly null: Record<MatchMode, NullStat | null> | null;
}

export type Scope = 'full' | 'subset' | 'estimate';

export interface PartialInfo {
  readonly layers: readonly string[] | null;
  readonly sample: { readonly n: number; readonly seed: number } | null;
  readonly probes: number | null;
}

export interface Report {
  readonly version: 1;
  readonly models: { readonly F: string; readonly G: string };
  readonly scores: Record<MatchMode, DirectionScores>;
  readonly match: MatchMode;
  readonly constantMode: ConstantMode;
  readonly conv: ConvMode;
  /** Channels pooling: the requested side (or 'min') and the grid every layer's maps were pooled to; null without pooling. */
  readonly spatial: SpatialPooling | null;
  readonly probes: number;
  /** Samples per neuron vector: probes, or probes x spatial positions with --conv channels. */
  readonly samples: number;
  readonly neurons: readonly [number, number];
  readonly constant: readonly [number, number];
  readonly layers: readonly LayerRow[];
  readonly partial: boolean;
  readonly partialDetail: PartialInfo | null;
  /** `full`; `subset`: the exact score of the selected layers or probes; `estimate`: neurons were sampled, so the score estimates the exact one. */
  readonly scope: Scope;
  readonly precision: { readonly accumulate: string; readonly bestRhoBound: number };
  readonly kernel: string;
  readonly threads: number;
  readonly block: number;
  /** Main tiles the job ran: kernel tiles embedded, the super-tiles workers computed on a cluster (each many kernel tiles). */
  readonly tiles: number;
  readonly pairs: number;
  /**
   * Wall seconds from the start of the job (its models' headers read, none of
   * their values yet) to the merge of this pair's last tile, on every executor
   * (the job driver's clock, coordinator/job-timing.ts; docs/CLI.md, Report timings).
   */
  readonly seconds: number;
  /** `pairs` over `seconds`. */
  readonly pairsPerSecond: number;
  /** Shard-set streaming, per side: shard loads, cache hits, bytes read, read seconds, peak cached bytes; null when nothing was streamed. */
  readonly io: IoInfo | null;
  /** The analytic chance level (expected best |r| of independent vectors), known before any compute. */
  readonly chance: ChanceInfo;
  /** The permutation null of every score; null with --null 0. */
  readonly null: NullReport | null;
  /** Cluster runs: the job, the workers that returned results, and what the faults cost; null for embedded runs. */
  readonly cluster: ClusterInfo | null;
}

export interface SpatialPooling {
  readonly requested: number | 'min';
  readonly height: number;
  readonly width: number;
}

export interface ChanceInfo extends ChanceLevel {
  /** Samples per neuron the estimate assumes (probes, or probes x positions with --conv channels). */
  readonly samples: number;
  /** Probes that would bring the symmetric chance level under 0.1. */
  readonly probesForTenth: number;
}

export interface NullReport {
  readonly permutations: number;
  readonly seed: number;
  /** Neurons sampled from F and from G, each matched against the whole other model. */
  readonly sample: readonly [number, number];
  readonly tiles: number;
  /**
   * The null's share of the wall time, on every executor: the report's
   * `seconds` times the compute seconds of this pair's null tiles over the
   * compute seconds of every tile merged by then (docs/CLI.md, Report timings).
   */
  readonly seconds: number;
  /** The null's arithmetic over the main job's. */
  readonly flopsShare: number;
  /** Per match mode and direction: the null's mean, sd, standard error, the z-score and the chance-corrected score with its standard error. */
  readonly scores: Record<MatchMode, DirectionNull>;
  /** Sampled neurons that turned out constant: computed, but not used (their null S is exactly 0), per side. */
  readonly constantSampled: readonly [number, number];
  /** The standard error the default sample aims at for the headline corrected score, and whether this run met it. */
  readonly target: { readonly correctedSe: number; readonly met: boolean };
}

export interface NullRunInfo {
  readonly reduction: NullReduction;
  readonly tiles: number;
  readonly seconds: number;
}

export interface ClusterInfo {
  readonly job: string;
  readonly workers: readonly string[];
  /** Results for tiles already done (a worker that sent one twice, or a tile delivered again): merged harmlessly. */
  readonly duplicates: number;
  /** Tiles whose result came from a second or later delivery (a worker died, or was too slow to ack). */
  readonly redelivered: number;
  /** Tiles published again because their message went missing from the work queue. */
  readonly republished: number;
}

export interface StreamStatsInfo {
  readonly loads: number;
  readonly hits: number;
  readonly bytesRead: number;
  readonly readSeconds: number;
  readonly peakBytes: number;
}

export interface IoInfo {
  readonly F: StreamStatsInfo | null;
  readonly G: StreamStatsInfo | null;
  readonly memory: number;
  /** Shard file bytes read, both sides together. */
  readonly bytesRead: number;
  /** The out-of-core schedule: the side held resident, its passes, the bytes it planned to read and the block-nested-loop lower bound for the budget; null when the tiles ran in plan order. */
  readonly schedule: { readonly resident: 'F' | 'G'; readonly passes: number; readonly planned: number; readonly lowerBound: number } | null;
}

export interface RunInfo {
  readonly match: MatchMode;
  readonly constantMode: ConstantMode;
  readonly conv: ConvMode;
  readonly spatial?: SpatialPooling | null;
  readonly partial: PartialInfo | null;
  readonly kernel: string;
  readonly threads: number;
  readonly block: number;
  readonly tiles: number;
  readonly seconds: number;
  readonly io?: IoInfo | null;
  readonly cluster?: ClusterInfo | null;
  readonly null?: NullRunInfo | null;
}

export interface Scored {
  readonly report: Report;
  readonly forward: NeuronScores;
  readonly backward: NeuronScores;
}

/**
 * Bound on |best rho - float64 best rho|: float32 rounding of z (about 2^-24
 * per entry) plus float32 accumulation. Validated at 1e-5 for m <= 4096 by the
 * tests; past that we state the worst-case m * 2^-24.
 */
export function bestRhoBound(m: number, kernel: string): number {
  if (kernel === 'reference') return 1e-6;
  return m <= 4096 ? 1e-5 : m * 2 ** -24;
}

/** The standard error of the headline corrected score that the default null sample aims at. */
export const CORRECTED_SE_TARGET = 0.01;

export function buildReport(f: Model, g: Model, reduction: Reduction, run: RunInfo): Scored {
  const forward = neuronScores(reduction.forward, f, g);
  const backward = neuronScores(reduction.backward, g, f);
  const pairs = f.n * g.n;
  const scores = scoresFor(forward, backward, f, g, run.constantMode);
  const rows = [layerRows('F', f, g, forward, run.constantMode), layerRows('G', g, f, backward, run.constantMode)] as const;
  const nulls = !run.null
    ? null
    : nullStats({ reduction: run.null.reduction, models: [f, g], real: [forward, backward] }, run.constantMode, scores, [
        rows[0].map((r) => r.mean),
        rows[1].map((r) => r.mean),
      ]);
  const report: Report = {
    version: 1,
    models: { F: f.path, G: g.path },
    scores,
    match: run.match,
    constantMode: run.constantMode,
    conv: run.conv,
    spatial: run.spatial ?? null,
    probes: f.probes,
    samples: f.m,
    neurons: [f.n, g.n],
    constant: [countConstant(f), countConstant(g)],
    layers: rows.flatMap((side, k) => side.map((row, h) => ({ ...row, null: nulls === null ? null : (nulls.layers[k as 0 | 1][h] ?? null) }))),
    partial: run.partial !== null,
    partialDetail: run.partial,
    scope: scopeOf(run.partial),
    precision: { accumulate: run.kernel === 'reference' ? 'float64' : 'float32', bestRhoBound: bestRhoBound(f.m, run.kernel) },
    kernel: run.kernel,
    threads: run.threads,
    block: run.block,
    tiles: run.tiles,
    pairs,
    seconds: run.seconds,
    pairsPerSecond: run.seconds > 0 ? pairs / run.seconds : 0,
    io: run.io ?? null,
    chance: chanceInfo(f, g),
    null: nulls === null || !run.null ? null : nullReport(run.null, nulls, run.match, f, g),
    cluster: run.cluster ?? null,
  };
  return { report, forward, backward };
}

/** A sampled run estimates the exact score; a subset of layers or probes is the exact score of that subset. */
function scopeOf(partial: PartialInfo | null): Scope {
  if (partial === null) return 'full';
  return partial.sample !== null ? 'estimate' : 'subset';
}

const countConstant = (model: Model): number => model.layers.reduce((sum, l) => sum + l.constant, 0);

function chanceInfo(f: Model, g: Model): ChanceInfo {
  const spatial = f.m / f.probes;
  return { ...chanceLevel(f.m, f.n, g.n), samples: f.m, probesForTenth: Math.ceil(samplesForChance(0.1, f.n, g.n) / spatial) };
}

function nullReport(run: NullRunInfo, nulls: NullResult, match: MatchMode, f: Model, g: Model): NullReport {
  const { reduction } = run;
  const [sf, sg] = reduction.plan.samples.map((s) => s.indices.length) as [number, number];
  const k = reduction.plan.options.permutations;
  const headline = nulls.scores[match].symmetric.correctedSe;
  return {
    permutations: k,
    seed: reduction.plan.options.seed,
    sample: [sf, sg],
    tiles: run.tiles,
    seconds: run.seconds,
    flopsShare: (k * (sf * g.n + sg * f.n)) / (f.n * g.n),
    scores: nulls.scores,
    constantSampled: nulls.constantSampled,
    target: { correctedSe: CORRECTED_SE_TARGET, met: headline <= CORRECTED_SE_TARGET },
  };
}

function layerRows(label: 'F' | 'G', self: Model, other: Model, scores: NeuronScores, constantMode: ConstantMode): Omit<LayerRow, 'null'>[] {
  return self.layers.map((layer) => {
    const end = layer.start + layer.count;
    const mean = {} as Record<MatchMode, number | null>;
    const matchDepths = {} as Record<MatchMode, Record<string, number>>;
    for (const mode of MATCH_MODES) {
      const value = meanOver(scores[mode], self.constant, constantMode, layer.start, end);
      mean[mode] = Number.isNaN(value) ? null : value;
      const partnerLayers = mode === 'paper' ? scores.paperLayer : scores.penalizedLayer;
      const histogram: Record<string, number> = {};
      for (let i = layer.start; i < end; i++) {
        const depth = String(other.layers[partnerLayers[i]!]!.depth);
        histogram[depth] = (histogram[depth] ?? 0) + 1;
      }
      matchDepths[mode] = histogram;
    }
    return {
      model: label,
      name: layer.name,
      depth: layer.depth,
      source: layer.source,
      shape: layer.shape,
      layout: layer.layout ?? null,
      neurons: layer.count,
      constant: layer.constant,
      mean,
      matchDepths,
    };
  });
}

const fmt = (x: number): string => x.toFixed(4);

function chanceLine(report: Report): string {
  const n = report.null;
  if (n === null) return `  chance level ${fmt(report.chance.symmetric)} (analytic; --null 0 skipped the permutation null)`;
  const stat = n.scores[report.match].symmetric;
  const z = Number.isFinite(stat.z) ? stat.z.toFixed(1) : String(stat.z);
  return `  chance ${fmt(stat.mean)} (permutation null, ${n.permutations} x ${n.sample[0]}+${n.sample[1]} neurons, sd ${fmt(stat.sd)} across permutations; analytic ${fmt(report.chance.symmetric)}), corrected score ${fmt(stat.corrected)} ± ${fmt(stat.correctedSe)}, z ${z}`;
}

export function humanSummary(report: Report): string {
  const s = report.scores;
  const lines = [
    `neurocorr: ${report.models.F} (F) vs ${report.models.G} (G)${report.scope === 'full' ? '' : `  [${report.scope.toUpperCase()}]`}`,
    `  probes ${report.probes}${report.samples !== report.probes ? ` (${report.samples} samples per neuron)` : ''}, neurons ${report.neurons[0]} x ${report.neurons[1]}, constant ${report.constant[0]} / ${report.constant[1]}${report.constantMode === 'exclude' ? ' (excluded)' : ''}`,
    `               forward   backward  symmetric`,
    ...MATCH_MODES.map(
      (mode) => `  ${(mode + (mode === report.match ? '*' : '')).padEnd(11)}  ${fmt(s[mode].forward)}    ${fmt(s[mode].backward)}    ${fmt(s[mode].symmetric)}`,
    ),
    `  score (${report.match}, symmetric): ${fmt(s[report.match].symmetric)}`,
    chanceLine(report),
    `  kernel ${report.kernel}, ${report.threads} thread(s), ${report.tiles} tiles of <=${report.block} neurons, ${report.seconds.toFixed(2)} s, ${report.pairsPerSecond.toExponential(2)} pairs/s`,
  ];
  const c = report.cluster;
  if (c !== null) {
    lines[lines.length - 1] =
      `  kernel ${report.kernel}, ${c.workers.length} worker(s), ${report.tiles} tiles of <=${report.block} neurons, ${report.seconds.toFixed(2)} s, ${report.pairsPerSecond.toExponential(2)} pairs/s`;
    lines.push(`  job ${c.job}: ${c.redelivered} tile(s) redelivered, ${c.duplicates} duplicate result(s), ${c.republished} republished`);
  }
  if (report.null !== null && !report.null.target.met) {
    lines.push(
      `  the corrected score's standard error is above ${report.null.target.correctedSe}: a larger null sample (--null-sample) or more permutations (--null) would narrow it`,
    );
  }
  if (report.scope === 'subset')
    lines.push('  subset: the exact score of the selected layers or probes, not of the whole models (see partialDetail in --json)');
  if (report.scope === 'estimate') lines.push('  estimate: neurons were sampled (--sample), so this estimates the exact score (see partialDetail in --json)');
  return lines.join('\n');
}

/**
 * The chance warning, from the measured null when there is one (so it agrees
 * with the summary and the report), else from the analytic estimate.
 */
export function chanceWarning(report: Report): string | null {
  const measured = report.null?.scores[report.match].symmetric.mean;
  const chance = measured ?? report.chance.symmetric;
  if (chance <= 0.3) return null;
  const source = measured === undefined ? 'the analytic estimate' : 'the permutation null';
  return `warning: with ${report.probes} probes the chance level of this score is ${chance.toFixed(2)} (${source}): two unrelated models of these sizes would score that high. Use at least ${report.chance.probesForTenth} probes to bring it under 0.1 (analytic); the corrected score accounts for it.`;
}
