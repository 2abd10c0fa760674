/** The permutation null and the chance-corrected score, against models whose answer is known. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepare } from '../dist/prepare/prepare.js';
import { chanceLevel, expectedMaxAbsR, samplesForChance } from '../dist/shared/core/index.js';
import { nullSample, probePermutation } from '../dist/shared/core/index.js';
import { genModel, latents, rng, writeNpyDir, type GenModel } from './helpers/models.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'neurocorr.js');

interface Stat {
  mean: number;
  sd: number;
  se: number;
  z: number;
  corrected: number;
  correctedSe: number;
}
type Directions = Record<'forward' | 'backward' | 'symmetric', number>;
interface Report {
  scores: Record<'paper' | 'penalized', Directions>;
  null: {
    sample: [number, number];
    permutations: number;
    flopsShare: number;
    target: { correctedSe: number; met: boolean };
    scores: Record<'paper' | 'penalized', Record<keyof Directions, Stat>>;
  } | null;
  layers: { null: unknown }[];
  chance: Directions & { probesForTenth: number };
}

function score(f: string, g: string, args: string[] = []): Report {
  const r = spawnSync(process.execPath, [BIN, 'score', f, g, '--json', '--no-progress', ...args], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Report;
}

/** The same model with probes reordered: probe t of the copy is probe perm[t] of the original. */
function permuted(model: GenModel, perm: Uint32Array): GenModel {
  return {
    dtype: model.dtype,
    layers: model.layers.map((layer) => {
      const [m, ...rest] = layer.shape as [number, ...number[]];
      const per = rest.reduce((a, b) => a * b, 1);
      const data = new Float64Array(layer.data.length);
      for (let t = 0; t < m; t++) data.set(layer.data.subarray(perm[t]! * per, (perm[t]! + 1) * per), t * per);
      return { ...layer, data };
    }),
  };
}

function noisyCopy(model: GenModel, noise: number, seed: number): GenModel {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return { dtype: model.dtype, layers: model.layers.map((l) => ({ ...l, data: l.data.map((v) => Math.fround(v + noise * gauss())) })) };
}

/**
 * Sparse ReLU layers like a real network's: relu(w . latent + bias + noise),
 * each unit's bias drawn so the share of active probes ranges from rare to
 * common, and a share of dead units (always 0).
 */
function sparseRelu(seed: number, m: number, layers: number[][], dead: number, latent: Float64Array[]): GenModel {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return {
    dtype: 'f4',
    layers: layers.map((shape, li) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new Float64Array(m * n);
      for (let j = 0; j < n; j++) {
        if (r() < dead) continue;
        const w = latent.map(() => gauss());
        const bias = -2.5 * r();
        for (let k = 0; k < m; k++) {
          let v = bias + 0.7 * gauss();
          w.forEach((wi, q) => (v += wi * latent[q]![k]!));
          data[k * n + j] = Math.fround(Math.max(0, v));
        }
      }
      return { name: `l${li}`, shape: [m, ...shape], data };
    }),
  };
}

const modes = ['paper', 'penalized'] as const;
const directions = ['forward', 'backward', 'symmetric'] as const;

describe('permutation null', () => {
  it('two independent models: the raw score sits in the null, the corrected score near 0', () => {
    const f = writeNpyDir(genModel(101, { m: 30, layers: [[80], [40]] }));
    const g = writeNpyDir(genModel(202, { m: 30, layers: [[70], [2, 3, 5]] }));
    const report = score(f, g, ['--null', '10']);
    for (const mode of modes) {
      for (const dir of directions) {
        const stat = report.null!.scores[mode][dir];
        expect(Math.abs(stat.z), `${mode} ${dir}`).toBeLessThan(3);
        expect(Math.abs(stat.corrected), `${mode} ${dir}`).toBeLessThan(0.1);
        expect(Math.abs(report.scores[mode][dir] - stat.mean)).toBeLessThan(3 * Math.hypot(stat.sd, stat.se));
      }
    }
  });

  it('a model against a noisy copy of itself: corrected score near 1, a large z', () => {
    const model = genModel(303, { m: 48, layers: [[60], [50]], latent: latents(5, 48, 4) });
    const report = score(writeNpyDir(model), writeNpyDir(noisyCopy(model, 0.05, 9)));
    for (const mode of modes) {
      const stat = report.null!.scores[mode].symmetric;
      expect(stat.corrected, mode).toBeGreaterThan(0.85);
      expect(stat.z, mode).toBeGreaterThan(20);
    }
  });

  it('a model against itself, with constant neurons: every null mean stays a mean S, in [0, 1], though the observed S differ by rounding alone', () => {
    // An example ONNX model's ReLU layers (62 dead units): every observed S is 1 within a few ulps, and a
    // control-variate slope fitted to that noise once gave a chance level of 15 (the zoo's store then refused the report).
    const set = join(mkdtempSync(join(tmpdir(), 'nc-null-self-')), 'x');
    const model = join(import.meta.dirname, '..', 'examples', 'zoo-models', 'models', 'x.onnx');
    const probes = join(import.meta.dirname, '..', 'examples', 'tfjs', 'probes');
    const extract = spawnSync(
      process.execPath,
      [BIN, 'extract', model, '--probes', probes, '--preprocess', 'tf', '--layers', 'relu2,relu3,fc', '--out', set, '--no-progress'],
      {
        encoding: 'utf8',
      },
    );
    expect(extract.status, extract.stderr).toBe(0);
    const report = score(set, set);
    expect(report.null!.sample[0]).toBeLessThan(2058);
    for (const mode of modes) {
      for (const dir of directions) {
        const stat = report.null!.scores[mode][dir];
        expect(stat.mean, `${mode} ${dir}`).toBeGreaterThanOrEqual(0);
        expect(stat.mean, `${mode} ${dir}`).toBeLessThan(1);
        expect(stat.corrected, `${mode} ${dir}`).toBeGreaterThan(0.9);
        expect(stat.corrected, `${mode} ${dir}`).toBeLessThanOrEqual(1);
      }
    }
  });

  it.each(['units', 'channels'] as const)('the sampled estimate agrees with the exact full-permutation null (%s)', (conv) => {
    const latent = latents(11, 16, 3);
    // --conv channels needs one spatial size across layers; units takes any mix.
    const F = genModel(404, {
      m: 16,
      layers:
        conv === 'units'
          ? [[90], [6, 2, 2], [60]]
          : [
              [30, 2, 2],
              [25, 2, 2],
            ],
      latent,
    });
    const G = genModel(505, {
      m: 16,
      layers:
        conv === 'units'
          ? [[4, 2, 2], [80]]
          : [
              [20, 2, 2],
              [35, 2, 2],
            ],
      latent,
    });
    const [fDir, gDir] = [writeNpyDir(F), writeNpyDir(G)];
    const seed = 7;
    const k = 3;
    const extra = ['--conv', conv, '--layout', 'nchw'];
    const report = score(fDir, gDir, [...extra, '--null', String(k), '--null-sample', '25', '--null-seed', String(seed)]);
    expect(report.null!.sample).toEqual([25, 25]);
    // The exact null: the full score against G with its probes permuted, for the same K permutations.
    const exact = Array.from({ length: k }, (_, i) => score(fDir, writeNpyDir(permuted(G, probePermutation(seed, i, 16))), [...extra, '--null', '0']).scores);
    for (const mode of modes) {
      for (const dir of directions) {
        const stat = report.null!.scores[mode][dir];
        const truth = exact.reduce((s, e) => s + e[mode][dir], 0) / k;
        expect(stat.se, `${mode} ${dir}`).toBeGreaterThan(0);
        expect(Math.abs(stat.mean - truth), `${mode} ${dir}: ${stat.mean} vs exact ${truth}, se ${stat.se}`).toBeLessThan(3 * stat.se);
      }
    }
  });

  /**
   * The default estimator (10 permutations) over 40 seeds against the exact null (every neuron, 40 permutations):
   * the share of z-scores within 2 and their mean square, for both modes and all three directions.
   */
  function coverage(fDir: string, gDir: string, sample: number, extra: readonly string[]): { covered: number; meanSquare: number; worst: number } {
    const exact = score(fDir, gDir, [...extra, '--null', '40', '--null-sample', '100000', '--null-seed', '999']).null!.scores;
    const z: number[] = [];
    let worst = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const report = score(fDir, gDir, [...extra, '--null', '10', '--null-sample', String(sample), '--null-seed', String(seed)]);
      for (const mode of modes) {
        for (const dir of directions) {
          const stat = report.null!.scores[mode][dir];
          z.push((stat.mean - exact[mode][dir].mean) / stat.se);
        }
      }
      worst = Math.max(worst, report.null!.scores.paper.symmetric.se);
    }
    const covered = z.filter((v) => Math.abs(v) <= 2).length / z.length;
    return { covered, meanSquare: z.reduce((s, v) => s + v * v, 0) / z.length, worst };
  }

  function expectHonest({ covered, meanSquare, worst }: ReturnType<typeof coverage>): void {
    // The exact null is itself an average over 40 permutations: a little of the spread of z is its own.
    expect(covered, `coverage ${covered}, mean z^2 ${meanSquare}`).toBeGreaterThan(0.88);
    // Honest, not wildly conservative: the z-scores' spread is about 1.
    expect(meanSquare).toBeGreaterThan(0.5);
    expect(meanSquare).toBeLessThan(1.5);
    expect(worst).toBeLessThan(0.03);
  }

  it('on sparse ReLU layers with many dead units and layers of very different sizes, the reported se covers the exact null about 95% of the time', () => {
    const latent = latents(7, 16, 4);
    // F: 30% dead, a wide layer, a narrow one, a conv layer; G: 55% dead.
    const fDir = writeNpyDir(sparseRelu(11, 16, [[800], [120], [8, 6, 6]], 0.3, latent));
    const gDir = writeNpyDir(sparseRelu(12, 16, [[600], [40]], 0.55, latent));
    expectHonest(coverage(fDir, gDir, 60, []));
  });

  it('with --conv channels (conv layers, maps of different sizes pooled), the reported se covers the exact null about 95% of the time', () => {
    const latent = latents(17, 12, 3);
    const fDir = writeNpyDir(
      sparseRelu(
        21,
        12,
        [
          [40, 6, 6],
          [90, 3, 3],
        ],
        0.3,
        latent,
      ),
    );
    const gDir = writeNpyDir(
      sparseRelu(
        22,
        12,
        [
          [60, 4, 4],
          [16, 4, 4],
        ],
        0.5,
        latent,
      ),
    );
    expectHonest(coverage(fDir, gDir, 30, ['--conv', 'channels', '--layout', 'nchw', '--spatial', '3']));
  });

  it('with every neuron sampled, the null is the exact full-permutation null', () => {
    const F = genModel(606, { m: 12, layers: [[20], [15]] });
    const G = genModel(707, { m: 12, layers: [[25]] });
    const [fDir, gDir] = [writeNpyDir(F), writeNpyDir(G)];
    const report = score(fDir, gDir, ['--null', '1', '--null-seed', '3']);
    expect(report.null!.sample).toEqual([35, 25]);
    const exact = score(fDir, writeNpyDir(permuted(G, probePermutation(3, 0, 12))), ['--null', '0']).scores;
    for (const mode of modes) {
      for (const dir of directions) {
        expect(report.null!.scores[mode][dir].se).toBe(0);
        expect(report.null!.scores[mode][dir].mean).toBeCloseTo(exact[mode][dir], 6);
      }
    }
  });

  it('the same seed gives the same null, bit for bit, whatever the threads, tiles or input format; another seed does not', () => {
    const latent = latents(13, 20, 2);
    const F = genModel(808, { m: 20, layers: [[70], [3, 2, 2]], latent, constants: 0.05 });
    const G = genModel(909, { m: 20, layers: [[50], [40]], latent });
    const [fDir, gDir] = [writeNpyDir(F), writeNpyDir(G)];
    const args = ['--null', '3', '--null-sample', '30', '--null-seed', '5'];
    const base = score(fDir, gDir, [...args, '--threads', '1', '--tile', '8']);
    const shards = join(writeNpyDir({ layers: [], dtype: 'f4' }), 'G-shards');
    prepare({ input: gDir, out: shards, memory: 64 << 20, conv: 'units', force: false, shardNeurons: 7, log: () => undefined });
    for (const other of [score(fDir, gDir, [...args, '--threads', '2', '--tile', '32']), score(fDir, shards, [...args, '--memory', '4KiB', '--tile', '5'])]) {
      expect(other.null!.scores).toEqual(base.null!.scores);
      expect(other.layers.map((l) => l.null)).toEqual(base.layers.map((l) => l.null));
    }
    expect(score(fDir, gDir, ['--null', '3', '--null-sample', '30', '--null-seed', '6']).null!.scores).not.toEqual(base.null!.scores);
    expect(score(fDir, gDir, ['--null', '0']).null).toBeNull();
  });
});

describe('analytic chance level', () => {
  it('matches known values and a Monte Carlo estimate', () => {
    expect(expectedMaxAbsR(2, 10)).toBe(1);
    // E|r| for one candidate at m = 3 is 2/pi.
    expect(expectedMaxAbsR(3, 1)).toBeCloseTo(2 / Math.PI, 4);
    const r = rng(1);
    const unit = (m: number) => {
      const v = Array.from({ length: m }, () => r() - 0.5 + (r() - 0.5));
      const mean = v.reduce((a, b) => a + b) / m;
      const c = v.map((x) => x - mean);
      const norm = Math.hypot(...c);
      return c.map((x) => x / norm);
    };
    let total = 0;
    const trials = 400;
    for (let t = 0; t < trials; t++) {
      const a = unit(10);
      let best = 0;
      for (let c = 0; c < 50; c++) best = Math.max(best, Math.abs(unit(10).reduce((s, x, i) => s + x * a[i]!, 0)));
      total += best;
    }
    expect(expectedMaxAbsR(10, 50)).toBeCloseTo(total / trials, 1);
  });

  it('falls with more probes, and the probe advice reaches its target', () => {
    const levels = [10, 100, 1000, 10000].map((m) => chanceLevel(m, 100, 7008).forward);
    for (let i = 1; i < levels.length; i++) expect(levels[i]!).toBeLessThan(levels[i - 1]!);
    const needed = samplesForChance(0.1, 100, 7008);
    expect(chanceLevel(needed, 100, 7008).symmetric).toBeLessThan(0.1);
    expect(chanceLevel(needed - 1, 100, 7008).symmetric).toBeGreaterThanOrEqual(0.1);
  });

  it('score warns when the chance level is high, and the report carries it', () => {
    const f = writeNpyDir(genModel(11, { m: 8, layers: [[100]] }));
    const g = writeNpyDir(genModel(12, { m: 8, layers: [[200]] }));
    const r = spawnSync(process.execPath, [BIN, 'score', f, g, '--null', '0'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/warning: with 8 probes the chance level of this score is about 0\.\d\d.*Use at least \d+ probes to bring it under 0\.1/);
    expect(r.stdout).toMatch(/chance level 0\.\d{4} \(analytic/);
  });

  it('with the null on, the warning quotes the measured null, as the summary and the report do; the analytic figure is only an early note', () => {
    const f = writeNpyDir(genModel(11, { m: 8, layers: [[100]] }));
    const g = writeNpyDir(genModel(12, { m: 8, layers: [[200]] }));
    const dir = mkdtempSync(join(tmpdir(), 'nc-chance-'));
    const out = join(dir, 'report.json');
    const r = spawnSync(process.execPath, [BIN, 'score', f, g, '--null', '4', '--out', out, '--no-progress'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
    const measured = report.null!.scores.paper.symmetric;
    expect(r.stderr).toMatch(/note: with 8 probes the analytic chance level of this score is about 0\.\d\d .*the permutation null will measure it/);
    const warning = /warning: with 8 probes the chance level of this score is (0\.\d\d) \(the permutation null\)/.exec(r.stderr);
    expect(warning, r.stderr).not.toBeNull();
    expect(warning![1]).toBe(measured.mean.toFixed(2));
    expect(r.stdout).toContain(`chance ${measured.mean.toFixed(4)} (permutation null`);
    expect(r.stdout).toContain(`corrected score ${measured.corrected.toFixed(4)} ± ${measured.correctedSe.toFixed(4)}`);
    expect(measured.correctedSe).toBeGreaterThan(0);
    expect(report.null!.target.correctedSe).toBe(0.01);
    expect(report.null!.target.met).toBe(measured.correctedSe <= 0.01);
  });

  it('neurocorr plan gives counts, FLOPs, a time estimate and the chance level before any compute', () => {
    const f = writeNpyDir(genModel(13, { m: 16, layers: [[40], [20]] }));
    const g = writeNpyDir(genModel(14, { m: 16, layers: [[30]] }));
    const r = spawnSync(process.execPath, [BIN, 'plan', f, g, '--json', '--null', '2', '--null-sample', '10'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const p = JSON.parse(r.stdout) as {
      pairs: number;
      flops: { main: number; null: number };
      seconds: number;
      chance: Directions;
      probesForTenth: number;
      null: unknown;
    };
    expect(p.pairs).toBe(60 * 30);
    expect(p.flops.main).toBe(2 * 60 * 30 * 16);
    expect(p.flops.null).toBe(2 * 2 * (10 * 30 + 10 * 60) * 16);
    expect(p.null).toEqual({ permutations: 2, sample: [10, 10] });
    expect(p.seconds).toBeGreaterThan(0);
    expect(p.chance).toEqual(chanceLevel(16, 60, 30));
    expect(score(f, g, ['--null', '0']).chance).toMatchObject({ ...chanceLevel(16, 60, 30), probesForTenth: p.probesForTenth });
    expect(p.probesForTenth).toBe(samplesForChance(0.1, 60, 30));
    const human = spawnSync(process.execPath, [BIN, 'plan', f, g], { encoding: 'utf8' });
    expect(human.stdout).toMatch(/pairs 1\.80e\+3, main job 5\.76e\+4 FLOP/);
    expect(human.stdout).toMatch(/use at least \d+ probes to bring it under 0\.1 \(you have 16\)/);
  });

  it('keeps the default null under 10% of the work for models of 1e5 neurons and more', () => {
    for (const n of [1e5, 3e5, 1e6]) expect((5 * nullSample(null, 5, n, n) * 2 * n) / (n * n)).toBeLessThanOrEqual(0.1);
    expect(nullSample(300, 5, 1e6, 1e6)).toBe(300);
  });
});
