/**
 * The analytic chance level: how high a neuron's best |r| is expected to be
 * when its candidates are independent of it. Under independence, r of two
 * vectors of m samples has density proportional to (1 - r^2)^((m - 4) / 2);
 * the best of C candidates has E[max |r|] = integral over x of 1 - P(|r| <= x)^C.
 * This assumes independent samples (with --conv channels, neighbouring
 * positions are not, so it is a lower bound there); the permutation null
 * measures the real thing.
 */

// Within 1e-5 of a 4096-step integration over m = 3..1e5 and 1..1e8 candidates, at a quarter of the cost.
const STEPS = 1024;

/** Expected max |r| over `candidates` independent partners, for vectors of `m` samples. */
export function expectedMaxAbsR(m: number, candidates: number): number {
  if (candidates < 1) return 0;
  if (m <= 2) return 1;
  // With r = sin(theta), the density of theta on [0, pi/2] is proportional to cos^(m-3), smooth for every m >= 3.
  const top = Math.min(Math.PI / 2, 16 / Math.sqrt(m - 2));
  const h = top / STEPS;
  const logDensity = (theta: number) => (m - 3) * Math.log(Math.cos(theta));
  const density = Float64Array.from({ length: STEPS + 1 }, (_, i) => Math.exp(logDensity(i * h)));
  // Tail mass from the top down (no cancellation where P(|r| <= x) is within 1e-16 of 1).
  const tail = new Float64Array(STEPS + 1);
  for (let i = STEPS - 1; i >= 0; i--) tail[i] = tail[i + 1]! + ((density[i]! + density[i + 1]!) * h) / 2;
  const total = tail[0]!;
  let expected = 0;
  let previous = 1; // 1 - CDF^C at theta = 0
  for (let i = 1; i <= STEPS; i++) {
    const survive = -Math.expm1(candidates * Math.log1p(-tail[i]! / total));
    // d(sin theta) = cos(theta) d theta; trapezoid in x = sin(theta).
    expected += ((previous + survive) / 2) * (Math.sin(i * h) - Math.sin((i - 1) * h));
    previous = survive;
  }
  return Math.min(1, expected);
}

export interface ChanceLevel {
  /** Expected mean best |r| of F's neurons against n_G candidates, of G's against n_F, and their mean. */
  readonly forward: number;
  readonly backward: number;
  readonly symmetric: number;
}

export function chanceLevel(m: number, nF: number, nG: number): ChanceLevel {
  const forward = expectedMaxAbsR(m, nG);
  const backward = expectedMaxAbsR(m, nF);
  return { forward, backward, symmetric: (forward + backward) / 2 };
}

const solved = new Map<string, number>();

/** The fewest samples per neuron that bring the symmetric chance level under `target` (remembered: a run asks twice). */
export function samplesForChance(target: number, nF: number, nG: number): number {
  const key = `${target}:${nF}:${nG}`;
  const known = solved.get(key);
  if (known !== undefined) return known;
  const answer = solveSamples(target, nF, nG);
  solved.set(key, answer);
  return answer;
}

function solveSamples(target: number, nF: number, nG: number): number {
  const above = (m: number) => chanceLevel(m, nF, nG).symmetric >= target;
  // Start near the Gaussian-tail answer, m ≈ 2 ln(2C) / target², and widen until it brackets.
  const guess = Math.max(4, Math.round((2 * Math.log(2 * Math.max(nF, nG, 1))) / (target * target)));
  let lo = Math.max(3, Math.floor(guess / 2));
  let hi = Math.max(lo + 1, guess * 2);
  while (lo > 3 && !above(lo)) lo = Math.max(3, Math.floor(lo / 2));
  while (above(hi)) {
    lo = hi;
    hi *= 2;
    if (hi > 1 << 30) return hi;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (above(mid)) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * Before any compute, when the probes are too few for the score to rise
 * clearly above chance: a warning from the analytic estimate, or, when the
 * permutation null will measure the chance level, a note that says so (the
 * warning then comes from the measured null: report.ts, chanceWarning).
 */
export function warnChance(m: number, probes: number, nF: number, nG: number, nullOn: boolean, log: (line: string) => void): void {
  const chance = chanceLevel(m, nF, nG).symmetric;
  if (chance <= 0.3) return;
  const needed = Math.ceil(samplesForChance(0.1, nF, nG) / (m / probes));
  if (nullOn) {
    log(
      `note: with ${probes} probes the analytic chance level of this score is about ${chance.toFixed(2)} (${needed} probes would bring it under 0.1); the permutation null will measure it`,
    );
    return;
  }
  log(
    `warning: with ${probes} probes the chance level of this score is about ${chance.toFixed(2)} (analytic): two unrelated models of these sizes would score that high. Use at least ${needed} probes to bring it under 0.1 (neurocorr plan F G shows this before any compute).`,
  );
}
