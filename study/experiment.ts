/**
 * The experiment: which layers of which network, the scoring settings, and
 * running `neurocorr extract`, `score` and `zoo` on them.
 *
 * Layers are each network's stage outputs (the last block at each spatial
 * resolution) and its pooled feature vector. Depths follow the stride, not the
 * layer's position, so that networks with different block counts line up:
 * stride 4 → 0, 8 → 1, 16 → 2, 32 → 3, the pooled vector → 4 (InceptionV3
 * has no block output at stride 4; its first is at 8).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import { buildOnce, CACHE, log, neurocorr, StudyError } from './common.js';

export interface LayerDef {
  readonly name: string;
  readonly depth: number;
}

export interface ModelDef {
  /** Short name used in tables and zoo files. */
  readonly key: string;
  readonly label: string;
  readonly trained: boolean;
  /** The model.json. */
  readonly model: string;
  readonly size: number;
  readonly preprocess: 'caffe' | 'unit';
  /** Conv stage outputs, stride 4 to 32. */
  readonly stages: readonly LayerDef[];
  /** The pooled feature vector (global average of the last stage). */
  readonly pooled: LayerDef;
  /** Extracted for checks only, never scored. */
  readonly extra: readonly string[];
}

export function modelDefs(paths: { resnet: string; random: string; mobilenet: string; inception: string }): ModelDef[] {
  const resnetStages = ['activation_9', 'activation_21', 'activation_39', 'activation_48'].map((name, depth) => ({ name, depth }));
  return [
    {
      key: 'resnet50',
      label: 'ResNet-50 (ImageNet)',
      trained: true,
      model: paths.resnet,
      size: 224,
      preprocess: 'caffe',
      stages: resnetStages,
      pooled: { name: 'avg_pool', depth: 4 },
      extra: ['fc1000'],
    },
    {
      key: 'resnet50-random',
      label: 'ResNet-50 (random weights)',
      trained: false,
      model: paths.random,
      size: 224,
      preprocess: 'caffe',
      stages: resnetStages,
      pooled: { name: 'avg_pool', depth: 4 },
      extra: [],
    },
    {
      key: 'mobilenet_v2',
      label: 'MobileNetV2 (nsfwjs)',
      trained: true,
      model: paths.mobilenet,
      size: 224,
      preprocess: 'unit',
      stages: ['block_2_add', 'block_5_add', 'block_12_add', 'out_relu'].map((name, depth) => ({ name, depth })),
      pooled: { name: 'flatten_1', depth: 4 },
      extra: [],
    },
    {
      key: 'inception_v3',
      label: 'InceptionV3 (nsfwjs)',
      trained: true,
      model: paths.inception,
      size: 299,
      preprocess: 'unit',
      stages: ['mixed2', 'mixed7', 'mixed10'].map((name, k) => ({ name, depth: k + 1 })),
      pooled: { name: 'flatten_1', depth: 4 },
      extra: [],
    },
  ];
}

export type Semantics = 'units' | 'channels-7' | 'channels-1';

export interface Setting {
  readonly semantics: Semantics;
  readonly probes: number;
}

export const SEMANTICS: Readonly<
  Record<Semantics, { readonly title: string; readonly flags: readonly string[]; readonly layers: (m: ModelDef) => readonly LayerDef[] }>
> = {
  units: {
    title: 'units: last stage (stride 32) and pooled vector, every unit a neuron',
    flags: ['--conv', 'units'],
    layers: (m) => [m.stages.at(-1)!, m.pooled],
  },
  'channels-7': {
    title: 'channels: every stage output, each channel a neuron, maps pooled to 7 × 7',
    flags: ['--conv', 'channels', '--spatial', '7'],
    layers: (m) => m.stages,
  },
  'channels-1': {
    title: 'channels: every stage output, each channel a neuron, maps pooled to 1 × 1 (global average)',
    flags: ['--conv', 'channels', '--spatial', '1'],
    layers: (m) => m.stages,
  },
};

export interface Extracted {
  readonly def: ModelDef;
  readonly dir: string;
  readonly seconds: number;
  readonly fingerprint: string;
  /** What was extracted (model bytes, layers, size, preprocessing, probes): derived sets and cached scores are keyed by it. */
  readonly key: string;
  /** layers.json entries by layer name. */
  readonly files: ReadonlyMap<string, { readonly file: string; readonly layout?: string }>;
}

interface LayersJson {
  probes?: string;
  layers: { file: string; name: string; depth?: number; layout?: string }[];
}

function readLayersJson(dir: string): LayersJson {
  const parsed = JSON.parse(readFileSync(join(dir, 'layers.json'), 'utf8')) as Partial<LayersJson>;
  if (!Array.isArray(parsed.layers)) throw new StudyError(`${dir}/layers.json has no layers list`);
  return parsed as LayersJson;
}

/** Runs `neurocorr extract` as a child process; resolves with its wall time. */
function extractOne(args: readonly string[], bin: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'extract', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => void (err += d.toString()));
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve((performance.now() - started) / 1000);
      else reject(new StudyError(`neurocorr extract ${args.join(' ')} failed (exit ${code}):\n${err.trim().split('\n').slice(-12).join('\n')}`));
    });
  });
}

/**
 * Extracts every model's layers on the probe folder (once: a marker keyed by
 * the model, layers, size, preprocessing and probes). TensorFlow.js's wasm
 * backend runs one thread a process, so models run side by side, one per core.
 */
export async function extractAll(models: readonly ModelDef[], probes: string, probesKey: string, bin: string): Promise<Extracted[]> {
  const queue = [...models];
  const out = new Map<string, Extracted>();
  const worker = async () => {
    for (let def = queue.shift(); def !== undefined; def = queue.shift()) {
      const d = def;
      const layers = [...d.stages.map((l) => l.name), d.pooled.name, ...d.extra];
      const dir = join(CACHE, 'acts', `${d.key}-${relative(CACHE, probes)}`);
      const modelJson = createHash('sha256').update(readFileSync(d.model)).digest('hex');
      const key = JSON.stringify({ model: d.model, modelJson, layers, size: d.size, preprocess: d.preprocess, probes, probesKey });
      let seconds = 0;
      const built = await buildOnce(
        dir,
        async (tmp) => {
          rmSync(tmp, { recursive: true });
          log(`extract ${d.key}: ${layers.join(', ')} at ${d.size} px, --preprocess ${d.preprocess}`);
          seconds = await extractOne(
            [
              d.model,
              '--probes',
              probes,
              '--out',
              tmp,
              '--layers',
              layers.join(','),
              '--size',
              String(d.size),
              '--preprocess',
              d.preprocess,
              '--batch',
              '16',
              '--no-progress',
            ],
            bin,
          );
          writeFileSync(join(tmp, 'seconds'), String(seconds));
          log(`extract ${d.key}: ${seconds.toFixed(1)} s`);
        },
        key,
      );
      if (!built) seconds = Number(readFileSync(join(dir, 'seconds'), 'utf8'));
      const lj = readLayersJson(dir);
      const files = new Map(lj.layers.map((l) => [l.name, { file: l.file, ...(l.layout !== undefined ? { layout: l.layout } : {}) }]));
      for (const name of layers) if (!files.has(name)) throw new StudyError(`${dir}/layers.json has no layer ${name}`);
      out.set(d.key, { def: d, dir, seconds, fingerprint: lj.probes ?? '', key: createHash('sha256').update(key).digest('hex'), files });
    }
  };
  const lanes = Math.max(1, Math.min(models.length, availableParallelism()));
  await Promise.all(Array.from({ length: lanes }, worker));
  return models.map((m) => out.get(m.key)!);
}

/**
 * An activation set holding some of an extracted model's layers, with the
 * study's depths: a folder of symbolic links to the extracted .npy files and
 * its own layers.json (same probe fingerprint).
 */
export function activationSet(x: Extracted, semantics: Semantics): string {
  const layers = SEMANTICS[semantics].layers(x.def);
  const dir = join(CACHE, 'sets', semantics, x.def.key);
  const fingerprint = JSON.stringify({ from: x.dir, extracted: x.key, layers, probes: x.fingerprint });
  if (existsSync(join(dir, 'layers.json')) && readFileSync(join(dir, '.from'), { encoding: 'utf8', flag: 'a+' }) === fingerprint) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const entries = layers.map((l) => {
    const src = x.files.get(l.name)!;
    symlinkSync(join(x.dir, src.file), join(dir, src.file));
    return { file: src.file, name: l.name, depth: l.depth, ...(src.layout !== undefined ? { layout: src.layout } : {}) };
  });
  writeFileSync(join(dir, 'layers.json'), `${JSON.stringify({ ...(x.fingerprint !== '' ? { probes: x.fingerprint } : {}), layers: entries }, null, 1)}\n`);
  writeFileSync(join(dir, '.from'), fingerprint);
  return dir;
}

export interface Stat {
  readonly raw: number;
  readonly nullMean: number;
  readonly nullSe: number;
  readonly corrected: number;
  readonly correctedSe: number;
  readonly z: number;
}

export interface PairResult {
  readonly f: string;
  readonly g: string;
  /** paper mode; forward, backward, symmetric. */
  readonly paper: Readonly<Record<'forward' | 'backward' | 'symmetric', Stat>>;
  readonly penalized: Readonly<Record<'forward' | 'backward' | 'symmetric', Stat>>;
  readonly neurons: readonly [number, number];
  readonly constant: readonly [number, number];
  readonly samples: number;
  /** Per layer of F then G, as in the report. */
  readonly layers: readonly ReportLayer[];
  /** `--matches` CSV of the run, when it wrote one. */
  readonly matches: string | null;
}

export interface ReportLayer {
  readonly model: 'F' | 'G';
  readonly name: string;
  readonly depth: number;
  /** Per probe, as stored (NHWC for these TensorFlow.js models). */
  readonly shape: readonly number[];
  readonly neurons: number;
  readonly constant: number;
  /** Partner depth → neuron count, per match mode. */
  readonly matchDepths: Readonly<Record<'paper' | 'penalized', Readonly<Record<string, number>>>>;
}

export interface SettingResult {
  readonly setting: Setting;
  readonly pairs: readonly PairResult[];
  /** Compute time of the runs, from their reports (also when they were read back from the cache). */
  readonly seconds: number;
  readonly how: string;
}

type Dir = 'forward' | 'backward' | 'symmetric';
const DIRS: readonly Dir[] = ['forward', 'backward', 'symmetric'];

interface ScoreReport {
  probes: number;
  seconds: number;
  scores: Record<'paper' | 'penalized', Record<Dir, number>>;
  neurons: [number, number];
  constant: [number, number];
  samples: number;
  layers: ReportLayer[];
  null: { scores: Record<'paper' | 'penalized', Record<Dir, { mean: number; se: number; z: number; corrected: number; correctedSe: number }>> } | null;
}

function fromReport(f: string, g: string, r: ScoreReport, matches: string | null = null): PairResult {
  const mode = (m: 'paper' | 'penalized') =>
    Object.fromEntries(
      DIRS.map((d) => {
        const n = r.null?.scores[m][d];
        if (n === undefined) throw new StudyError(`the report of ${f} vs ${g} has no permutation null`);
        return [d, { raw: r.scores[m][d], nullMean: n.mean, nullSe: n.se, corrected: n.corrected, correctedSe: n.correctedSe, z: n.z }];
      }),
    ) as Record<Dir, Stat>;
  const layers = r.layers.map(({ model, name, depth, shape, neurons, constant, matchDepths }) => ({
    model,
    name,
    depth,
    shape,
    neurons,
    constant,
    matchDepths,
  }));
  return { f, g, paper: mode('paper'), penalized: mode('penalized'), neurons: r.neurons, constant: r.constant, samples: r.samples, layers, matches };
}

/** Every unordered pair of models, in model order. */
export function unorderedPairs<T>(xs: readonly T[]): [T, T][] {
  return xs.flatMap((a, i) => xs.slice(i + 1).map((b): [T, T] => [a, b]));
}

/**
 * Scores every unordered pair with one `neurocorr score` each (both
 * directions come from one pass; a zoo would also compute each pair's mirror
 * and the diagonal). Reports are kept in the cache, keyed by their inputs.
 * With `matches`, each run also writes every neuron's best partner (`--matches`).
 */
export function scorePairs(sets: readonly { key: string; dir: string }[], setting: Setting, matches = false): SettingResult {
  const pairs: PairResult[] = [];
  let seconds = 0;
  mkdirSync(join(CACHE, 'scores'), { recursive: true });
  for (const [a, b] of unorderedPairs(sets)) {
    const args = ['score', a.dir, b.dir, ...SEMANTICS[setting.semantics].flags, '--probes', String(setting.probes), '--json', '--no-progress'];
    const id = createHash('sha256')
      .update(JSON.stringify([args, ...(matches ? ['--matches'] : []), readFileSync(join(a.dir, '.from'), 'utf8'), readFileSync(join(b.dir, '.from'), 'utf8')]))
      .digest('hex')
      .slice(0, 16);
    const file = join(CACHE, 'scores', `${setting.semantics}-p${setting.probes}-${a.key}--${b.key}-${id}.json`);
    const csv = matches ? file.replace(/\.json$/, '.matches.csv') : null;
    if (!existsSync(file)) {
      const r = neurocorr([...args, ...(csv !== null ? ['--matches', csv] : [])]);
      writeFileSync(file, r.stdout);
    }
    const report = JSON.parse(readFileSync(file, 'utf8')) as ScoreReport;
    seconds += report.seconds;
    pairs.push(fromReport(a.key, b.key, report, csv));
  }
  return { setting, pairs, seconds, how: `${pairs.length} \`neurocorr score\` runs, one per unordered pair` };
}

/**
 * Scores every pair as one `neurocorr zoo` job (its store keeps the pairs
 * between runs) and reads the pairs F < G (in model order) back from the
 * store's export: each is exactly the report `neurocorr score F G` writes.
 */
export function scoreZoo(sets: readonly { key: string; dir: string }[], setting: Setting): SettingResult {
  const out = join(CACHE, 'zoo', `${setting.semantics}-p${setting.probes}`);
  mkdirSync(join(CACHE, 'zoo'), { recursive: true });
  neurocorr([
    'zoo',
    ...sets.map((s) => `${s.key}=${s.dir}`),
    '--out',
    out,
    ...SEMANTICS[setting.semantics].flags,
    '--probes',
    String(setting.probes),
    '--no-progress',
  ]);
  const matrix = JSON.parse(readFileSync(join(out, 'matrix.json'), 'utf8')) as { models: { name: string; key: string }[] };
  const keyOf = new Map(matrix.models.map((m) => [m.name, m.key]));
  const exported = join(CACHE, 'zoo', `${setting.semantics}-p${setting.probes}.jsonl`);
  rmSync(exported, { force: true });
  neurocorr(['zoo-store', 'export', join(out, 'zoo.sqlite'), exported]);
  const records = readFileSync(exported, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => JSON.parse(line) as { f: string; g: string; options: { probes: number | null }; report: ScoreReport });
  const keys = new Set(keyOf.values());
  const mine = records.filter((r) => keys.has(r.f) && keys.has(r.g) && r.report.probes === setting.probes);
  // A pair's report in a zoo gives the time from the job's start to its last tile: the latest is the job's time.
  const seconds = Math.max(...mine.map((r) => r.report.seconds));
  const pairs = unorderedPairs(sets).map(([a, b]) => {
    const found = records.filter((r) => r.f === keyOf.get(a.key) && r.g === keyOf.get(b.key) && r.report.probes === setting.probes);
    if (found.length !== 1) throw new StudyError(`${out}: ${found.length} stored reports for ${a.key} vs ${b.key} at ${setting.probes} probes, not 1`);
    return fromReport(a.key, b.key, found[0]!.report);
  });
  return { setting, pairs, seconds, how: `one \`neurocorr zoo\` job, ${mine.length} ordered pairs with the diagonal` };
}
