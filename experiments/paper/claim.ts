/**
 * `npm run paper -- --claim`: the paper's claim tested with power (issue 26):
 * every net of the family on every data set and seed, Algorithm 1 swept over
 * its step size, the step size picked by SELECTION_RULE from degradations
 * alone (logged before any score is computed), then one zoo per data set,
 * seed and setting, the correlation table and REPORT.md's claim section.
 * `--claim --quick`: the QUICK configuration, written to the cache folder
 * only (claim-quick/: claim-results.json, claim-section.md).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { SELECTION_RULE, statRows, sweepOf, type SeedZoos } from './claim-analysis.js';
import { estimateFull } from './claim-estimate.js';
import { FULL, QUICK, type ClaimConfig } from './claim-family.js';
import { claimSection, withClaimSection } from './claim-report.js';
import { runSeed, type SeedRun } from './claim-run.js';
import { runZoos } from './claim-zoo.js';
import { CACHE, cacheFile, keyOf, log, ROOT } from './common.js';
import type { Tf } from './tf.js';

/** Where the full run's test split sizes come from: 10,000 images split 75/25. */
const FULL_TRAIN = 7500;
const FULL_TEST = 2500;

interface Measured {
  readonly wallSeconds: number;
  /** Seconds outside training, attacks and zoos (targets, activations, statistics). */
  readonly other: number;
}

/** The run's times as first measured (from an empty cache), kept in the cache: a rerun from the cache takes none. */
function firstMeasured(c: ClaimConfig, now: Measured): Measured {
  const file = cacheFile('claim-seconds', `${keyOf(c)}.json`);
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Measured;
  writeFileSync(file, JSON.stringify(now));
  return now;
}

export async function runClaim(tf: Tf, quick: boolean): Promise<void> {
  const started = performance.now();
  const c = quick ? QUICK : FULL;
  const outDir = quick ? join(CACHE, 'claim-quick') : join(ROOT, 'experiments', 'paper');
  mkdirSync(outDir, { recursive: true });
  let stepSeconds = 0;
  const runs: SeedRun[] = [];
  for (const seed of c.seeds)
    for (const dataset of c.datasets) {
      const r = await runSeed(tf, dataset, seed, c);
      runs.push(r);
      stepSeconds += r.computedSeconds;
    }
  const sweeps = c.datasets.map((d) => sweepOf(d, runs, c));
  log(`claim: rule "${SELECTION_RULE}"`);
  for (const s of sweeps)
    log(`claim ${s.dataset}: ε = ${(s.epsilons[s.chosen]! * 255).toFixed(3)}/255 (mean degradation ${(100 * s.mean[s.chosen]!).toFixed(1)}%)`);

  const all: SeedZoos[] = [];
  for (const run of runs) all.push({ run, zoos: await runZoos(run, c) });
  const t = performance.now();
  const rows = statRows(all, sweeps, c);
  const statSeconds = (performance.now() - t) / 1000;
  const wallSeconds = (performance.now() - started) / 1000;
  const zooSeconds = all.reduce((a, s) => a + s.zoos.reduce((b, z) => b + (Number.isFinite(z.wallSeconds) && z.computed > 0 ? z.wallSeconds : 0), 0), 0);
  // The rest: targets, activations, loading; measured only where this run computed its steps (a cached run measures ~0).
  const first = firstMeasured(c, { wallSeconds, other: Math.max(0, wallSeconds - stepSeconds - zooSeconds - statSeconds) + statSeconds });
  const estimate = estimateFull(all, c, FULL, first.other, FULL_TEST, FULL_TRAIN);
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  const meta = {
    command: `npm run paper -- ${process.argv.slice(2).join(' ')}`,
    machine: `${cpu}, ${availableParallelism()} cores, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}, TensorFlow.js ${tf.version_core} on ${tf.getBackend()}`,
    wallSeconds,
    firstWallSeconds: first.wallSeconds,
    estimate,
    quick,
  };
  const section = claimSection(runs, sweeps, rows, c, meta);
  writeFileSync(join(outDir, 'claim-section.md'), section);
  writeFileSync(
    join(outDir, 'claim-results.json'),
    JSON.stringify({ config: c, rule: SELECTION_RULE, meta, sweeps, runs: all.map((s) => ({ ...s.run, zoos: s.zoos })), rows }, null, 1),
  );
  if (!quick) {
    const report = join(outDir, 'REPORT.md');
    writeFileSync(report, withClaimSection(existsSync(report) ? readFileSync(report, 'utf8') : '', section));
  }
  log(`claim: wrote ${outDir} after ${(wallSeconds / 60).toFixed(1)} min; full run estimated at ${(estimate.total / 3600).toFixed(1)} h`);
}
