/** The study's tables and verdicts, as Markdown for bench/RESULTS.md. */
import { fmt } from './common.js';
import { depthShift, type PlaceMatch } from './diagnose.js';
import { SEMANTICS, type ModelDef, type PairResult, type Semantics, type SettingResult, type Stat } from './experiment.js';

export type Mode = 'paper' | 'penalized';

export interface Verdict {
  readonly semantics: Semantics;
  readonly probes: number;
  readonly mode: Mode;
  /** Every trained–trained pair's corrected score above every trained–random pair's. */
  readonly separates: boolean;
  /** The same on the raw score. */
  readonly separatesRaw: boolean;
  /** Lowest trained–trained minus highest trained–random corrected score, and its standard error. */
  readonly margin: number;
  readonly marginSe: number;
  readonly lowestTrained: PairResult;
  readonly highestRandom: PairResult;
  /** Pairs by corrected score, then by raw score, highest first. */
  readonly byCorrected: readonly PairResult[];
  readonly byRaw: readonly PairResult[];
}

const symmetric = (p: PairResult, mode: Mode): Stat => p[mode].symmetric;

export function isTrainedPair(p: PairResult, models: readonly ModelDef[]): boolean {
  return models.filter((m) => m.key === p.f || m.key === p.g).every((m) => m.trained);
}

export function verdict(r: SettingResult, models: readonly ModelDef[], mode: Mode = 'paper'): Verdict {
  const headline = (p: PairResult) => symmetric(p, mode);
  const trained = r.pairs.filter((p) => isTrainedPair(p, models));
  const random = r.pairs.filter((p) => !isTrainedPair(p, models));
  const lowest = (xs: readonly PairResult[], by: (s: Stat) => number) => xs.reduce((a, b) => (by(headline(b)) < by(headline(a)) ? b : a));
  const highest = (xs: readonly PairResult[], by: (s: Stat) => number) => xs.reduce((a, b) => (by(headline(b)) > by(headline(a)) ? b : a));
  const corr = (s: Stat) => s.corrected;
  const raw = (s: Stat) => s.raw;
  const lowestTrained = lowest(trained, corr);
  const highestRandom = highest(random, corr);
  return {
    semantics: r.setting.semantics,
    probes: r.setting.probes,
    mode,
    separates: headline(lowestTrained).corrected > headline(highestRandom).corrected,
    separatesRaw: headline(lowest(trained, raw)).raw > headline(highest(random, raw)).raw,
    margin: headline(lowestTrained).corrected - headline(highestRandom).corrected,
    marginSe: Math.hypot(headline(lowestTrained).correctedSe, headline(highestRandom).correctedSe),
    lowestTrained,
    highestRandom,
    byCorrected: [...r.pairs].sort((a, b) => headline(b).corrected - headline(a).corrected),
    byRaw: [...r.pairs].sort((a, b) => headline(b).raw - headline(a).raw),
  };
}

/** Short names for the tables. */
const SHORT: Readonly<Record<string, string>> = { resnet50: 'R50', 'resnet50-random': 'R50-rand', mobilenet_v2: 'MNv2', inception_v3: 'IncV3' };
export const short = (key: string): string => SHORT[key] ?? key;
export const pairName = (p: PairResult): string => `${short(p.f)}–${short(p.g)}`;
const ranking = (xs: readonly PairResult[], models: readonly ModelDef[]) =>
  xs.map((p) => (isTrainedPair(p, models) ? pairName(p) : `*${pairName(p)}*`)).join(' > ');

const yes = (v: boolean) => (v ? '**yes**' : 'no');
const margin = (v: Verdict) => `${pairName(v.lowestTrained)} − ${pairName(v.highestRandom)} = ${fmt(v.margin)} ± ${fmt(v.marginSe)}`;

/** One row per setting: paper mode (the headline) and penalized mode, corrected and raw. */
export function verdictTable(paper: readonly Verdict[], penalized: readonly Verdict[], models: readonly ModelDef[]): string[] {
  return [
    '| semantics | probes | paper: trained–trained above trained–random? | paper: lowest trained–trained − highest trained–random (corrected) | paper, raw score? | penalized? (corrected) | penalized, raw? | ranking (paper, corrected; *random partner*) | ranking (paper, raw) |',
    '| --- | ---: | --- | --- | --- | --- | --- | --- | --- |',
    ...paper.map((v, i) => {
      const q = penalized[i]!;
      return `| ${v.semantics} | ${v.probes} | ${yes(v.separates)} | ${margin(v)} | ${yes(v.separatesRaw)} | ${yes(q.separates)} (${fmt(q.margin)} ± ${fmt(q.marginSe)}) | ${yes(q.separatesRaw)} | ${ranking(v.byCorrected, models)} | ${ranking(v.byRaw, models)} |`;
    }),
  ];
}

export function scoreTable(results: readonly SettingResult[], semantics: Semantics, models: readonly ModelDef[]): string[] {
  const rows = results.filter((r) => r.setting.semantics === semantics);
  const first = rows[0]?.pairs;
  const neurons =
    first === undefined ? '' : ` Neurons per model: ${models.map((m) => `${short(m.key)} ${neuronCount(first, m.key).toLocaleString('en-US')}`).join(', ')}.`;
  return [
    `**${SEMANTICS[semantics].title}** (\`${SEMANTICS[semantics].flags.join(' ')}\`).${neurons}`,
    '',
    '| pair | probes | raw | null mean | corrected ± se | z | corrected forward / backward | rank | penalized: raw, corrected ± se |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.flatMap((r) => {
      const order = [...r.pairs].sort((a, b) => symmetric(b, 'paper').corrected - symmetric(a, 'paper').corrected);
      return order.map((p) => {
        const s = symmetric(p, 'paper');
        const q = symmetric(p, 'penalized');
        const name = isTrainedPair(p, models) ? pairName(p) : `*${pairName(p)}*`;
        return `| ${name} | ${r.setting.probes} | ${fmt(s.raw)} | ${fmt(s.nullMean)} | ${fmt(s.corrected)} ± ${fmt(s.correctedSe)} | ${fmt(s.z, 1)} | ${fmt(p.paper.forward.corrected)} / ${fmt(p.paper.backward.corrected)} | ${order.indexOf(p) + 1} | ${fmt(q.raw)}, ${fmt(q.corrected)} ± ${fmt(q.correctedSe)} |`;
      });
    }),
  ];
}

function neuronCount(pairs: readonly PairResult[], key: string): number {
  for (const p of pairs) {
    if (p.f === key) return p.neurons[0];
    if (p.g === key) return p.neurons[1];
  }
  return 0;
}

/** Depth check: how far from its own depth each side's neurons find their partner (paper mode), at the given probe counts. */
export function depthTable(
  results: readonly SettingResult[],
  semantics: readonly Semantics[],
  probes: readonly number[],
  models: readonly ModelDef[],
): string[] {
  return [
    '| semantics | probes | pair | mean \\|depth − partner depth\\| F → G / G → F | depth-3 neurons whose partner is at depth 0–1, F → G / G → F |',
    '| --- | ---: | --- | ---: | ---: |',
    ...results
      .filter((r) => semantics.includes(r.setting.semantics) && probes.includes(r.setting.probes))
      .flatMap((r) =>
        r.pairs.map((p) => {
          const d = depthShift(p);
          const name = isTrainedPair(p, models) ? pairName(p) : `*${pairName(p)}*`;
          return `| ${r.setting.semantics} | ${r.setting.probes} | ${name} | ${fmt(d.forward, 2)} / ${fmt(d.backward, 2)} | ${pct(d.deepToShallowForward)} / ${pct(d.deepToShallowBackward)} |`;
        }),
      ),
  ];
}

const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : 'n/a');

/** Place check (units): whether a unit's partner sits at the same place in the image. */
export function placeTable(rows: readonly { pair: PairResult; place: { forward: PlaceMatch; backward: PlaceMatch } }[], models: readonly ModelDef[]): string[] {
  return [
    '| pair | direction | live spatial units | partner in a spatial layer within one cell | if drawn uniformly | partner in the pooled vector |',
    '| --- | --- | ---: | ---: | ---: | ---: |',
    ...rows.flatMap(({ pair, place }) => {
      const name = isTrainedPair(pair, models) ? pairName(pair) : `*${pairName(pair)}*`;
      return (
        [
          [`${short(pair.f)} → ${short(pair.g)}`, place.forward],
          [`${short(pair.g)} → ${short(pair.f)}`, place.backward],
        ] as const
      ).map(([dir, m]) => `| ${name} | ${dir} | ${m.live.toLocaleString('en-US')} | ${pct(m.near)} | ${pct(m.chance)} | ${pct(m.pooled)} |`);
    }),
  ];
}
