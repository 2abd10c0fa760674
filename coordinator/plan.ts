/**
 * `neurocorr plan F G`: what a score would cost and mean, before any compute.
 * Reads headers only, times the kernel on one small tile, and gives the pair
 * count, the FLOPs (main job and permutation null), a time estimate for this
 * machine, and the analytic chance level with the probes needed to bring it
 * under 0.1.
 */
import { chanceLevel, samplesForChance, type ChanceLevel } from '../shared/core/index.js';
import { nullOptions } from '../shared/core/index.js';
import { isShardPlan, planPair } from '../shared/formats/index.js';
import { planSettings, type PlanOptions } from './options.js';
import { jobThreads } from './threads.js';
import { loadKernel, type KernelOptions } from '../worker/loader.js';

export interface Plan {
  readonly models: { readonly F: string; readonly G: string };
  readonly neurons: readonly [number, number];
  readonly layers: readonly [number, number];
  readonly probes: number;
  readonly samples: number;
  readonly pairs: number;
  readonly flops: { readonly main: number; readonly null: number };
  /** Permutations, and the neurons sampled from F and from G. */
  readonly null: { readonly permutations: number; readonly sample: readonly [number, number] };
  readonly kernel: string;
  readonly threads: number;
  /** Measured on one tile at this M, times the threads. */
  readonly gflopsPerSecond: number;
  /** Arithmetic only; reading and standardizing the inputs comes on top. */
  readonly seconds: number;
  readonly chance: ChanceLevel;
  readonly probesForTenth: number;
}

/** GFLOP/s of one thread on a 1024 x 1024 tile at this m (best of three, after a warm-up). */
async function measureRate(options: KernelOptions, m: number): Promise<{ name: string; rate: number }> {
  const { kernel } = await loadKernel(options);
  const n = kernel.name === 'reference' ? 128 : 1024;
  const z = Float32Array.from({ length: n * m }, (_, i) => Math.sin(i * 12.9898) * 0.1);
  let best = Infinity;
  for (let r = 0; r < 4; r++) {
    const t = performance.now();
    await kernel.computeTile({ f: z, g: z, fCount: n, gCount: n, m, fStart: 0, gStart: 0 });
    if (r > 0) best = Math.min(best, performance.now() - t);
  }
  return { name: kernel.name, rate: (2 * n * n * m) / (best / 1000) / 1e9 };
}

/** What scoring F against G would cost and mean, before any compute: headers only, plus one timed tile. */
export async function plan(options: PlanOptions): Promise<Plan> {
  const settings = planSettings(options);
  const fPath = settings.f;
  const gPath = settings.g;
  const plans = planPair(fPath, gPath, settings.pair);
  const f = plans.f.skeleton();
  const g = plans.g.skeleton();
  const nul = nullOptions(settings.null, f.n, g.n);
  const { name, rate } = await measureRate(settings.kernel, f.m);
  const cuts = [plans.f, plans.g].map((p) => (isShardPlan(p) ? p.manifest.shards.map((s) => s.first) : []));
  const threads = jobThreads(settings.threads, settings.kernel.choice, { models: [f, g], pairs: [{ f: 0, g: 1 }], cuts });
  // Two threads rarely double one; 0.9 per thread is what the kernel benchmark measures here.
  const gflopsPerSecond = rate * threads * (threads > 1 ? 0.9 : 1);
  const main = 2 * f.n * g.n * f.m;
  const sample = [Math.min(nul.sample, f.n), Math.min(nul.sample, g.n)] as const;
  const nullFlops = 2 * nul.permutations * (sample[0] * g.n + sample[1] * f.n) * f.m;
  const spatial = f.m / f.probes;
  return {
    models: { F: fPath, G: gPath },
    neurons: [f.n, g.n],
    layers: [f.layers.length, g.layers.length],
    probes: f.probes,
    samples: f.m,
    pairs: f.n * g.n,
    flops: { main, null: nullFlops },
    null: { permutations: nul.permutations, sample },
    kernel: name,
    threads,
    gflopsPerSecond,
    seconds: (main + nullFlops) / (gflopsPerSecond * 1e9),
    chance: chanceLevel(f.m, f.n, g.n),
    probesForTenth: Math.ceil(samplesForChance(0.1, f.n, g.n) / spatial),
  };
}

const seconds = (s: number): string =>
  s < 0.001
    ? 'under 1 ms'
    : s < 1
      ? `${(s * 1000).toFixed(0)} ms`
      : s < 120
        ? `${s.toFixed(1)} s`
        : s < 7200
          ? `${(s / 60).toFixed(1)} min`
          : `${(s / 3600).toFixed(1)} h`;

export function planSummary(p: Plan): string {
  const nullLine =
    p.null.permutations === 0
      ? '  permutation null: off (--null 0)'
      : `  permutation null: ${p.null.permutations} permutations x ${p.null.sample[0]}+${p.null.sample[1]} sampled neurons: ${p.flops.null.toExponential(2)} FLOP (${((100 * p.flops.null) / p.flops.main).toFixed(1)}% of the main job)`;
  const advice =
    p.probes >= p.probesForTenth
      ? `enough probes: chance is under 0.1 from ${p.probesForTenth}`
      : `use at least ${p.probesForTenth} probes to bring it under 0.1 (you have ${p.probes})`;
  return [
    `neurocorr plan: ${p.models.F} (F, ${p.neurons[0]} neurons in ${p.layers[0]} layers) vs ${p.models.G} (G, ${p.neurons[1]} neurons in ${p.layers[1]} layers)`,
    `  probes ${p.probes}${p.samples !== p.probes ? ` (${p.samples} samples per neuron)` : ''}`,
    `  pairs ${p.pairs.toExponential(2)}, main job ${p.flops.main.toExponential(2)} FLOP`,
    nullLine,
    `  this machine: ${p.kernel} at about ${p.gflopsPerSecond.toFixed(0)} GFLOP/s on ${p.threads} thread(s): ${seconds(p.seconds)} of arithmetic, plus reading the inputs`,
    `  chance level (analytic, independent samples): forward ${p.chance.forward.toFixed(3)}, backward ${p.chance.backward.toFixed(3)}, symmetric ${p.chance.symmetric.toFixed(3)}`,
    `  ${advice}`,
  ].join('\n');
}
