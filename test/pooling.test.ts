/**
 * `spatial`: channels semantics over maps pooled to one grid, against an
 * independent float64 reference (pool, standardize, correlate, brute-force
 * match), on both kernels that must agree with it, in both layouts and with
 * sizes that do not divide (7 -> 3, 17 -> 7, 12 -> 10).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bruteForce } from './helpers/brute.js';
import { mapModel, pooledBrute, writeMapDir, type MapLayer } from './helpers/maps.js';
import { latents } from './helpers/models.js';
import { runPair } from './helpers/run.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'neurocorr.js');

const neurocorr = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

interface Case {
  readonly name: string;
  readonly spatial: number | 'min';
  readonly grid: [number, number];
  readonly f: MapLayer[];
  readonly g: MapLayer[];
}

const CASES: Case[] = [
  {
    name: '7 -> 3 and 5 x 6 -> 3 (F, NCHW) against 9 -> 3 (NHWC) and 3 -> 3 (G)',
    spatial: 3,
    grid: [3, 3],
    f: [
      { shape: [4, 7, 7], layout: 'nchw' },
      { shape: [3, 5, 6], layout: 'nchw' },
    ],
    g: [
      { shape: [5, 9, 9], layout: 'nhwc' },
      { shape: [2, 3, 3], layout: 'nchw' },
    ],
  },
  {
    name: '17 -> 7 (NHWC) and 7 -> 7 against 10 x 8 -> 7 (NCHW)',
    spatial: 7,
    grid: [7, 7],
    f: [
      { shape: [3, 17, 17], layout: 'nhwc' },
      { shape: [2, 7, 7], layout: 'nchw' },
    ],
    g: [{ shape: [4, 10, 8], layout: 'nchw' }],
  },
  {
    name: 'min: the smallest H (7) by the smallest W (10) of both models',
    spatial: 'min',
    grid: [7, 10],
    f: [
      { shape: [3, 17, 17], layout: 'nchw' },
      { shape: [2, 9, 12], layout: 'nhwc' },
    ],
    g: [{ shape: [4, 7, 10], layout: 'nhwc' }],
  },
];

describe.each(['native', 'reference'] as const)('spatial pooling on the %s kernel against the float64 reference', (kernel) => {
  it.each(CASES.map((c, i) => [c.name, c, i] as const))('%s', async (_name, c, i) => {
    const m = 6;
    const latent = latents(300 + i, m, 3);
    const f = mapModel(310 + i, m, c.f, { latent, constants: 0.1 });
    const g = mapModel(320 + i, m, c.g, { latent, constants: 0.1 });
    const [fDir, gDir] = [writeMapDir(f), writeMapDir(g)];
    const [gh, gw] = c.grid;
    for (const constant of ['include', 'exclude'] as const) {
      const expected = bruteForce(pooledBrute(f, gh, gw), pooledBrute(g, gh, gw), constant === 'exclude');
      const got = await runPair(fDir, gDir, { kernel, conv: 'channels', spatial: c.spatial, constant, tile: 3, threads: 2 });
      expect(got.report.spatial).toEqual({ requested: c.spatial, height: gh, width: gw });
      expect(got.report.samples).toBe(m * gh * gw);
      expect(got.report.layers.map((l) => l.layout)).toEqual([...c.f, ...c.g].map((l) => l.layout));
      for (const dir of ['forward', 'backward', 'symmetric'] as const) {
        expect(got.report.scores.paper[dir], `paper ${dir}`).toBeCloseTo(expected[dir].paper, 6);
        expect(got.report.scores.penalized[dir], `penalized ${dir}`).toBeCloseTo(expected[dir].penalized, 6);
      }
      expect(got.report.constant).toEqual([expected.constantF, expected.constantG]);
      got.reduction.forward.best.forEach((b, k) => expect(Math.abs(b - expected.bestF[k]!)).toBeLessThan(1e-5));
      got.reduction.backward.best.forEach((b, k) => expect(Math.abs(b - expected.bestG[k]!)).toBeLessThan(1e-5));
    }
  });
});

describe('spatial pooling', () => {
  const m = 8;
  const latent = latents(41, m, 3);
  const f = mapModel(42, m, [{ shape: [4, 8, 8], layout: 'nchw' }], { latent });
  const g = mapModel(43, m, [{ shape: [3, 5, 5], layout: 'nhwc' }], { latent });
  const [fDir, gDir] = [writeMapDir(f), writeMapDir(g)];

  it('lets models with maps of different sizes be scored; they are refused without it', () => {
    const without = neurocorr(['score', fDir, gDir, '--conv', 'channels', '--json', '--no-progress']);
    expect(without.status).toBe(2);
    expect(without.stderr).toMatch(/gives 200 samples per neuron but .* gives 512/);
    expect(without.stderr).toMatch(/--spatial/);
    for (const spatial of ['min', '5', '2']) {
      const r = neurocorr(['score', fDir, gDir, '--conv', 'channels', '--spatial', spatial, '--json', '--no-progress']);
      expect(r.status, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as { spatial: unknown; samples: number; neurons: number[] };
      const side = spatial === 'min' ? 5 : Number(spatial);
      expect(report.spatial).toEqual({ requested: spatial === 'min' ? 'min' : side, height: side, width: side });
      expect(report.samples).toBe(m * side * side);
      expect(report.neurons).toEqual([4, 3]);
    }
  });

  it('refuses a grid larger than a map, naming the layer, and pooling without channels', () => {
    const big = neurocorr(['score', fDir, gDir, '--conv', 'channels', '--spatial', '6', '--no-progress']);
    expect(big.status).toBe(2);
    expect(big.stderr).toMatch(/layer00\.npy: layer "layer00" has 5 x 5 maps, smaller than the 6 x 6 grid/);
    expect(big.stderr).toMatch(/--spatial 5 or less/);
    const units = neurocorr(['score', fDir, gDir, '--spatial', '2', '--no-progress']);
    expect(units.status).toBe(2);
    expect(units.stderr).toMatch(/--spatial pools .* needs --conv channels/);
    const bad = neurocorr(['score', fDir, gDir, '--conv', 'channels', '--spatial', 'max', '--no-progress']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--spatial max: expected an integer side from 1 to 65536, or min/);
  });

  it('gives the same bits for the same maps stored NCHW or NHWC', async () => {
    const flipped = mapModel(43, m, [{ shape: [3, 5, 5], layout: 'nchw' }], { latent });
    const a = await runPair(fDir, gDir, { kernel: 'native', conv: 'channels', spatial: 3 });
    const b = await runPair(fDir, writeMapDir(flipped), { kernel: 'native', conv: 'channels', spatial: 3 });
    expect(JSON.stringify(b.report.scores)).toBe(JSON.stringify(a.report.scores));
    expect(Array.from(b.reduction.forward.best)).toEqual(Array.from(a.reduction.forward.best));
  });
});
