/**
 * The statistics of the claim (issue 26, deliverable 4): bootstrap intervals
 * and permutation p-values for Spearman's rho over nets, partial rank
 * correlation controlling for a third variable, Holm's correction and the
 * design's detectable effect. Pure and deterministic given the seeds.
 */
import { mulberry32 } from '#dist/shared/core/index.js';
import { pearson, ranks, spearman, spearmanP } from './stats.js';

/** Seeded uniform on [0, 1) (mulberry32). */
export const rng = mulberry32;

export interface Interval {
  readonly low: number;
  readonly high: number;
}

const horner = (cs: readonly number[], r: number): number => cs.reduce((acc, c) => acc * r + c, 0);
// Wichura's AS241 (PPND16, Applied Statistics 37, 1988), about 1e-16 relative; coefficients highest degree first.
const CENTRAL = [
  [2509.0809287301227, 33430.57558358813, 67265.7709270087, 45921.95393154987, 13731.69376550946, 1971.5909503065513, 133.14166789178438, 3.3871328727963665],
  [5226.495278852854, 28729.085735721943, 39307.89580009271, 21213.794301586597, 5394.196021424751, 687.1870074920579, 42.31333070160091, 1],
] as const;
const NEAR = [
  [
    0.0007745450142783414, 0.022723844989269184, 0.2417807251774506, 1.2704582524523684, 3.6478483247632045, 5.769497221460691, 4.630337846156546,
    1.4234371107496835,
  ],
  [1.0507500716444169e-9, 0.0005475938084995345, 0.015198666563616457, 0.14810397642748008, 0.6897673349851, 1.6763848301838038, 2.053191626637759, 1],
] as const;
const FAR = [
  [
    2.0103343992922881e-7, 0.000027115555687434876, 0.0012426609473880784, 0.026532189526576124, 0.29656057182850487, 1.7848265399172913, 5.463784911164114,
    6.657904643501103,
  ],
  [
    2.0442631033899397e-15, 1.421511758316446e-7, 0.000018463183175100548, 0.0007868691311456133, 0.014875361290850615, 0.1369298809227358, 0.599832206555888,
    1,
  ],
] as const;

/** The standard normal's quantile function (inverse CDF); ±Infinity at 0 and 1. */
export function normalQuantile(p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`normalQuantile: p must be in [0, 1], got ${p}`);
  if (p === 0 || p === 1) return p === 0 ? -Infinity : Infinity;
  const q = p - 0.5;
  if (Math.abs(q) <= 0.425) {
    const r = 0.180625 - q * q;
    return (q * horner(CENTRAL[0], r)) / horner(CENTRAL[1], r);
  }
  const r = Math.sqrt(-Math.log(q < 0 ? p : 1 - p));
  const [num, den] = r <= 5 ? NEAR : FAR;
  const x = horner(num, r - (r <= 5 ? 1.6 : 5)) / horner(den, r - (r <= 5 ? 1.6 : 5));
  return q < 0 ? -x : x;
}

/** Refuses what no rank correlation can be computed from: unequal lengths, fewer than 3 points, non-finite values, a constant side. */
function check(fn: string, sides: Readonly<Record<string, readonly number[]>>): number {
  const entries = Object.entries(sides);
  for (const [name, xs] of entries) if (!Array.isArray(xs)) throw new TypeError(`${fn}: ${name} must be an array of numbers`);
  const n = entries[0]![1].length;
  for (const [name, xs] of entries) {
    if (xs.length !== n)
      throw new RangeError(`${fn}: ${entries.map(([k, v]) => `${k} has ${v.length}`).join(', ')} values; they must be paired (equal lengths)`);
    if (n < 3) throw new RangeError(`${fn}: ${name} has ${n} values; a rank correlation needs at least 3`);
    const bad = xs.findIndex((x) => typeof x !== 'number' || !Number.isFinite(x));
    if (bad >= 0) throw new RangeError(`${fn}: ${name}[${bad}] is ${String(xs[bad])}; every value must be a finite number`);
    if (xs.every((x) => x === xs[0])) throw new RangeError(`${fn}: ${name} is constant; its rank correlation is undefined`);
  }
  return n;
}

function checkCount(fn: string, name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${fn}: ${name} must be a positive integer, got ${v}`);
  return v;
}

function checkLevel(fn: string, name: string, v: number): number {
  if (!(v > 0 && v < 1)) throw new RangeError(`${fn}: ${name} must be strictly between 0 and 1, got ${v}`);
  return v;
}

/** The q-quantile of sorted values, interpolated linearly between order statistics (Hyndman and Fan's type 7, R's default). */
function quantileSorted(sorted: readonly number[], q: number): number {
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  return lo + 1 < sorted.length ? sorted[lo]! + (h - lo) * (sorted[lo + 1]! - sorted[lo]!) : sorted[lo]!;
}

/** Percentile bootstrap over the n paired observations (nets), resampled with replacement; resamples whose rho is undefined (a constant side) are drawn again. */
export function bootstrapSpearmanCI(x: readonly number[], y: readonly number[], o: { resamples?: number; seed?: number; level?: number } = {}): Interval {
  const n = check('bootstrapSpearmanCI', { x, y });
  const resamples = checkCount('bootstrapSpearmanCI', 'resamples', o.resamples ?? 10000);
  const level = checkLevel('bootstrapSpearmanCI', 'level', o.level ?? 0.95);
  const next = rng(o.seed ?? 1);
  const rhos: number[] = [];
  const bx = new Array<number>(n);
  const by = new Array<number>(n);
  while (rhos.length < resamples) {
    for (let i = 0; i < n; i++) {
      const j = Math.floor(next() * n);
      bx[i] = x[j]!;
      by[i] = y[j]!;
    }
    const rho = spearman(bx, by);
    if (!Number.isNaN(rho)) rhos.push(rho);
  }
  rhos.sort((a, b) => a - b);
  return { low: quantileSorted(rhos, (1 - level) / 2), high: quantileSorted(rhos, (1 + level) / 2) };
}

function shuffle(xs: number[], next: () => number): void {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
}

/** Calls `visit` with every permutation of `xs` in place (Heap's algorithm). */
function everyPermutation(xs: number[], visit: (p: readonly number[]) => void): void {
  const c = new Array<number>(xs.length).fill(0);
  visit(xs);
  for (let i = 1; i < xs.length;) {
    if (c[i]! < i) {
      const j = i % 2 === 0 ? 0 : c[i]!;
      [xs[i], xs[j]] = [xs[j]!, xs[i]!];
      visit(xs);
      c[i]!++;
      i = 1;
    } else c[i++] = 0;
  }
}

// Ties in |statistic| within this count as reaching the observed value, as in stats.ts's spearmanP.
const TIE = 1e-12;

/**
 * Two-sided permutation p of Spearman's rho: exact over all permutations for n <= 8 (`exactUpTo`), else Monte Carlo with
 * (hits + 1) / (permutations + 1).
 */
export function spearmanPermutationP(x: readonly number[], y: readonly number[], o: { permutations?: number; seed?: number; exactUpTo?: number } = {}): number {
  const n = check('spearmanPermutationP', { x, y });
  const permutations = checkCount('spearmanPermutationP', 'permutations', o.permutations ?? 10000);
  if (n <= (o.exactUpTo ?? 8)) return spearmanP(x, y);
  const rx = ranks(x);
  const ry = ranks(y);
  const observed = Math.abs(pearson(rx, ry));
  const next = rng(o.seed ?? 1);
  let hits = 0;
  for (let k = 0; k < permutations; k++) {
    shuffle(ry, next);
    if (Math.abs(pearson(rx, ry)) >= observed - TIE) hits++;
  }
  return (hits + 1) / (permutations + 1);
}

/** The residuals of `v` after its least-squares line on `c`. */
function residuals(v: readonly number[], c: readonly number[]): number[] {
  const n = v.length;
  const mc = c.reduce((a, b) => a + b, 0) / n;
  const mv = v.reduce((a, b) => a + b, 0) / n;
  let scv = 0;
  let scc = 0;
  for (let i = 0; i < n; i++) {
    scv += (c[i]! - mc) * (v[i]! - mv);
    scc += (c[i]! - mc) ** 2;
  }
  return v.map((vi, i) => vi - mv - (scv / scc) * (c[i]! - mc));
}

/** Partial Spearman: the Pearson correlation of x's and y's ranks after each is regressed on z's ranks; NaN where x or y is a monotone function of z. */
export function partialSpearman(x: readonly number[], y: readonly number[], z: readonly number[]): number {
  check('partialSpearman', { x, y, z });
  const [rx, ry, rz] = [ranks(x), ranks(y), ranks(z)];
  const [rxy, rxz, ryz] = [pearson(rx, ry), pearson(rx, rz), pearson(ry, rz)];
  const d = (1 - rxz * rxz) * (1 - ryz * ryz);
  return d > 1e-15 ? (rxy - rxz * ryz) / Math.sqrt(d) : NaN;
}

/**
 * The permutation p of partialSpearman (Freedman and Lane 1983): y's rank residuals on z's ranks are permuted, added back to
 * the fit and the statistic recomputed; two-sided, exact over all permutations for n <= 8 (`exactUpTo`), else Monte Carlo
 * with (hits + 1) / (permutations + 1). NaN where the statistic is.
 */
export function partialSpearmanP(
  x: readonly number[],
  y: readonly number[],
  z: readonly number[],
  o: { permutations?: number; seed?: number; exactUpTo?: number } = {},
): number {
  const n = check('partialSpearmanP', { x, y, z });
  const permutations = checkCount('partialSpearmanP', 'permutations', o.permutations ?? 10000);
  const rz = ranks(z);
  const ex = residuals(ranks(x), rz);
  const ey = residuals(ranks(y), rz);
  // Fit + permuted residuals, regressed on z again, leaves the permuted residuals' own residuals on z.
  const statistic = (e: readonly number[]) => pearson(ex, residuals(e, rz));
  const observed = Math.abs(statistic(ey));
  if (!Number.isFinite(observed) || !Number.isFinite(partialSpearman(x, y, z))) return NaN;
  let hits = 0;
  const count = (e: readonly number[]) => {
    if (Math.abs(statistic(e)) >= observed - TIE) hits++;
  };
  if (n <= (o.exactUpTo ?? 8)) {
    let total = 0;
    everyPermutation([...ey], (e) => {
      count(e);
      total++;
    });
    return hits / total;
  }
  const next = rng(o.seed ?? 1);
  const e = [...ey];
  for (let k = 0; k < permutations; k++) {
    shuffle(e, next);
    count(e);
  }
  return (hits + 1) / (permutations + 1);
}

/** Holm's step-down adjusted p-values, in the input order, each capped at 1 and monotone. */
export function holm(ps: readonly number[]): number[] {
  ps.forEach((p, i) => {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`holm: ps[${i}] is ${p}; every p-value must be in [0, 1]`);
  });
  const m = ps.length;
  const order = ps.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0]);
  const adjusted = new Array<number>(m);
  let running = 0;
  order.forEach(([p, i], k) => {
    running = Math.max(running, Math.min(1, (m - k) * p));
    adjusted[i] = running;
  });
  return adjusted;
}

/** The smallest |rho| a two-sided test at level alpha detects with the given power on n observations (Fisher z with the Spearman variance 1.06 / (n - 3), Fieller, Hartley and Pearson 1957). */
export function detectableRho(n: number, o: { alpha?: number; power?: number } = {}): number {
  if (!Number.isInteger(n) || n < 4) throw new RangeError(`detectableRho: n must be an integer of at least 4 (the variance is 1.06 / (n - 3)), got ${n}`);
  const alpha = checkLevel('detectableRho', 'alpha', o.alpha ?? 0.05);
  const power = checkLevel('detectableRho', 'power', o.power ?? 0.8);
  return Math.tanh((normalQuantile(1 - alpha / 2) + normalQuantile(power)) * Math.sqrt(1.06 / (n - 3)));
}
