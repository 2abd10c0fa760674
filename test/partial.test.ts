/** Partial mode (--layers, --sample/--seed, --probes), the --matches CSV, and the summary. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../dist/cli/main.js';
import { bruteForce } from './helpers/brute.js';
import { bruteLayers, genModel, latents, writeNpyDir, type GenModel } from './helpers/models.js';

interface JsonReport {
  scores: Record<'paper' | 'penalized', Record<'forward' | 'backward' | 'symmetric', number>>;
  neurons: [number, number];
  partial: boolean;
  partialDetail: unknown;
  scope: 'full' | 'subset' | 'estimate';
  probes: number;
  layers: { model: string; name: string; depth: number; neurons: number; mean: Record<string, number> }[];
}

async function cli(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

async function scoreJson(args: string[]): Promise<JsonReport> {
  const r = await cli(['score', ...args, '--json', '--kernel', 'reference', '--threads', '2']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as JsonReport;
}

const latent = latents(5, 20, 3);
const F = genModel(11, { m: 20, layers: [[6], [2, 2, 2], [5]], latent, constants: 0.1 });
const G = genModel(12, { m: 20, layers: [[7], [4]], latent, duplicates: 0.1 });
const fDir = writeNpyDir(F);
const gDir = writeNpyDir(G);

const firstProbes = (model: GenModel, k: number): GenModel => ({
  dtype: model.dtype,
  layers: model.layers.map((l) => {
    const perProbe = l.data.length / l.shape[0]!;
    return { ...l, shape: [k, ...l.shape.slice(1)], data: l.data.slice(0, k * perProbe) };
  }),
});

const closeScores = (got: JsonReport, expected: ReturnType<typeof bruteForce>) => {
  for (const dir of ['forward', 'backward', 'symmetric'] as const) {
    expect(got.scores.paper[dir]).toBeCloseTo(expected[dir].paper, 6);
    expect(got.scores.penalized[dir]).toBeCloseTo(expected[dir].penalized, 6);
  }
};

describe('partial mode', () => {
  it('the full run is not partial', async () => {
    const report = await scoreJson([fDir, gDir]);
    expect(report.partial).toBe(false);
    closeScores(report, bruteForce(bruteLayers(F), bruteLayers(G)));
  });

  it('--probes K scores the first K probes and says it is partial', async () => {
    const report = await scoreJson([fDir, gDir, '--probes', '9']);
    expect(report.partial).toBe(true);
    expect(report.scope).toBe('subset');
    expect(report.probes).toBe(9);
    closeScores(report, bruteForce(bruteLayers(firstProbes(F, 9)), bruteLayers(firstProbes(G, 9))));
  });

  it('--layers keeps the named layers at their original depths', async () => {
    const report = await scoreJson([fDir, gDir, '--layers-f', 'layer00,layer02', '--layers-g', 'layer01']);
    expect(report.partial).toBe(true);
    expect(report.scope).toBe('subset');
    const f = bruteLayers(F).filter((_, i) => i !== 1);
    const g = bruteLayers(G).filter((_, i) => i === 1);
    closeScores(report, bruteForce(f, g));
    expect(report.layers.map((l) => `${l.model}:${l.name}@${l.depth}`)).toEqual(['F:layer00@0', 'F:layer02@2', 'G:layer01@1']);
  });

  it('--sample N --seed S keeps at most N neurons per layer, reproducibly', async () => {
    const a = await scoreJson([fDir, gDir, '--sample', '3', '--seed', '7']);
    const b = await scoreJson([fDir, gDir, '--sample', '3', '--seed', '7']);
    const c = await scoreJson([fDir, gDir, '--sample', '3', '--seed', '8']);
    expect(a.partial).toBe(true);
    expect(a.scope).toBe('estimate');
    expect((await scoreJson([fDir, gDir, '--sample', '3', '--probes', '9'])).scope).toBe('estimate');
    expect(a.neurons).toEqual([9, 6]);
    expect(a.scores).toEqual(b.scores);
    expect(a.scores).not.toEqual(c.scores);
  });

  it('the human summary says a subset is exact and a sample is an estimate', async () => {
    const r = await cli(['score', fDir, gDir, '--probes', '5', '--kernel', 'reference']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\[SUBSET\]/);
    expect(r.stdout).toMatch(/subset: the exact score of the selected layers or probes/);
    expect(r.stdout).toMatch(/paper\*/);
    const sampled = await cli(['score', fDir, gDir, '--sample', '3', '--kernel', 'reference']);
    expect(sampled.stdout).toMatch(/\[ESTIMATE\]/);
    expect(sampled.stdout).not.toMatch(/approximation|PARTIAL/);
    const full = await cli(['score', fDir, gDir, '--kernel', 'reference']);
    expect(full.stdout).not.toMatch(/\[SUBSET\]|\[ESTIMATE\]/);
  });
});

describe('--matches', () => {
  it('writes one row per neuron whose S column averages to the scores', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nc-matches-'));
    for (const mode of ['paper', 'penalized'] as const) {
      const file = join(dir, `${mode}.csv`);
      const report = await scoreJson([fDir, gDir, '--matches', file, '--match', mode]);
      const rows = readFileSync(file, 'utf8').trim().split('\n');
      expect(rows[0]).toBe('model,neuron,layer,partner,partner_layer,abs_rho,S');
      const body = rows.slice(1).map((r) => r.split(','));
      expect(body).toHaveLength(report.neurons[0] + report.neurons[1]);
      const mean = (model: string) => {
        const s = body.filter((r) => r[0] === model).map((r) => Number(r[6]));
        return s.reduce((a, b) => a + b, 0) / s.length;
      };
      expect(mean('F')).toBeCloseTo(report.scores[mode].forward, 9);
      expect(mean('G')).toBeCloseTo(report.scores[mode].backward, 9);
      for (const r of body) expect(Number(r[5])).toBeGreaterThanOrEqual(Number(r[6]));
    }
  });
});
