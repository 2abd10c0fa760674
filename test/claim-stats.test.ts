/**
 * The statistics of the paper's claim (experiments/paper/claim-stats.ts)
 * against values worked out by hand or by an independent enumeration, and the
 * Monte Carlo paths against the exact ones.
 */
import { describe, expect, it } from 'vitest';
import {
  bootstrapSpearmanCI,
  detectableRho,
  holm,
  normalQuantile,
  partialSpearman,
  partialSpearmanP,
  rng,
  spearmanPermutationP,
} from '../experiments/paper/claim-stats.js';
import { pearson, ranks, spearman } from '../experiments/paper/stats.js';

const Z975 = 1.959963984540054;
const Z80 = 0.8416212335729143;

describe('normalQuantile', () => {
  it('matches the known quantiles, in the centre and both tails', () => {
    expect(normalQuantile(0.975)).toBeCloseTo(Z975, 14);
    expect(normalQuantile(0.025)).toBeCloseTo(-Z975, 14);
    expect(normalQuantile(0.8)).toBeCloseTo(Z80, 14);
    expect(normalQuantile(0.5)).toBe(0);
    // Python's statistics.NormalDist().inv_cdf (its own AS241 in C): the centre, the near tail and, at 1e-20, the far tail
    // (sqrt(-log p) > 5).
    expect(normalQuantile(0.3)).toBeCloseTo(-0.5244005127080407, 14);
    expect(normalQuantile(0.9999)).toBeCloseTo(3.7190164854557084, 13);
    expect(normalQuantile(1e-10)).toBeCloseTo(-6.361340902404056, 13);
    expect(normalQuantile(1e-20)).toBeCloseTo(-9.262340089798405, 13);
    expect(normalQuantile(0)).toBe(-Infinity);
    expect(normalQuantile(1)).toBe(Infinity);
    expect(() => normalQuantile(1.5)).toThrow(RangeError);
  });
});

describe('detectableRho', () => {
  it('is tanh((z_0.975 + z_0.8) * sqrt(1.06 / (n - 3)))', () => {
    // n = 10: (1.959963984540054 + 0.8416212335729143) * sqrt(1.06 / 7) = 2.8015852181129683 * 0.389138... = 1.0902039467,
    // tanh(1.0902039467) = 0.7969525697.
    expect(detectableRho(10)).toBeCloseTo(0.7969525696544022, 12);
    // n = 30: 2.8015852181129683 * sqrt(1.06 / 27) = 0.5551046788, tanh = 0.5043362802.
    expect(detectableRho(30)).toBeCloseTo(0.5043362801879134, 12);
    // A stricter level or more power needs a larger effect; more nets a smaller one.
    expect(detectableRho(30, { alpha: 0.01 })).toBeGreaterThan(detectableRho(30));
    expect(detectableRho(30, { power: 0.9 })).toBeGreaterThan(detectableRho(30));
    expect(detectableRho(79)).toBeLessThan(detectableRho(30));
  });

  it('refuses n below 4 and levels outside (0, 1)', () => {
    expect(() => detectableRho(3)).toThrow(/at least 4/);
    expect(() => detectableRho(10, { alpha: 0 })).toThrow(/alpha/);
    expect(() => detectableRho(10, { power: 1 })).toThrow(/power/);
  });
});

describe('holm', () => {
  it('adjusts step-down, keeps the input order, and stays monotone', () => {
    // Sorted: 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; the running maximum makes the last 0.06.
    const adjusted = holm([0.01, 0.04, 0.03, 0.005]);
    [0.03, 0.06, 0.06, 0.02].forEach((v, i) => expect(adjusted[i]).toBeCloseTo(v, 15));
  });

  it('caps at 1, accepts no tests, and refuses a value that is not a p-value', () => {
    expect(holm([0.5, 0.4, 0.9])).toEqual([1, 1, 1]);
    expect(holm([])).toEqual([]);
    expect(() => holm([0.1, NaN])).toThrow(/ps\[1\]/);
  });
});

describe('spearmanPermutationP', () => {
  it('is exact for small n: n = 4 and n = 5 by hand', () => {
    // x = 1..4, y = 1 3 2 4: sum d^2 = 2, rho = 1 - 6 * 2 / 60 = 0.8. Of the 24 orderings, |rho| >= 0.8 means sum d^2 <= 2
    // (the identity and the 3 adjacent swaps) or, mirrored, >= 18 (4 more): p = 8 / 24.
    expect(spearmanPermutationP([1, 2, 3, 4], [1, 3, 2, 4])).toBeCloseTo(8 / 24, 14);
    // x = 1..5, y = 2 1 4 3 5: sum d^2 = 4, rho = 0.8. sum d^2 <= 4: the identity, 4 adjacent swaps, 3 pairs of disjoint
    // adjacent swaps (12|34, 12|45, 23|45) = 8, and 8 mirrored: p = 16 / 120.
    expect(spearmanPermutationP([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])).toBeCloseTo(16 / 120, 14);
  });

  const x8 = [0.3, 1.2, 0.7, 2.5, 1.9, 3.1, 2.2, 4.0];
  const y8 = [1.1, 0.4, 1.5, 2.0, 3.3, 2.4, 4.1, 2.9];

  it('Monte Carlo agrees with the exact p at n = 8', () => {
    // Exact: 6094 of the 40320 orderings reach |rho| >= 4/7 (enumerated in Python, independently).
    const exact = spearmanPermutationP(x8, y8);
    expect(exact).toBeCloseTo(6094 / 40320, 14);
    const mc = spearmanPermutationP(x8, y8, { exactUpTo: 0, permutations: 20000, seed: 7 });
    expect(Math.abs(mc - exact)).toBeLessThan(0.01); // sd of the estimate 0.0025
  });

  it('counts the observed ordering: (hits + 1) / (permutations + 1), deterministic per seed', () => {
    const x = Array.from({ length: 12 }, (_, i) => i);
    // Perfectly monotone: only the identity and reversal reach |rho| = 1, 2 of 12! orderings, so 99 draws miss them.
    expect(spearmanPermutationP(x, x, { permutations: 99 })).toBe(1 / 100);
    const y = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8];
    expect(spearmanPermutationP(x, y, { seed: 3, permutations: 500 })).toBe(spearmanPermutationP(x, y, { seed: 3, permutations: 500 }));
  });
});

describe('partialSpearman', () => {
  const x = [1, 2, 3, 4, 5];
  const y = [2, 1, 4, 3, 5];
  const z = [1, 3, 2, 5, 4];

  it('is the closed formula on the three rank correlations, and the correlation of rank residuals on z', () => {
    // r_xy: sum d^2 = 4 -> 0.8; r_xz: d = 0 1 1 1 1 -> 0.8; r_yz: d = 1 2 2 2 1, sum 14 -> 1 - 84/120 = 0.3.
    // (0.8 - 0.8 * 0.3) / sqrt((1 - 0.64) * (1 - 0.09)) = 0.56 / sqrt(0.3276) = 0.978399180940457.
    expect(partialSpearman(x, y, z)).toBeCloseTo(0.56 / Math.sqrt(0.36 * 0.91), 14);
    expect(partialSpearman(x, y, z)).toBeCloseTo(0.978399180940457, 13);
    const residual = (v: number[], c: number[]) => {
      const slope = (pearson(v, c) * Math.sqrt(variance(v))) / Math.sqrt(variance(c));
      return v.map((vi, i) => vi - 3 - slope * (c[i]! - 3)); // ranks 1..5 have mean 3
    };
    const variance = (v: number[]) => v.reduce((s, a) => s + (a - 3) ** 2, 0);
    expect(partialSpearman(x, y, z)).toBeCloseTo(pearson(residual(ranks(x), ranks(z)), residual(ranks(y), ranks(z))), 14);
  });

  it('is plain Spearman when z is uncorrelated with both, and NaN when x is a monotone function of z', () => {
    // zz against x = 1..5: d = -1 3 0 -3 -1, sum d^2 = 20 = n(n^2 - 1) / 6, so rho = 0; the same against -x.
    const zz = [2, 5, 3, 1, 4];
    expect(spearman(x, zz)).toBeCloseTo(0, 14);
    expect(
      partialSpearman(
        x,
        x.map((v) => -v),
        zz,
      ),
    ).toBeCloseTo(-1, 14);
    expect(
      partialSpearman(
        x,
        y,
        x.map((v) => v * v),
      ),
    ).toBeNaN();
  });

  it('its Freedman-Lane p: exact at n = 5, Monte Carlo near the exact at n = 8', () => {
    // Enumerated independently in Python (numpy least squares): 7 of the 120 permutations of y's rank residuals on z's ranks,
    // added back to the fit, give |partial| >= 0.9784.
    expect(partialSpearmanP(x, y, z)).toBeCloseTo(7 / 120, 14);
    const x8 = [0.3, 1.2, 0.7, 2.5, 1.9, 3.1, 2.2, 4.0];
    const y8 = [1.1, 0.4, 1.5, 2.0, 3.3, 2.4, 4.1, 2.9];
    const z8 = [2, 1, 4, 3, 6, 5, 8, 7];
    // The same enumeration: 32464 of 40320.
    const exact = partialSpearmanP(x8, y8, z8);
    expect(exact).toBeCloseTo(32464 / 40320, 12);
    const mc = partialSpearmanP(x8, y8, z8, { exactUpTo: 0, permutations: 20000, seed: 5 });
    expect(Math.abs(mc - exact)).toBeLessThan(0.012); // sd of the estimate 0.0028
  });
});

/** n draws of a standard bivariate normal with correlation rho (Box-Muller). */
function bivariate(n: number, rho: number, next: () => number): { x: number[]; y: number[] } {
  const x: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = Math.sqrt(-2 * Math.log(1 - next()));
    const t = 2 * Math.PI * next();
    const [a, b] = [r * Math.cos(t), r * Math.sin(t)];
    x.push(a);
    y.push(rho * a + Math.sqrt(1 - rho * rho) * b);
  }
  return { x, y };
}

describe('bootstrapSpearmanCI', () => {
  it('is [1, 1] for perfectly monotone data, with any resample that ties redrawn', () => {
    const x = [1, 2, 3, 4, 5, 6];
    expect(bootstrapSpearmanCI(x, x.map(Math.exp), { resamples: 2000 })).toEqual({ low: 1, high: 1 });
    expect(bootstrapSpearmanCI([1, 2, 3], [3, 2, 1], { resamples: 500 })).toEqual({ low: -1, high: -1 });
  });

  it('is the same for the same seed and differs for another', () => {
    const { x, y } = bivariate(20, 0.5, rng(11));
    const a = bootstrapSpearmanCI(x, y, { resamples: 2000, seed: 4 });
    expect(bootstrapSpearmanCI(x, y, { resamples: 2000, seed: 4 })).toEqual(a);
    expect(bootstrapSpearmanCI(x, y, { resamples: 2000, seed: 5 })).not.toEqual(a);
    expect(a.low).toBeLessThan(spearman(x, y));
    expect(a.high).toBeGreaterThan(spearman(x, y));
    const narrow = bootstrapSpearmanCI(x, y, { resamples: 2000, seed: 4, level: 0.5 });
    expect(narrow.low).toBeGreaterThan(a.low);
    expect(narrow.high).toBeLessThan(a.high);
  });

  it('covers the true rho at about its level on a simulated bivariate normal', () => {
    // Population Spearman of a bivariate normal with correlation 0.6: (6 / pi) asin(0.3) = 0.5822.
    const truth = (6 / Math.PI) * Math.asin(0.3);
    const next = rng(2024);
    const reps = 200;
    let covered = 0;
    for (let k = 0; k < reps; k++) {
      const { x, y } = bivariate(30, 0.6, next);
      const ci = bootstrapSpearmanCI(x, y, { resamples: 400, seed: k + 1 });
      if (ci.low <= truth && truth <= ci.high) covered++;
    }
    // Nominal 0.95; the percentile bootstrap of a correlation runs a little short at n = 30. Sd of the estimate ~0.016.
    expect(covered / reps).toBeGreaterThan(0.85);
    expect(covered / reps).toBeLessThanOrEqual(0.99);
  });
});

describe('input checks', () => {
  it('refuses unequal lengths, fewer than 3 points, non-finite values and a constant side, naming what is wrong', () => {
    expect(() => bootstrapSpearmanCI([1, 2, 3], [1, 2])).toThrow(/x has 3, y has 2 values/);
    expect(() => spearmanPermutationP([1, 2], [2, 1])).toThrow(/at least 3/);
    expect(() => partialSpearman([1, 2, 3], [1, NaN, 3], [3, 1, 2])).toThrow(/y\[1\] is NaN/);
    expect(() => partialSpearmanP([1, 2, 3], [1, 2, 3], [1, 2, Infinity])).toThrow(RangeError);
    expect(() => spearmanPermutationP([1, 1, 1], [1, 2, 3])).toThrow(/x is constant/);
    expect(() => bootstrapSpearmanCI([1, 2, 3], [1, 2, 3], { resamples: 0 })).toThrow(/resamples/);
    expect(() => spearmanPermutationP('abc' as unknown as number[], [1, 2, 3])).toThrow(TypeError);
  });
});

describe('rng', () => {
  it('is uniform on [0, 1) and repeats per seed', () => {
    const a = rng(9);
    const b = rng(9);
    const draws = Array.from({ length: 10000 }, () => a());
    expect(draws.every((u) => u >= 0 && u < 1)).toBe(true);
    expect(Array.from({ length: 10000 }, () => b())).toEqual(draws);
    expect(Math.abs(draws.reduce((s, u) => s + u, 0) / draws.length - 0.5)).toBeLessThan(0.01);
  });
});
