/**
 * `npm run bench:scale`: two synthetic ResNet-18-shaped models of about 1e6
 * neurons each at M = 32, prepared into shard sets and scored exactly with a
 * --memory budget at most a quarter of one model's size. Records peak RSS,
 * wall time, pairs/s, the I/O share and the bytes read against the lower
 * bound for the budget, then extrapolates to ResNet-152. `--baseline
 * REPORT.json`: also checks the scores bit for bit against another build's
 * report on the same sets.
 * Writes the "Scale" section of bench/RESULTS.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { architectureLayers, neuronCount } from '#dist/synth/architectures.js';
import { replaceSection } from './results.js';

const ROOT = new URL('../../', import.meta.url).pathname;
// The CLI's main(), run in-process (bin/neurocorr.js runs it with this process's own arguments).
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const quick = process.argv.includes('--quick');
const SCALE = quick ? 0.25 : 0.8;
const PROBES = 32;
const MEMORY = quick ? '16MiB' : '30MiB';
const WORK = join(tmpdir(), `neurocorr-scale-${SCALE}`);
const log = (line: string) => process.stderr.write(`${line}\n`);

const baselineAt = process.argv.indexOf('--baseline');
const BASELINE = baselineAt >= 0 ? process.argv[baselineAt + 1] : undefined;

/** The same run before issue 16 (F-major plan order, G re-read for every F block), from bench/RESULTS.md of 2026-11-29. */
const BEFORE = { mib: 22949, loads: 4636, readSeconds: 66.3, wall: 268.5, share: 24.7 };

const MEMORY_NOTE =
  "`--memory` bounds the decoded shards held: the resident side's range (one arena, shards packed by their exact sizes) plus the streamed side's window (buffers of the largest shard's capacity, reused, so worker threads never pin stale ones); a shard's tiles start only when the window has a buffer for it. The rest of `score`'s data memory is per-neuron reduction and report state, O(N_F + N_G) by design: about 60 bytes per neuron and direction, some 120 MB for these 2 x 1e6 neurons; the null's kept samples (2 x 2000 rows here, 0.5 MB); plus each worker thread's tile working set. The I/O share is shard reads, sha256 (first load only) and Arrow decoding on the main thread, overlapped with the tiles already queued (the next streamed shard is read while the current one's tiles run). Wall times on this shared 2-core machine are noisy (other jobs ran beside it); the bytes read and the I/O share are the robust figures.";

interface Measured {
  readonly code: number;
  readonly stdout: string;
  readonly seconds: number;
  readonly maxRss: number;
}

/** Runs the CLI in a fresh process that reports its own peak RSS (worker threads included). */
function run(args: string[]): Measured {
  const script = `const { main } = await import(${JSON.stringify(CLI)}); let out = ''; const t = performance.now(); const code = await main(${JSON.stringify(args)}, { stdout: (s) => { out += s; }, stderr: (s) => process.stderr.write(s) }); process.stdout.write(JSON.stringify({ code, stdout: out, seconds: (performance.now() - t) / 1000, maxRss: process.resourceUsage().maxRSS * 1024 }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'inherit'] });
  const measured = JSON.parse(r.stdout) as Measured;
  if (measured.code !== 0) throw new Error(`neurocorr ${args.join(' ')} exited ${measured.code}`);
  return measured;
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
const hours = (seconds: number) => (seconds / 3600 < 0.1 ? `${(seconds / 60).toFixed(1)} min` : `${(seconds / 3600).toFixed(1)} h`);

function main(): void {
  const sets = ['a', 'b'].map((name, i) => {
    const raw = join(WORK, name);
    if (!existsSync(raw)) {
      log(`synth ${raw}`);
      run(['synth', raw, '--arch', 'resnet18', '--probes', String(PROBES), '--scale', String(SCALE), '--seed', String(i + 1), '--probe-seed', '7']);
    }
    log(`prepare ${raw}`);
    const prepared = run(['prepare', raw, `${raw}-shards`, '--memory', MEMORY, '--force']);
    return { raw, shards: `${raw}-shards`, prepared };
  });
  // What score holds with no data to speak of: Node, two worker threads, the addon.
  const baseline = run(['score', join(ROOT, 'examples', 'mlp'), join(ROOT, 'examples', 'cnn'), '--json', '--no-progress']);
  log('score (this is the long part)');
  const scored = run(['score', sets[0]!.shards, sets[1]!.shards, '--memory', MEMORY, '--json', '--no-progress']);
  const report = JSON.parse(scored.stdout) as {
    neurons: [number, number];
    pairs: number;
    seconds: number;
    pairsPerSecond: number;
    tiles: number;
    block: number;
    kernel: string;
    scores: { paper: { symmetric: number }; penalized: { symmetric: number } };
    null: { scores: unknown } | null;
    io: {
      F: { bytesRead: number; readSeconds: number; loads: number; peakBytes: number };
      G: { bytesRead: number; readSeconds: number; loads: number; peakBytes: number };
      memory: number;
      bytesRead: number;
      schedule: { resident: string; passes: number; planned: number; lowerBound: number } | null;
    };
  };
  const [nF, nG] = report.neurons;
  const { io } = report;
  const schedule = io.schedule!;
  const identical = BASELINE === undefined ? null : sameScores(report, JSON.parse(readFileSync(BASELINE, 'utf8')) as typeof report);
  const modelBytes = nF * PROBES * 4;
  const readSeconds = report.io.F.readSeconds + report.io.G.readSeconds;
  const flops = 2 * report.pairs * PROBES;
  const gflops = flops / scored.seconds / 1e9;
  const perCore = gflops / 2;

  const r152 = neuronCount(architectureLayers('resnet152', 224, 1, false));
  const r152all = neuronCount(architectureLayers('resnet152', 224, 1, true));
  const rows = [10, 1000].flatMap((m) =>
    [
      ['ResNet-152 block outputs', r152],
      ['ResNet-152 every conv output', r152all],
    ].map(([what, n]) => {
      const pairs = (n as number) ** 2;
      const f = 2 * pairs * m;
      const seconds = f / (gflops * 1e9);
      const on = (workers: number) => hours(f / (perCore * 1e9 * workers));
      return `| ${what} | ${m} | ${(n as number).toExponential(2)} | ${pairs.toExponential(2)} | ${f.toExponential(2)} | ${hours(seconds)} | ${on(16)} | ${on(64)} | ${on(256)} |`;
    }),
  );

  const flags = [...(quick ? ['--quick'] : []), ...(BASELINE !== undefined ? ['--baseline', BASELINE] : [])];
  const section = [
    '## Scale (out of core)',
    '',
    `Produced by \`npm run bench:scale${flags.length > 0 ? ` -- ${flags.join(' ')}` : ''}\` on ${new Date().toISOString().slice(0, 10)}.`,
    '',
    `**Measured.** Two \`neurocorr synth --arch resnet18 --scale ${SCALE} --probes ${PROBES}\` models (ResNet-18 block-output shapes, spatial sides x${SCALE}), \`prepare\`d and \`score\`d as shard sets with \`--memory ${MEMORY}\`:`,
    '',
    '| quantity | value |',
    '| --- | --- |',
    `| neurons per model | ${nF} x ${nG} |`,
    `| one model's z | ${mib(modelBytes)} MiB (${(modelBytes / (Number.parseInt(MEMORY, 10) * 2 ** 20)).toFixed(1)}x the --memory budget) |`,
    `| pairs compared (exact) | ${report.pairs.toExponential(3)} |`,
    `| score wall time | ${scored.seconds.toFixed(1)} s (${(flops / 1e12).toFixed(1)} TFLOP: ${gflops.toFixed(0)} GFLOP/s, ${(report.pairs / scored.seconds).toExponential(2)} pairs/s) |`,
    `| score peak RSS | ${mib(scored.maxRss)} MiB; ${mib(baseline.maxRss)} MiB for the tiny example (Node, 2 worker threads, the addon), so ${mib(scored.maxRss - baseline.maxRss)} MiB for the data |`,
    `| shard I/O during score | ${mib(io.bytesRead)} MiB read in ${io.F.loads + io.G.loads} shard loads, ${readSeconds.toFixed(1)} s (read, sha256, decode): ${((100 * readSeconds) / scored.seconds).toFixed(1)}% of the wall time; the rest is compute |`,
    `| I/O schedule | ${schedule.resident} resident in ${schedule.passes} ranges, the other side streamed once per range; planned ${mib(schedule.planned)} MiB |`,
    `| bytes read vs the lower bound | ${mib(io.bytesRead)} MiB against ${mib(schedule.lowerBound)} MiB (one side once, the other once per pass, with the fewest passes one streamed shard buffer leaves room for): ${(io.bytesRead / schedule.lowerBound).toFixed(2)}x |`,
    `| before (plan order, G re-read for every F block; 2026-11-29) | ${BEFORE.mib} MiB read in ${BEFORE.loads} shard loads, ${BEFORE.readSeconds} s of ${BEFORE.wall} s: ${BEFORE.share}% of the wall time; now ${(BEFORE.mib / (io.bytesRead / 2 ** 20)).toFixed(1)}x fewer bytes |`,
    `| peak cached shard bytes | F ${mib(io.F.peakBytes)} MiB + G ${mib(io.G.peakBytes)} MiB within the ${MEMORY} budget |`,
    `| prepare (each model) | ${sets.map((s) => `${s.prepared.seconds.toFixed(1)} s, peak RSS ${mib(s.prepared.maxRss)} MiB`).join('; ')} |`,
    `| kernel, tiles | ${report.kernel}, ${report.tiles} tiles of <= ${report.block} neurons |`,
    `| scores (paper / penalized, symmetric) | ${report.scores.paper.symmetric.toFixed(4)} / ${report.scores.penalized.symmetric.toFixed(4)} (${report.scores.paper.symmetric} / ${report.scores.penalized.symmetric}) |`,
    ...(identical === null ? [] : [`| same bits as the baseline build's report | ${identical ? 'yes: every score and null figure' : 'NO'} |`]),
    '',
    MEMORY_NOTE,
    '',
    `**Extrapolated** from the measured rate above (${gflops.toFixed(0)} GFLOP/s on this 2-core machine, so ${perCore.toFixed(0)} GFLOP/s per core; N workers are N cores at that rate, and the work splits into independent tiles). Full ResNet-152 vs ResNet-152 at 224 x 224; exact, no sampling:`,
    '',
    '| model | M | neurons | pairs | FLOPs (2·N²·M) | this machine | 16 cores | 64 cores | 256 cores |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    'A GPU worker runs the same tiles through the tfjs kernel; at a sustained 20-50 TFLOP/s float32 per GPU, 16 GPUs are about 30-80x the 256-core figure. At M = 10 the work is dominated by the max/argmax reduction rather than FLOPs, so the M = 10 rows are optimistic for GPUs and about right for the fused CPU kernel.',
    '',
    '',
  ].join('\n');
  process.stdout.write(`${section}\n`);
  const out = join(ROOT, 'bench', 'RESULTS.md');
  if (quick) {
    log('quick run: bench/RESULTS.md left as it is');
    return;
  }
  replaceSection(out, '## Scale (out of core)', section);
  log(`wrote the Scale section of ${out}`);
}

/** Every score and null figure equal, all digits (the null's seconds and tile count aside). */
function sameScores(a: { scores: unknown; null: { scores: unknown } | null }, b: { scores: unknown; null: { scores: unknown } | null }): boolean {
  return JSON.stringify([a.scores, a.null?.scores]) === JSON.stringify([b.scores, b.null?.scores]);
}

main();
