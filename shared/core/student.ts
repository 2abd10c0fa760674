/** The Student t quantile the permutation null widens its standard error by (null-stats.ts). */

const Z975 = 1.959963984540054;

/** t(ν) at 0.975 from the Cornish-Fisher expansion (Abramowitz and Stegun 26.7.5): within 1e-3 from ν = 3 on. */
function expansion(nu: number): number {
  const x = Z975;
  return (
    x +
    (x ** 3 + x) / 4 / nu +
    (5 * x ** 5 + 16 * x ** 3 + 3 * x) / 96 / nu ** 2 +
    (3 * x ** 7 + 19 * x ** 5 + 17 * x ** 3 - 15 * x) / 384 / nu ** 3 +
    (79 * x ** 9 + 776 * x ** 7 + 1482 * x ** 5 - 1920 * x ** 3 - 945 * x) / 92160 / nu ** 4
  );
}

/** Exact at ν = 1 (tan(0.475π)) and ν = 2; between them and up to 3, linear in 1/ν. */
const T1 = 12.706204736174698;
const T2 = 4.302652729749464;

/** The 0.975 quantile of Student's t with `nu` (possibly fractional) degrees of freedom; the normal's past 1e6, +Infinity below 1. */
export function studentT975(nu: number): number {
  if (!(nu >= 1)) return Infinity;
  if (nu > 1e6) return Z975;
  if (nu >= 3) return expansion(nu);
  const between = (a: number, ta: number, b: number, tb: number) => ta + ((1 / nu - 1 / a) / (1 / b - 1 / a)) * (tb - ta);
  return nu <= 2 ? between(1, T1, 2, T2) : between(2, T2, 3, expansion(3));
}

/** The normal's 0.975 quantile. */
export const NORMAL_975 = Z975;

/** Welch-Satterthwaite degrees of freedom of a sum of variance estimates, each with its own degrees of freedom. */
export function satterthwaite(parts: readonly { readonly variance: number; readonly df: number }[]): number {
  const total = parts.reduce((s, p) => s + p.variance, 0);
  const denominator = parts.reduce((s, p) => (p.variance > 0 && p.df > 0 ? s + (p.variance * p.variance) / p.df : s), 0);
  return denominator > 0 ? (total * total) / denominator : Infinity;
}
