/**
 * One run of the experiment: one data set, one seed. Trains every net (or
 * loads it from the cache), attacks the test split by Algorithm 1 (cached),
 * measures accuracy before and after, writes each net's test activations
 * and scores every pair in both settings (cached per pair).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { substituteAttack } from './attack.js';
import { atomicWrite, cacheFile, keyOf, log } from './common.js';
import { loadDataset, split, type DatasetName } from './data.js';
import { accuracy, activations, CNN, initNet, loadNet, MLPS, predict, saveNet, train, type Net, type NetSpec } from './nets.js';
import { scorePair, SETTINGS, writeActivationSet, type PairScore } from './scores.js';
import type { Tf } from './tf.js';

/** Bump when a change to the code changes what a cached step would compute (claim-run.ts shares its cache keys). */
export const CODE_VERSION = 1;
/** The same for the cached scores alone. */
const SCORE_VERSION = 2;

export interface Config {
  readonly limit: number;
  readonly mlpEpochs: number;
  readonly cnnEpochs: number;
  readonly batch: number;
  readonly lr: number;
  readonly epsilon: number;
  readonly attackIterations: number;
}

export interface NetResult {
  readonly before: number;
  readonly after: number;
  readonly degradation: number;
  readonly trainSeconds: number;
}

export interface RunResult {
  readonly dataset: DatasetName;
  readonly seed: number;
  readonly train: number;
  readonly test: number;
  readonly nets: Record<string, NetResult>;
  /** Setting → "F|G" → score (Table 2: F before G in Table 1's order; Table 3: F the MLP, G the CNN). */
  readonly pairs: Record<string, Record<string, PairScore>>;
  /** Net1 against itself, per setting. */
  readonly self: Record<string, PairScore>;
  /** The attacked and clean first test images and Net1's predictions, for the figure. */
  readonly examples: {
    readonly clean: number[][];
    readonly attacked: number[][];
    readonly labels: number[];
    readonly before: number[];
    readonly after: number[];
  };
  readonly seconds: Record<string, number>;
}

export const ALL_NETS: readonly NetSpec[] = [...MLPS, CNN];

export async function runOne(tf: Tf, dataset: DatasetName, seed: number, c: Config): Promise<RunResult> {
  const seconds: Record<string, number> = {};
  const timed = async <T>(what: string, f: () => T | Promise<T>): Promise<T> => {
    const t = performance.now();
    const out = await f();
    seconds[what] = (seconds[what] ?? 0) + (performance.now() - t) / 1000;
    return out;
  };
  const { train: trainSet, test } = split(loadDataset(dataset), seed, c.limit);
  const dataKey = { dataset, seed, limit: c.limit, code: CODE_VERSION };
  const nets = new Map<string, { net: Net; key: string; trainSeconds: number }>();
  for (const spec of ALL_NETS) {
    const epochs = spec.kind === 'cnn' ? c.cnnEpochs : c.mlpEpochs;
    const key = keyOf({ ...dataKey, spec, epochs, batch: c.batch, lr: c.lr });
    const file = cacheFile('nets', `${dataset}-${seed}-${spec.name}-${key}.safetensors`);
    let trainSeconds = 0;
    let net: Net;
    if (existsSync(file)) net = loadNet(tf, spec, file);
    else {
      const started = performance.now();
      net = initNet(tf, spec, seed);
      const optimizer = tf.train.adam(c.lr);
      const loss = await timed(`train ${spec.kind}`, () => train(tf, net, trainSet, { epochs, batch: c.batch, seed, optimizer }));
      optimizer.dispose();
      trainSeconds = (performance.now() - started) / 1000;
      atomicWrite(file, (tmp) => saveNet(net, tmp));
      log(`${dataset} seed ${seed}: trained ${spec.name} in ${trainSeconds.toFixed(1)} s (last epoch's loss ${loss.toFixed(3)})`);
    }
    nets.set(spec.name, { net, key, trainSeconds });
  }

  const attackKey = keyOf({ ...dataKey, epsilon: c.epsilon, iterations: c.attackIterations, batch: c.batch });
  const attackFile = cacheFile('attacks', `${dataset}-${seed}-${attackKey}.f32`);
  let attacked: Float32Array;
  if (existsSync(attackFile)) {
    const b = readFileSync(attackFile);
    attacked = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice();
  } else {
    attacked = await timed('attack', () => substituteAttack(tf, test, { epsilon: c.epsilon, iterations: c.attackIterations, seed, batch: c.batch }));
    atomicWrite(attackFile, (tmp) => writeFileSync(tmp, attacked));
    log(`${dataset} seed ${seed}: Algorithm 1 done in ${seconds['attack']!.toFixed(1)} s`);
  }

  const results: Record<string, NetResult> = {};
  const actFiles = new Map<string, string>();
  for (const [name, { net, key, trainSeconds }] of nets) {
    const predBefore = predict(tf, net, test.images);
    const predAfter = predict(tf, net, attacked);
    const before = accuracy(predBefore, test.labels);
    const after = accuracy(predAfter, test.labels);
    results[name] = { before, after, degradation: (before - after) / before, trainSeconds };
    const file = cacheFile('activations', `${dataset}-${seed}-${name}-${key}.safetensors`);
    if (!existsSync(file)) {
      await timed('activations', () => atomicWrite(file, (tmp) => writeActivationSet(tmp, activations(tf, net, test.images))));
    }
    actFiles.set(name, file);
  }

  const net1 = nets.get('Net1')!.net;
  const shown = 8;
  const examples = {
    clean: Array.from({ length: shown }, (_, i) => Array.from(test.images.subarray(i * 784, (i + 1) * 784))),
    attacked: Array.from({ length: shown }, (_, i) => Array.from(attacked.subarray(i * 784, (i + 1) * 784))),
    labels: Array.from(test.labels.subarray(0, shown)),
    before: Array.from(predict(tf, net1, test.images.subarray(0, shown * 784))),
    after: Array.from(predict(tf, net1, attacked.subarray(0, shown * 784))),
  };
  for (const { net } of nets.values()) net.dispose();

  const pairs: Record<string, Record<string, PairScore>> = {};
  const self: Record<string, PairScore> = {};
  const scoreFile = (f: string, g: string, setting: string) =>
    cacheFile('scores', `${dataset}-${seed}-${f}-${g}-${setting}-${keyOf({ f: nets.get(f)!.key, g: nets.get(g)!.key, setting, code: SCORE_VERSION })}.json`);
  for (const setting of SETTINGS) {
    const cell: Record<string, PairScore> = {};
    const list: [string, string][] = [];
    for (let i = 0; i < MLPS.length; i++) for (let j = i + 1; j < MLPS.length; j++) list.push([MLPS[i]!.name, MLPS[j]!.name]);
    for (const m of MLPS) list.push([m.name, CNN.name]);
    for (const [f, g] of list) {
      cell[`${f}|${g}`] = await timed(`scores ${setting.name}`, () => scorePair(actFiles.get(f)!, actFiles.get(g)!, setting, scoreFile(f, g, setting.name)));
    }
    pairs[setting.name] = cell;
    self[setting.name] = await timed(`scores ${setting.name}`, () =>
      scorePair(actFiles.get('Net1')!, actFiles.get('Net1')!, setting, scoreFile('Net1', 'Net1', setting.name)),
    );
  }
  log(`${dataset} seed ${seed}: scored ${Object.keys(pairs['published']!).length} pairs in each setting`);
  return {
    dataset,
    seed,
    train: trainSet.labels.length,
    test: test.labels.length,
    nets: results,
    pairs,
    self,
    examples,
    seconds: recordSeconds(dataset, seed, c, seconds),
  };
}

/**
 * Each step's compute time as first measured: a step the cache held takes no
 * time in this run, so its time is kept in the cache beside the step's
 * results (keyed by the run's configuration) and read back.
 */
function recordSeconds(dataset: DatasetName, seed: number, c: Config, now: Record<string, number>): Record<string, number> {
  const file = cacheFile('seconds', `${dataset}-${seed}-${keyOf({ c, code: CODE_VERSION, score: SCORE_VERSION })}.json`);
  const before = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, number>) : {};
  const merged = { ...now, ...before };
  for (const [k, v] of Object.entries(now)) if (!(k in before) || before[k] === 0) merged[k] = v;
  writeFileSync(file, JSON.stringify(merged));
  return merged;
}
