/**
 * The full run's time, estimated from a run's measured step times: training
 * per image-epoch as a line in the net's parameters (the CNN on its own),
 * the attack per image-iteration, a zoo by its wall time per unit of work
 * (probes x neurons x neurons) or per pair, whichever gives more, and the rest (targets,
 * activations, statistics) per net and test image.
 */
import type { ClaimConfig } from './claim-family.js';
import type { SeedZoos } from './claim-analysis.js';
import { KERNEL, type NetSpec } from './nets.js';
import { PIXELS, SIDE } from './data.js';
import { mean } from './stats.js';

export interface Estimate {
  readonly train: number;
  readonly attack: number;
  readonly zoo: number;
  readonly other: number;
  readonly total: number;
}

export function paramsOf(spec: NetSpec): number {
  if (spec.kind === 'cnn') {
    const [a, b] = spec.filters;
    return KERNEL * KERNEL * a + a + KERNEL * KERNEL * a * b + b + (SIDE / 4) * (SIDE / 4) * b * 10 + 10;
  }
  const sizes = [PIXELS, ...spec.hidden, 10];
  return sizes.slice(1).reduce((s, n, i) => s + sizes[i]! * n + n, 0);
}

export function neuronsOf(spec: NetSpec): number {
  if (spec.kind === 'cnn') return (SIDE / 2) ** 2 * spec.filters[0] + (SIDE / 4) ** 2 * spec.filters[1];
  return spec.hidden.reduce((a, b) => a + b, 0);
}

/** Least squares y = a + b x; a ratio through the origin when there is one point or the slope comes out negative. */
function line(xs: readonly number[], ys: readonly number[]): (x: number) => number {
  const mx = mean(xs);
  const my = mean(ys);
  const sxx = xs.reduce((s, x) => s + (x - mx) ** 2, 0);
  const b = sxx > 0 ? xs.reduce((s, x, i) => s + (x - mx) * (ys[i]! - my), 0) / sxx : NaN;
  if (!(b >= 0)) return (x) => (my / mx) * x;
  return (x) => my - b * mx + b * x;
}

/** `measured`: the quick run; `other`: its measured seconds outside training, attacks and zoos. */
export function estimateFull(measured: readonly SeedZoos[], mc: ClaimConfig, full: ClaimConfig, other: number, fullTest: number, fullTrain: number): Estimate {
  const mlps = mc.nets.filter((n) => n.spec.kind === 'mlp');
  const cnns = mc.nets.filter((n) => n.spec.kind === 'cnn');
  // A net or attack cached by `npm run paper` has no recorded time (NaN): it is left out of the fits.
  const finite = (xs: readonly number[]) => xs.filter(Number.isFinite);
  const perUnit = (name: string) => mean(finite(measured.map((s) => s.run.trainTimes[name]!.seconds / s.run.trainTimes[name]!.units)));
  const timed = mlps.filter((n) => Number.isFinite(perUnit(n.spec.name)));
  const mlpCost = line(
    timed.map((n) => paramsOf(n.spec)),
    timed.map((n) => perUnit(n.spec.name)),
  );
  const cnnCost = mean(finite(cnns.map((n) => perUnit(n.spec.name))));
  const runs = full.datasets.length * full.seeds.length;
  const train = runs * full.nets.reduce((s, n) => s + fullTrain * n.epochs * (n.spec.kind === 'cnn' ? cnnCost : mlpCost(paramsOf(n.spec))), 0);
  const attackPerUnit = mean(finite(measured.flatMap((s) => s.run.attackTimes.map((t) => t.seconds / t.units))));
  const attack = runs * full.epsilons.length * fullTest * full.attackIterations * attackPerUnit;
  let zoo = 0;
  for (const setting of ['published', 'corrected'] as const) {
    const zs = measured.flatMap((s) => s.zoos.filter((z) => z.setting === setting));
    // A zoo's pairs run as one job: only its wall time is known, so it scales with the work (probes x neurons x neurons) or with the pairs, whichever is larger.
    const walls = zs.filter((z) => Number.isFinite(z.wallSeconds));
    const wall = walls.reduce((a, z) => a + z.wallSeconds, 0);
    const work = walls.reduce((a, z) => a + z.pairTimes.reduce((b, t) => b + t[1], 0), 0);
    const pairs = walls.reduce((a, z) => a + z.pairTimes.length, 0);
    const probes = setting === 'published' ? 10 : fullTest;
    const fullWork = full.nets.reduce((a, f) => a + full.nets.reduce((b, g) => b + probes * neuronsOf(f.spec) * neuronsOf(g.spec), 0), 0);
    zoo += runs * Math.max((wall / work) * fullWork, (wall / pairs) * full.nets.length ** 2);
  }
  const scale = (full.nets.length * runs * fullTest) / (mc.nets.length * measured.length * measured[0]!.run.nTest);
  const rest = other * scale;
  return { train, attack, zoo, other: rest, total: train + attack + zoo + rest };
}
