/**
 * The claim pipeline (experiments/paper/claim*.ts, issue 26): `npm run paper
 * -- --claim --quick` from an empty cache, then its machinery checked from
 * claim-results.json: the sweep and its selection rule, the zoo against
 * `score` on single pairs, the predictors and targets, the statistics
 * table's shape; then a second run that must compute nothing.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { score } from 'neurocorr';
import type { StatRow, Sweep } from '../experiments/paper/claim-analysis.js';
import type { ClaimConfig } from '../experiments/paper/claim-family.js';
import type { SeedRun } from '../experiments/paper/claim-run.js';
import type { ZooRun } from '../experiments/paper/claim-zoo.js';

const CACHE = mkdtempSync(join(tmpdir(), 'nc-claim-'));
const OUT = join(CACHE, 'claim-quick');

/** JSON turns NaN into null. */
type Json<T> = { [K in keyof T]: T[K] extends number ? number | null : T[K] };
interface Results {
  readonly config: ClaimConfig;
  readonly rule: string;
  readonly meta: unknown;
  readonly sweeps: Sweep[];
  readonly runs: (SeedRun & { zoos: ZooRun[] })[];
  readonly rows: Json<StatRow>[];
}

function quickRun(): { results: Results; stderr: string } {
  const r = spawnSync('npm', ['run', 'paper', '--', '--claim', '--quick'], {
    cwd: join(import.meta.dirname, '..'),
    env: { ...process.env, NEUROCORR_PAPER_CACHE: CACHE },
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`npm run paper -- --claim --quick failed (${r.status}):\n${r.stderr}`);
  return { results: JSON.parse(readFileSync(join(OUT, 'claim-results.json'), 'utf8')) as Results, stderr: r.stderr };
}

let first: ReturnType<typeof quickRun>;
beforeAll(() => {
  first = quickRun();
}, 600_000);
afterAll(() => rmSync(CACHE, { recursive: true, force: true }));

const res = (): Results => first.results;
const run = () => res().runs[0]!;
const MLPS = () =>
  res()
    .config.nets.filter((n) => n.spec.kind === 'mlp')
    .map((n) => n.spec.name);
const SETTINGS = {
  published: { match: 'penalized', direction: 'forward', probes: 10 },
  corrected: { match: 'paper', direction: 'symmetric', probes: null },
} as const;

describe('npm run paper -- --claim --quick', () => {
  it('sweeps the step size: degradation grows with ε, and the rule picks the ε nearest 30% (ties to the smaller)', () => {
    const { sweeps, config } = res();
    expect(sweeps.map((s) => s.dataset)).toEqual(['mnist']);
    const s = sweeps[0]!;
    expect(s.epsilons).toEqual(config.epsilons);
    expect(s.mean[1]!).toBeGreaterThan(s.mean[0]!);
    const all = Object.values(run().nets).map((n) => n.degradation);
    s.mean.forEach((m, e) => expect(m).toBeCloseTo(all.reduce((a, d) => a + d[e]!, 0) / all.length, 12));
    const distance = s.mean.map((m) => Math.abs(m - 0.3));
    const best = Math.min(...distance);
    expect(s.chosen).toBe(distance.findIndex((d, i) => d === best && s.epsilons[i] === Math.min(...s.epsilons.filter((_, j) => distance[j] === best))));
    expect(first.stderr).toContain(res().rule);
  });

  it('measures the targets: gap = training − test accuracy, noise below clean for every net, blur below clean on average', () => {
    const nets = Object.values(run().nets);
    expect(Object.keys(run().nets).sort()).toEqual(
      res()
        .config.nets.map((n) => n.spec.name)
        .sort(),
    );
    for (const n of nets) {
      expect(n.gap).toBe(n.train - n.clean);
      expect(n.noise).toBeLessThan(n.clean);
      expect(n.degradation.length).toBe(res().config.epsilons.length);
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(nets.map((n) => n.blur))).toBeLessThan(mean(nets.map((n) => n.clean)));
  });

  it('scores every ordered pair in one zoo per setting, each pair bit for bit what score() reports', async () => {
    const names = res().config.nets.map((n) => n.spec.name);
    for (const z of run().zoos) {
      expect(Object.keys(z.matrix).sort()).toEqual([...names].sort());
      for (const f of names) expect(Object.keys(z.matrix[f]!).sort()).toEqual([...names].sort());
      const s = SETTINGS[z.setting];
      for (const [f, g] of [
        [names[0]!, 'CNN'],
        [names[2]!, names[0]!],
      ] as const) {
        const { report } = await score({
          f: run().activations[f]!,
          g: run().activations[g]!,
          ...(s.probes !== null ? { probes: s.probes } : {}),
          null: { permutations: res().config.nullPermutations, seed: 1 },
        });
        expect(z.matrix[f]![g]!.raw).toBe(report.scores[s.match][s.direction]);
        expect(z.matrix[f]![g]!.corrected).toBe(report.null!.scores[s.match][s.direction].corrected);
      }
    }
  }, 120_000);

  it('derives every predictor from the zoo matrix and every target from the nets, and rho from both', async () => {
    const { spearman } = await import('../experiments/paper/stats.js');
    const mlps = MLPS();
    const printed = res().config.epsilons.indexOf(res().config.printed);
    const chosen = res().sweeps[0]!.chosen;
    for (const row of res().rows) {
      const z = run().zoos.find((x) => x.setting === row.setting)!;
      const x = mlps.map((net) => {
        const v = (g: string) => z.matrix[net]![g]![row.kind];
        if (row.predictor === 'cnn') return v('CNN');
        const others = mlps.filter((m) => m !== net).map(v);
        return others.reduce((a, b) => a + b, 0) / others.length;
      });
      expect(row.x).toEqual(x);
      const t = (net: string) => run().nets[net]!;
      const y = mlps.map(
        (net) =>
          ({
            'degradation (calibrated ε)': t(net).degradation[chosen]!,
            'degradation (printed ε)': t(net).degradation[printed]!,
            'clean accuracy': t(net).clean,
            'generalization gap': t(net).gap,
            'noise accuracy': t(net).noise,
            'blur accuracy': t(net).blur,
          })[row.target],
      );
      expect(row.y).toEqual(y);
      expect(row.rho).toBe(spearman(x, y));
    }
  });

  it('fills the statistics table: every combination once, Holm-adjusted p at least the raw p, the power of the design', () => {
    const rows = res().rows;
    const keys = rows.map((r) => `${r.dataset}/${r.setting}/${r.predictor}/${r.kind}/${r.target}`);
    expect(new Set(keys).size).toBe(rows.length);
    expect(rows.length).toBe(1 * 2 * 2 * 2 * 6);
    for (const r of rows) {
      expect(r.n).toBe(MLPS().length);
      expect(r.p).not.toBeNull();
      expect(r.pHolm!).toBeGreaterThanOrEqual(r.p!);
      expect(r.pHolm!).toBeLessThanOrEqual(1);
      expect(r.ci.low).toBeLessThanOrEqual(r.ci.high);
      // Undefined for clean accuracy itself, and for a target ranked exactly as clean accuracy (their partial correlation's denominator is 0).
      if (r.target === 'clean accuracy' || r.partial === null) expect([r.partial, r.partialP, r.partialPHolm]).toEqual([null, null, null]);
      else expect(r.partialPHolm!).toBeGreaterThanOrEqual(r.partialP!);
      expect(r.detectable!).toBeGreaterThan(0.5);
      expect(r.detectable!).toBeLessThanOrEqual(1);
    }
    expect(rows.filter((r) => r.partial !== null).length).toBeGreaterThan(rows.length / 2);
    const section = readFileSync(join(OUT, 'claim-section.md'), 'utf8');
    for (const part of ['## The claim, tested with power', '**Answer.**', '### The sweep', "### The family's spread", '### Correlations', res().rule])
      expect(section).toContain(part);
    expect(section.split('\n').filter((l) => l.startsWith('| MNIST |')).length).toBe(rows.length + 1);
  });

  it('recomputes nothing on a second run: no training, attack or zoo pair, the same results', () => {
    const second = quickRun();
    expect(second.stderr).not.toMatch(/trained|attacked|computed/);
    expect(second.results.runs[0]!.computedSeconds).toBe(0);
    for (const z of second.results.runs[0]!.zoos) {
      expect(z.computed).toBe(0);
      expect(z.reused).toBe(res().config.nets.length ** 2);
    }
    const strip = (r: Results) => ({
      ...r,
      meta: null,
      runs: r.runs.map((x) => ({ ...x, computedSeconds: null, zoos: x.zoos.map((z) => ({ ...z, computed: null, reused: null })) })),
    });
    expect(strip(second.results)).toEqual(strip(first.results));
  }, 300_000);
});

describe('the claim pieces', () => {
  it('blurs with a normalized separable Gaussian and adds seeded, clipped noise', async () => {
    const { gaussianBlur, gaussianKernel, gaussianNoise } = await import('../experiments/paper/claim-corrupt.js');
    const k = gaussianKernel(1, 5);
    expect(k.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(k[0]).toBeCloseTo(k[4]!, 15);
    const img = new Float32Array(784);
    img[14 * 28 + 14] = 1;
    const b = gaussianBlur(img, 1);
    expect(b[14 * 28 + 14]).toBeCloseTo(k[2]! * k[2]!, 6);
    expect(b[12 * 28 + 15]).toBeCloseTo(k[0]! * k[3]!, 6);
    expect(b.reduce((a, x) => a + x, 0)).toBeCloseTo(1, 5);
    const flat = new Float32Array(784).fill(0.5);
    const n1 = gaussianNoise(flat, 0.3, 7);
    expect(gaussianNoise(flat, 0.3, 7)).toEqual(n1);
    expect(Math.min(...n1)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...n1)).toBeLessThanOrEqual(1);
    const m = n1.reduce((a, x) => a + x, 0) / n1.length;
    expect(Math.abs(m - 0.5)).toBeLessThan(0.03);
  });

  it('picks the ε nearest 30%, a tie going to the smaller', async () => {
    const { selectEpsilon } = await import('../experiments/paper/claim-analysis.js');
    expect(selectEpsilon([1, 2, 4], [0.1, 0.25, 0.5])).toBe(1);
    expect(selectEpsilon([4, 2], [0.4, 0.2])).toBe(1);
    expect(selectEpsilon([1, 2], [NaN, 0.9])).toBe(1);
  });

  it('puts the claim section in place of an earlier one, or appends it', async () => {
    const { withClaimSection, CLAIM_HEADING } = await import('../experiments/paper/claim-report.js');
    const section = `${CLAIM_HEADING}\n\nnew\n`;
    expect(withClaimSection('# R\n\n## A\n\na\n', section)).toBe(`# R\n\n## A\n\na\n\n${section}`);
    expect(withClaimSection(`# R\n\n${CLAIM_HEADING}\n\nold\n\n## B\n\nb\n`, section)).toBe(`# R\n\n${section}\n## B\n\nb\n`);
    const { withAnswer, ANSWER_HEADING } = await import('../experiments/paper/claim-report.js');
    const previous = `# R\n\nintro\n\n${ANSWER_HEADING}\n\nthe answer\n\n## A\n\nold a\n`;
    expect(withAnswer(previous, '# R\n\nintro\n\n## A\n\nnew a\n')).toBe(`# R\n\nintro\n\n${ANSWER_HEADING}\n\nthe answer\n\n## A\n\nnew a\n`);
    expect(withAnswer('# R\n\n## A\n', '# R\n\n## A\n\nnew a\n')).toBe('# R\n\n## A\n\nnew a\n');
    expect(withClaimSection(`# R\n\n${CLAIM_HEADING}\n\nold\n`, section)).toBe(`# R\n\n${section}`);
  });

  it('names 24 family nets systematically, each (activation, training length) with two shapes', async () => {
    const { family, FULL } = await import('../experiments/paper/claim-family.js');
    const f = family();
    expect(f.length).toBe(24);
    expect(new Set(f.map((n) => n.spec.name)).size).toBe(24);
    for (const n of f) expect(n.spec.name).toMatch(/^mlp-w\d+-d\d+-(relu|tanh|sigmoid|elu)-e(1|3|10)$/);
    expect(FULL.nets.length).toBe(31);
    expect(new Set(f.map((n) => (n.spec.kind === 'mlp' ? n.spec.hidden.join('x') : ''))).size).toBe(6);
  });
});
