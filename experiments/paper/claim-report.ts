/** The claim's section of REPORT.md: the sweep, the family's spread, the correlation table and an answer drawn from the numbers. */
import { CLAIM_SIGN, SELECTION_RULE, TARGETS, type StatRow, type Sweep, type Target } from './claim-analysis.js';
import type { ClaimConfig } from './claim-family.js';
import type { SeedRun } from './claim-run.js';
import type { Estimate } from './claim-estimate.js';
import { MNIST_SD } from './claim-family.js';
import type { DatasetName } from './data.js';
import { mean } from './stats.js';

export const CLAIM_HEADING = '## The claim, tested with power';

export interface ClaimMeta {
  readonly command: string;
  readonly machine: string;
  readonly wallSeconds: number;
  /** The wall time of the run that computed every step (from an empty cache). */
  readonly firstWallSeconds: number;
  readonly estimate: Estimate;
  readonly quick: boolean;
}

const DNAME: Record<DatasetName, string> = { mnist: 'MNIST', fashion: 'Fashion-MNIST' };
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '—');
const f3 = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : '—');
const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '—');
const min = (xs: readonly number[]) => Math.min(...xs);
const max = (xs: readonly number[]) => Math.max(...xs);
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2;
};
const epsName = (e: number, c: ClaimConfig): string => {
  const tag = e === c.printed ? ' (printed)' : Math.abs(e - c.printed * MNIST_SD) < 1e-12 ? ' (printed, on normalized pixels)' : '';
  return `${(e * 255).toFixed(2)}/255${tag}`;
};
const minutes = (s: number) => `${(s / 60).toFixed(1)} min`;

/** The answer: what the Holm-corrected tests support, per setting, with effect sizes, and what the design could not see. */
export function answer(rows: readonly StatRow[], c: ClaimConfig): string {
  const out: string[] = [];
  const n = rows[0]?.n ?? 0;
  const det = rows[0]?.detectable ?? NaN;
  out.push(`Over ${n} nets per data set (seed means), ${rows.length} tests, Holm-corrected, detect |rho| ≥ ${f2(det)} with 80% power.`);
  for (const setting of [...new Set(rows.map((r) => r.setting))]) {
    const rs = rows.filter((r) => r.setting === setting);
    const sig = rs.filter((r) => r.pHolm < 0.05);
    const withClaim = sig.filter((r) => Math.sign(r.rho) === CLAIM_SIGN[r.target]);
    const against = sig.filter((r) => Math.sign(r.rho) !== CLAIM_SIGN[r.target]);
    const partial = withClaim.filter((r) => r.partialPHolm < 0.05 && Math.sign(r.partial) === CLAIM_SIGN[r.target]);
    const name = setting === 'published' ? 'In the published setting' : "In the text's setting";
    if (sig.length === 0) {
      const best = [...rs].sort((a, b) => Math.abs(b.rho) - Math.abs(a.rho))[0];
      const way = best && Math.sign(best.rho) === CLAIM_SIGN[best.target] ? 'the claimed direction' : 'against the claimed direction';
      out.push(
        `${name}, no test reaches Holm-adjusted p < 0.05` +
          (best
            ? ` (the largest |rho| is ${f2(best.rho)}, ${way}: ${best.predictor}/${best.kind} against ${best.target} on ${DNAME[best.dataset]}, 95% CI ${f2(best.ci.low)} to ${f2(best.ci.high)})`
            : '') +
          `: the data do not support the claim there; the design would have found |rho| ≥ ${f2(det)} with 80% power, and smaller effects are not excluded.`,
      );
      continue;
    }
    const best = [...withClaim].sort((a, b) => Math.abs(b.rho) - Math.abs(a.rho))[0];
    const robust = withClaim.filter((r) => r.target !== 'clean accuracy' && r.target !== 'generalization gap').length;
    out.push(
      `${name}, ${withClaim.length} of ${rs.length} tests are significant in the claimed direction (${robust} of them on robustness targets) and ${against.length} in the opposite one` +
        (best
          ? `; the strongest is ${best.predictor}/${best.kind} against ${best.target} on ${DNAME[best.dataset]}: rho ${f2(best.rho)} (95% CI ${f2(best.ci.low)} to ${f2(best.ci.high)}, Holm p ${f3(best.pHolm)})`
          : '') +
        `. Controlling for clean accuracy, ${partial.length} of the ${withClaim.length} stay significant in the claimed direction` +
        (partial.length === 0 && withClaim.length > 0 ? ': what the score predicts there, accuracy predicts as well.' : '.'),
    );
  }
  void c;
  return out.join(' ');
}

export function claimSection(runs: readonly SeedRun[], sweeps: readonly Sweep[], rows: readonly StatRow[], c: ClaimConfig, meta: ClaimMeta): string {
  const L: string[] = [CLAIM_HEADING, ''];
  L.push(`**Answer.** ${answer(rows, c)}`, '');
  L.push('### How it was run', '');
  L.push(
    `- Command: \`${meta.command}\`; ${minutes(meta.firstWallSeconds)} of wall time from an empty cache (${minutes(meta.wallSeconds)} for the run that wrote this section) on ${meta.machine}.`,
  );
  L.push(
    `- Estimated time of \`npm run paper -- --claim\` from an empty cache, from ${meta.quick ? 'the quick run' : 'this run'}'s measured step times: ${minutes(meta.estimate.total)} (training ${minutes(meta.estimate.train)}, attacks ${minutes(meta.estimate.attack)}, zoos ${minutes(meta.estimate.zoo)}, the rest ${minutes(meta.estimate.other)}). The run reuses the paper's nets and the printed attack where \`npm run paper\` cached them; the estimate does not count on that, and it assumes the machine to itself (under load, \`npm run paper\`'s attacks took up to twice as long).`,
  );
  L.push(
    `- Data sets: ${c.datasets.map((d) => DNAME[d]).join(', ')}; seeds ${c.seeds.join(', ')}; ${runs[0]?.nTrain ?? 0} training and ${runs[0]?.nTest ?? 0} test images per seed.`,
  );
  L.push(`- Nets (${c.nets.length}): ${c.nets.map((n) => `${n.spec.name} (${n.epochs} epoch${n.epochs === 1 ? '' : 's'})`).join(', ')}.`);
  L.push(
    `- Attack: Algorithm 1, N_ep = ${c.attackIterations}, at ε per step ${c.epsilons.map((e) => epsName(e, c)).join(', ')}. Selection rule, fixed in the code before any score is read: "${SELECTION_RULE}".`,
  );
  L.push(`- Corruptions: Gaussian noise σ = ${c.noiseSigma} (seeded, clipped to [0, 1]); a 5×5 Gaussian blur, σ = ${c.blurSigma}.`);
  L.push(
    `- Scores: one \`zoo\` job per data set, seed and setting (published: penalized match, forward, first 10 probes; text's: paper match, symmetric, every probe), each with its permutation null (${c.nullPermutations} permutations). Probes: each seed's own test split, as in the tables above; the predictors compare nets of one seed only, so a probe set common to all seeds is not needed, and a zoo per seed scores a third of the pairs that one zoo of every net × seed would.`,
  );
  L.push(
    `- Statistics: Spearman's rho over the MLPs' seed means (the CNN is the reference), bootstrap 95% CI (${c.bootstrap} resamples), permutation p (${c.permutations}), partial rho controlling for clean accuracy with its permutation p, Holm's correction over every test of the table (p and partial p each), the smallest |rho| detected with 80% power at α = 0.05.`,
    '',
  );

  L.push('### The sweep: mean degradation over every net and seed', '');
  L.push(`| ε per step | ${sweeps.map((s) => `${DNAME[s.dataset]} mean (nets' range)`).join(' | ')} |`, `| --- |${sweeps.map(() => ' --- |').join('')}`);
  c.epsilons.forEach((e, i) => {
    const cells = sweeps.map((s) => {
      const per = Object.values(s.perNet).map((v) => v[i]!);
      return `${pct(s.mean[i]!)}${s.chosen === i ? ' **chosen**' : ''} (${pct(min(per))}–${pct(max(per))})`;
    });
    L.push(`| ${epsName(e, c)} | ${cells.join(' | ')} |`);
  });
  L.push('');

  L.push('### Degradation per net (seed means)', '');
  const cols = sweeps.flatMap((s) => c.epsilons.map((e) => `${DNAME[s.dataset]} ${epsName(e, c)}`));
  L.push(`| net | ${cols.join(' | ')} |`, `| --- |${cols.map(() => ' --- |').join('')}`);
  for (const n of c.nets) L.push(`| ${n.spec.name} | ${sweeps.flatMap((s) => s.perNet[n.spec.name]!.map(pct)).join(' | ')} |`);
  L.push('');

  L.push("### The family's spread (MLPs, seed means: min / median / max)", '');
  L.push(`| data set | ${TARGETS.join(' | ')} |`, `| --- |${TARGETS.map(() => ' --- |').join('')}`);
  for (const s of sweeps) {
    const rs = runs.filter((r) => r.dataset === s.dataset);
    const nets = c.nets.filter((n) => n.spec.kind === 'mlp').map((n) => n.spec.name);
    const printed = c.epsilons.indexOf(c.printed);
    const value = (net: string, t: Target) =>
      mean(
        rs.map((r) => {
          const x = r.nets[net]!;
          return {
            'degradation (calibrated ε)': x.degradation[s.chosen]!,
            'degradation (printed ε)': x.degradation[printed]!,
            'clean accuracy': x.clean,
            'generalization gap': x.gap,
            'noise accuracy': x.noise,
            'blur accuracy': x.blur,
          }[t];
        }),
      );
    L.push(
      `| ${DNAME[s.dataset]} | ${TARGETS.map((t) => nets.map((n) => value(n, t)))
        .map((v) => `${pct(min(v))} / ${pct(median(v))} / ${pct(max(v))}`)
        .join(' | ')} |`,
    );
  }
  L.push('');

  L.push('### Correlations (predictor against target, over the MLPs)', '');
  L.push(
    '| data set | setting | predictor | scores | target | rho [95% CI] | p | Holm p | partial rho | partial p | Holm partial p |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const r of rows)
    L.push(
      `| ${DNAME[r.dataset]} | ${r.setting === 'published' ? 'published' : "text's"} | ${r.predictor === 'cnn' ? 'with the CNN' : 'mean with the others'} | ${r.kind} | ${r.target} | ${f2(r.rho)} [${f2(r.ci.low)}, ${f2(r.ci.high)}] | ${f3(r.p)} | ${f3(r.pHolm)} | ${f2(r.partial)} | ${f3(r.partialP)} | ${f3(r.partialPHolm)} |`,
    );
  L.push('', `Detectable |rho| at 80% power with ${rows[0]?.n ?? 0} nets: ${f2(rows[0]?.detectable ?? NaN)}.`, '');
  return L.join('\n');
}

/** `report` with the claim's section put in place of an earlier one (up to the next `## `), or appended. */
/** The answer that heads REPORT.md (written by hand from the claim section's numbers), kept when the tables are rewritten. */
export const ANSWER_HEADING = '## The answer: does the score predict robustness? (the claim, tested with power)';

/** `report` with `previous`'s answer section, if it has one, put before its first section. */
export function withAnswer(previous: string, report: string): string {
  const start = previous.indexOf(`\n${ANSWER_HEADING}\n`);
  if (start < 0) return report;
  const end = previous.indexOf('\n## ', start + ANSWER_HEADING.length + 1);
  const answer = previous.slice(start + 1, end < 0 ? undefined : end + 1);
  const at = report.indexOf('\n## ');
  return at < 0 ? `${report.trimEnd()}\n\n${answer}` : `${report.slice(0, at + 1)}${answer}${report.slice(at + 1)}`;
}

export function withClaimSection(report: string, section: string): string {
  const start = report.indexOf(`\n${CLAIM_HEADING}\n`);
  if (start < 0) return `${report.trimEnd()}\n\n${section}`;
  const next = report.indexOf('\n## ', start + CLAIM_HEADING.length + 1);
  return `${report.slice(0, start + 1)}${section}${next < 0 ? '' : `\n${report.slice(next + 1)}`}`;
}
