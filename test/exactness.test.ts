/**
 * Every kernel and execution path against the independent float64 brute
 * force, on random models with constant neurons, exact ties (also across
 * layers), conv-shaped layers, one-neuron layers, M = 2 and one-layer models.
 */
import { describe, expect, it } from 'vitest';
import type { KernelChoice, KernelOptions } from '../dist/worker/loader.js';
import { bruteForce } from './helpers/brute.js';
import { runPair, type RunOptions } from './helpers/run.js';
import { bruteLayers, genModel, latents, rng, writeNpyDir, type GenOptions } from './helpers/models.js';

interface Case {
  readonly name: string;
  readonly m: number;
  readonly f: Omit<GenOptions, 'm' | 'latent'>;
  readonly g: Omit<GenOptions, 'm' | 'latent'>;
  readonly conv?: 'units' | 'channels';
}

const CASES: Case[] = [
  {
    name: 'mixed layers with constants and ties',
    m: 16,
    f: { layers: [[7], [2, 3, 3], [1]], constants: 0.1, duplicates: 0.15 },
    g: { layers: [[5], [4], [3, 2, 2]], constants: 0.1, duplicates: 0.2 },
  },
  { name: 'M = 2 (every |rho| ties)', m: 2, f: { layers: [[4], [3]] }, g: { layers: [[5], [2]], constants: 0.2 } },
  { name: 'one-layer models, one-neuron layer', m: 9, f: { layers: [[9]] }, g: { layers: [[1]] } },
  { name: 'conv-shaped layers', m: 8, f: { layers: [[3, 4, 4]], duplicates: 0.1 }, g: { layers: [[2, 4, 4], [6]], constants: 0.05 } },
  { name: 'float64 input', m: 12, f: { layers: [[6], [5]], dtype: 'f8', duplicates: 0.2 }, g: { layers: [[7]], dtype: 'f8', constants: 0.1 } },
  {
    name: 'conv channels mode',
    m: 6,
    conv: 'channels',
    f: {
      layers: [
        [4, 3, 3],
        [2, 3, 3],
      ],
      duplicates: 0.2,
    },
    g: { layers: [[5, 3, 3]], constants: 0.2 },
  },
];

function makeCase(c: Case, seed: number) {
  const latent = latents(seed, c.m, 3);
  const f = genModel(seed + 1, { ...c.f, m: c.m, latent });
  const g = genModel(seed + 2, { ...c.g, m: c.m, latent });
  return { f, g, fDir: writeNpyDir(f), gDir: writeNpyDir(g) };
}

function run(fDir: string, gDir: string, kernel: KernelChoice | KernelOptions, extra: Omit<RunOptions, 'kernel'> = {}) {
  return runPair(fDir, gDir, { kernel, ...extra });
}

const KERNELS: { label: string; kernel: KernelOptions }[] = [
  { label: 'native', kernel: { choice: 'native' } },
  { label: 'reference', kernel: { choice: 'reference' } },
  { label: 'tfjs on wasm', kernel: { choice: 'tfjs', tfjsBackend: 'wasm' } },
  { label: 'tfjs on cpu', kernel: { choice: 'tfjs', tfjsBackend: 'cpu' } },
];

describe.each(KERNELS)('kernel $label against the float64 brute force', ({ kernel }) => {
  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    const { f, g, fDir, gDir } = makeCase(c, 1000 + 17 * i);
    const conv = c.conv ?? 'units';
    for (const constant of ['include', 'exclude'] as const) {
      const expected = bruteForce(bruteLayers(f, conv), bruteLayers(g, conv), constant === 'exclude');
      const got = await run(fDir, gDir, kernel, { conv, constant, tile: 5, ...(conv === 'channels' ? { layout: 'nchw' as const } : {}) });
      if (kernel.tfjsBackend) expect(got.kernelName).toBe(`tfjs-${kernel.tfjsBackend}`);
      for (const dir of ['forward', 'backward', 'symmetric'] as const) {
        expect(got.report.scores.paper[dir]).toBeCloseTo(expected[dir].paper, 6);
        expect(got.report.scores.penalized[dir]).toBeCloseTo(expected[dir].penalized, 6);
      }
      expect(got.report.constant).toEqual([expected.constantF, expected.constantG]);
      got.reduction.forward.best.forEach((b, k) => expect(Math.abs(b - expected.bestF[k]!)).toBeLessThan(1e-5));
      got.reduction.backward.best.forEach((b, k) => expect(Math.abs(b - expected.bestG[k]!)).toBeLessThan(1e-5));
    }
  });
});

function shuffle<T>(items: T[], seed: number): T[] {
  const r = rng(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Everything the reduction decided, as one comparable value. */
function fingerprint(r: Awaited<ReturnType<typeof run>>): string {
  const { forward, backward } = r.reduction;
  const arrays = [forward.best, forward.arg, forward.pen, forward.penArg, backward.best, backward.arg, backward.pen, backward.penArg];
  return JSON.stringify([r.report.scores, r.report.null?.scores, r.report.layers.map((l) => l.null), arrays.map((a) => Array.from(a))]);
}

describe.each(KERNELS)('bit-identical results with kernel $label', ({ kernel }) => {
  it('across tile sizes 1, 7, 64 and whole-model, threads 1, 2, 4, and shuffled tile order, the permutation null included', async () => {
    const { fDir, gDir } = makeCase(CASES[0]!, 4242);
    const nul = { permutations: 2, sample: 9, seed: 3 };
    const baseline = fingerprint(await run(fDir, gDir, kernel, { tile: 1 << 20, null: nul }));
    for (const tile of [1, 7, 64]) {
      for (const threads of [1, 2, 4]) {
        expect(fingerprint(await run(fDir, gDir, kernel, { tile, threads, null: nul })), `tile ${tile} threads ${threads}`).toBe(baseline);
      }
    }
    for (const seed of [1, 2]) {
      expect(fingerprint(await run(fDir, gDir, kernel, { tile: 7, threads: 2, null: nul, order: (t) => shuffle(t, seed) }))).toBe(baseline);
    }
  });
});

describe('hand-worked 3-neuron example', () => {
  // F: u = [1,2,3,4] at depth 0. G: v1 = [1,3,2,4] at depth 0, v2 = [4,3,2,1] at depth 1.
  // rho(u,v1) = 4/5 = 0.8, |rho(u,v2)| = 1.
  // F->G paper: v* = v2, S = 1/2. penalized: max(0.8/1, 1/2) = 0.8.
  // G->F: v1 -> 0.8, v2 -> 1/2 in both modes: mean 0.65.
  it('gives both match modes and all three directions', async () => {
    const f = { layers: [{ name: 'a', shape: [4, 1], data: Float64Array.from([1, 2, 3, 4]) }], dtype: 'f8' as const };
    const g = {
      layers: [
        { name: 'b', shape: [4, 1], data: Float64Array.from([1, 3, 2, 4]) },
        { name: 'c', shape: [4, 1], data: Float64Array.from([4, 3, 2, 1]) },
      ],
      dtype: 'f8' as const,
    };
    for (const kernel of ['native', 'reference', 'tfjs'] as const) {
      const { report } = await run(writeNpyDir(f), writeNpyDir(g), kernel);
      expect(report.scores.paper.forward).toBeCloseTo(0.5, 6);
      expect(report.scores.paper.backward).toBeCloseTo(0.65, 6);
      expect(report.scores.paper.symmetric).toBeCloseTo(0.575, 6);
      expect(report.scores.penalized.forward).toBeCloseTo(0.8, 6);
      expect(report.scores.penalized.backward).toBeCloseTo(0.65, 6);
      expect(report.scores.penalized.symmetric).toBeCloseTo(0.725, 6);
    }
  });
});

describe('many random models', () => {
  // Random layer counts, shapes (dense, conv-shaped, single neurons), M and tile sizes.
  const randomCase = (seed: number): Case & { tile: number } => {
    const r = rng(seed);
    const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
    const shape = () => pick([[1], [Math.ceil(r() * 9)], [Math.ceil(r() * 3), 2, Math.ceil(r() * 3)], [2, 2, 2], [1, 1, 1]]);
    const layers = () => Array.from({ length: 1 + Math.floor(r() * 4) }, shape);
    const side = () => ({ layers: layers(), constants: r() * 0.2, duplicates: r() * 0.3, dtype: pick(['f4', 'f8'] as const) });
    return { name: `seed ${seed}`, m: pick([2, 3, 5, 16, 33]), f: side(), g: side(), tile: pick([1, 2, 3, 5, 8, 100]) };
  };
  const kernels = KERNELS.slice(0, 3);
  it.each(Array.from({ length: 12 }, (_, i) => [i] as const))('random model %i on native, reference and tfjs', async (i) => {
    const c = randomCase(7000 + i);
    const { f, g, fDir, gDir } = makeCase(c, 9000 + i);
    const expected = bruteForce(bruteLayers(f), bruteLayers(g));
    for (const { kernel } of kernels) {
      const got = await run(fDir, gDir, kernel, { tile: c.tile, threads: 2 });
      for (const dir of ['forward', 'backward', 'symmetric'] as const) {
        expect(got.report.scores.paper[dir], `${kernel.choice} paper ${dir}`).toBeCloseTo(expected[dir].paper, 6);
        expect(got.report.scores.penalized[dir], `${kernel.choice} penalized ${dir}`).toBeCloseTo(expected[dir].penalized, 6);
      }
      got.reduction.forward.best.forEach((b, k) => expect(Math.abs(b - expected.bestF[k]!)).toBeLessThan(1e-5));
      got.reduction.backward.best.forEach((b, k) => expect(Math.abs(b - expected.bestG[k]!)).toBeLessThan(1e-5));
    }
  });
});
