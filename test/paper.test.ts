/**
 * The paper reproduction (experiments/paper): `npm run paper -- --quick`
 * from an empty cache (MNIST, one seed, short training), then the
 * invariants that do not depend on chance, then a second run that must find
 * every step in the cache. Also the pieces on their own: the convolution's
 * filter gradient against tfjs's, and the rank statistics.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tensor4D } from '@tensorflow/tfjs-core';
import type { RunResult } from '../experiments/paper/run.js';
import type { PairScore } from '../experiments/paper/scores.js';

const CACHE = mkdtempSync(join(tmpdir(), 'nc-paper-'));
const OUT = join(CACHE, 'quick');

interface Results {
  readonly runs: Omit<RunResult, 'examples'>[];
}

function quickRun(): { seconds: number; results: Results; stderr: string } {
  const started = performance.now();
  const r = spawnSync('npm', ['run', 'paper', '--', '--quick'], {
    cwd: join(import.meta.dirname, '..'),
    env: { ...process.env, NEUROCORR_PAPER_CACHE: CACHE },
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`npm run paper -- --quick failed (${r.status}):\n${r.stderr}`);
  return { seconds: (performance.now() - started) / 1000, results: JSON.parse(readFileSync(join(OUT, 'results.json'), 'utf8')) as Results, stderr: r.stderr };
}

let first: ReturnType<typeof quickRun>;
beforeAll(() => {
  first = quickRun();
}, 900_000);
afterAll(() => rmSync(CACHE, { recursive: true, force: true }));

const run = (): Omit<RunResult, 'examples'> => first.results.runs[0]!;
const NETS = ['Net1', 'Net2', 'Net3', 'Net4', 'Net4s', 'Net5', 'CNN'];

describe('npm run paper -- --quick', () => {
  it('trains every net of Table 1 and the CNN above 85% on MNIST, and the attack lowers every accuracy', () => {
    expect(run().dataset).toBe('mnist');
    expect(Object.keys(run().nets).sort()).toEqual([...NETS].sort());
    for (const name of NETS) {
      const n = run().nets[name]!;
      expect(n.before, name).toBeGreaterThan(0.85);
      expect(n.after, name).toBeLessThan(n.before);
      expect(n.degradation).toBeCloseTo((n.before - n.after) / n.before, 12);
    }
  });

  it('scores every pair of Table 2 (15) and Table 3 (6) in both settings, each with its null', () => {
    for (const setting of ['published', 'corrected']) {
      const cells = Object.entries(run().pairs[setting]!);
      expect(cells.length).toBe(21);
      for (const [pair, s] of cells) {
        expect(s.raw, pair).toBeGreaterThanOrEqual(0);
        expect(s.raw, pair).toBeLessThanOrEqual(1);
        expect(s.corrected, pair).toBeCloseTo((s.raw - s.nullMean) / (1 - s.nullMean), 9);
      }
    }
  });

  it('scores a net against itself as 1 for every neuron that varies (paper mode, every probe)', () => {
    const s: PairScore = run().self['corrected']!;
    const [n] = s.neurons;
    const [constant] = s.constant;
    expect(s.neurons[1]).toBe(n);
    // A constant neuron counts as S = 0 (the published code's NaN → 0); every other one finds itself at |r| = 1.
    expect(Math.abs(s.raw - (n - constant) / n)).toBeLessThan(1e-5);
  });

  it('puts the 10-probe scores within a few sd of their null, and the all-probe MLP scores far above it', () => {
    for (const [pair, s] of Object.entries(run().pairs['published']!)) {
      expect(s.nullMean, pair).toBeGreaterThan(0.3);
      expect(Math.abs(s.z), pair).toBeLessThan(10);
    }
    for (const [pair, s] of Object.entries(run().pairs['corrected']!)) {
      expect(s.nullMean, pair).toBeLessThan(0.2);
      if (!pair.endsWith('|CNN')) expect(s.z, pair).toBeGreaterThan(10);
    }
  });

  it('writes REPORT.md with every table and a PNG figure', () => {
    const report = readFileSync(join(OUT, 'REPORT.md'), 'utf8');
    for (const heading of ['### Table 4', '### Table 2', '### Table 3', '## The claim', '## What holds and what does not']) expect(report).toContain(heading);
    const png = readFileSync(join(OUT, 'attacked.png'));
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(statSync(join(OUT, 'attacked.png')).size).toBeGreaterThan(1000);
  });

  it('recomputes nothing on a second run: same results, every step from the cache', () => {
    const second = quickRun();
    expect(second.stderr).not.toMatch(/trained|Algorithm 1 done/);
    // Times differ (a net loaded from the cache took no time to train); everything measured must not.
    const strip = (r: Results) =>
      r.runs.map((run) => ({ ...run, seconds: null, nets: Object.fromEntries(Object.entries(run.nets).map(([k, n]) => [k, { ...n, trainSeconds: null }])) }));
    expect(strip(second.results)).toEqual(strip(first.results));
  }, 600_000);
});

describe('the pieces', () => {
  it('the patches × matrix filter gradient matches tfjs conv2d gradients (cpu backend)', async () => {
    const { loadTrainingTf } = await import('../experiments/paper/tf.js');
    const { trainableConv } = await import('../experiments/paper/conv.js');
    const tf = await loadTrainingTf('cpu');
    const conv = trainableConv(tf);
    for (const [c, f, k] of [
      [1, 4, 3],
      [3, 5, 5],
    ] as const) {
      const x = tf.randomNormal([2, 7, 6, c], 0, 1, 'float32', 1) as Tensor4D;
      const w = tf.randomNormal([k, k, c, f], 0, 1, 'float32', 2) as Tensor4D;
      const ours = tf.grads((a, b) => tf.sum(tf.square(conv(a as Tensor4D, b as Tensor4D))))([x, w]);
      const theirs = tf.grads((a, b) => tf.sum(tf.square(tf.conv2d(a as Tensor4D, b as Tensor4D, 1, 'same'))))([x, w]);
      for (let i = 0; i < 2; i++) {
        const scale = tf.max(tf.abs(theirs[i]!)).dataSync()[0]!;
        expect(tf.max(tf.abs(tf.sub(ours[i]!, theirs[i]!))).dataSync()[0]! / scale).toBeLessThan(1e-5);
      }
    }
  });

  it("Spearman's rho with ties, and its exact permutation p", async () => {
    const { ranks, spearman, spearmanP } = await import('../experiments/paper/stats.js');
    expect(ranks([3, 1, 3, 2])).toEqual([3.5, 1, 3.5, 2]);
    expect(spearman([1, 2, 3, 4, 5, 6], [60, 50, 40, 30, 20, 10])).toBeCloseTo(-1, 12);
    // Only the identity and the reversal reach |rho| = 1: 2 of 720 orderings.
    expect(spearmanP([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1])).toBeCloseTo(2 / 720, 12);
  });
});
