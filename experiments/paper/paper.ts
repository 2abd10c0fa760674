/**
 * `npm run paper`: reproduces the paper's MNIST-family experiments (Tables
 * 2-4, Algorithm 1) on MNIST and Fashion-MNIST with 3 seeds and writes
 * experiments/paper/REPORT.md (with its figure). `-- --quick`: MNIST, one
 * seed, short training (5 epochs, the CNN 2) and N_ep = 3, written to the cache
 * folder only (with results.json, which test/paper.test.ts checks).
 * Trained nets, attacks, activations and scores are cached by their inputs
 * in node_modules/.cache/neurocorr-paper (`NEUROCORR_PAPER_CACHE`), so a
 * re-run recomputes nothing that is done. `-- --seeds 1,2`: only those seeds.
 * `-- --claim` (and `--claim --quick`): the claim tested with power (claim.ts).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { CACHE, log, ROOT } from './common.js';
import { DATASETS } from './data.js';
import { writeFigure } from './figure.js';
import { writeReport } from './report.js';
import { runClaim } from './claim.js';
import { CLAIM_HEADING, withAnswer, withClaimSection } from './claim-report.js';
import { runOne, type Config, type RunResult } from './run.js';
import { loadTrainingTf, type Tf } from './tf.js';

const quick = process.argv.includes('--quick');
const CONFIG: Config = quick
  ? { limit: 10000, mlpEpochs: 5, cnnEpochs: 2, batch: 64, lr: 1e-3, epsilon: 10 / 255, attackIterations: 3 }
  : { limit: 10000, mlpEpochs: 10, cnnEpochs: 3, batch: 64, lr: 1e-3, epsilon: 10 / 255, attackIterations: 10 };
const SEEDS = quick ? [1] : [1, 2, 3];

/** `--seeds 1,2`: run (or report from the cache) only these of SEEDS, e.g. to write the report of the seeds a cut-short run finished. */
function seedsToRun(): number[] {
  const i = process.argv.indexOf('--seeds');
  if (i < 0) return SEEDS;
  const list = (process.argv[i + 1] ?? '').split(',').map(Number);
  if (list.length === 0 || !list.every((x) => SEEDS.includes(x))) {
    process.stderr.write(`paper: --seeds takes a comma-separated list of ${SEEDS.join(', ')}, e.g. --seeds 1,2\n`);
    process.exit(2);
  }
  return list;
}
const SETS = quick ? (['mnist'] as const) : DATASETS;
const CONV_SPEED =
  "one batch of 64 through the CNN (forward, backward, Adam) took 206 ms on the wasm backend with the patches × matrix filter gradient, 1967 ms (9.6×) on the cpu backend with the same gradient and 10882 ms (53×) on the cpu backend with tfjs's own conv2d gradient (`node dist-dev/experiments/paper/conv-speed.js 20`, 20 batches, under `nice -n 19` on 2 cores shared with other jobs).";

async function main(): Promise<void> {
  const started = performance.now();
  const tf = await loadTrainingTf();
  log(`TensorFlow.js backend: ${tf.getBackend()}; cache ${CACHE}`);
  if (process.argv.includes('--claim')) return runClaim(tf, quick);
  const outDir = quick ? join(CACHE, 'quick') : join(ROOT, 'experiments', 'paper');
  mkdirSync(outDir, { recursive: true });
  const runs: RunResult[] = [];
  // Seed by seed, every data set, the report rewritten after each: a run cut short leaves the report of the seeds it finished.
  for (const seed of seedsToRun()) {
    for (const dataset of SETS) runs.push(await runOne(tf, dataset, seed, CONFIG));
    await writeAll(tf, outDir, runs, (performance.now() - started) / 1000);
  }
}

async function writeAll(tf: Tf, outDir: string, runs: readonly RunResult[], wallSeconds: number): Promise<void> {
  const figure = 'attacked.png';
  await writeFigure(
    SETS.map((d) => runs.find((r) => r.dataset === d)!),
    join(outDir, figure),
  );
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU';
  const seeds = [...new Set(runs.map((r) => r.seed))];
  const meta = {
    command: `npm run paper${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: `${cpu}, ${availableParallelism()} cores, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}, TensorFlow.js ${tf.version_core} on ${tf.getBackend()}`,
    wallSeconds,
    config: CONFIG,
    seeds,
    plannedSeeds: SEEDS,
    convSpeed: CONV_SPEED,
  };
  writeFileSync(join(outDir, 'REPORT.md'), withClaim(outDir, writeReport(runs, meta, figure)));
  writeFileSync(join(outDir, 'results.json'), JSON.stringify({ config: CONFIG, seeds, runs: runs.map((r) => ({ ...r, examples: undefined })) }, null, 1));
  log(`wrote ${join(outDir, 'REPORT.md')} (seeds ${seeds.join(', ')}) after ${(wallSeconds / 60).toFixed(1)} min`);
}

/** The claim run's section (claim.ts) and the answer at the top, kept when the tables are rewritten. */
function withClaim(outDir: string, rewritten: string): string {
  const previous = join(outDir, 'REPORT.md');
  const report = existsSync(previous) ? withAnswer(readFileSync(previous, 'utf8'), rewritten) : rewritten;
  const file = join(outDir, 'claim-section.md');
  if (!existsSync(file)) return report;
  const section = readFileSync(file, 'utf8');
  return section.startsWith(CLAIM_HEADING) ? withClaimSection(report, section) : report;
}

main().catch((err: unknown) => {
  process.stderr.write(`paper: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
