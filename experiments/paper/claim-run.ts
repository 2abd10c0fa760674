/**
 * The claim run for one data set and seed: trains every net of the
 * configuration (or loads it), runs Algorithm 1 at every swept step size,
 * measures each net's targets and writes its activations on the test split.
 * Nets, attacks and activations share run.ts's cache files and keys, so the
 * paper's nets and the printed attack trained by `npm run paper` are reused.
 * Each computed step's time is kept beside it (`.seconds.json`), so the time
 * estimate still has it when the step comes from the cache.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { substituteAttack } from './attack.js';
import { gaussianBlur, gaussianNoise } from './claim-corrupt.js';
import type { ClaimConfig } from './claim-family.js';
import { atomicWrite, cacheFile, keyOf, log } from './common.js';
import { loadDataset, split, type DatasetName } from './data.js';
import { accuracy, activations, initNet, loadNet, predict, saveNet, train, type Net } from './nets.js';
import { writeActivationSet } from './scores.js';
import { CODE_VERSION } from './run.js';
import type { Tf } from './tf.js';

/** Bump when a change here changes a net's targets. */
const TARGET_CODE = 1;

export interface NetTargets {
  readonly epochs: number;
  readonly params: number;
  readonly clean: number;
  readonly train: number;
  /** Training minus test accuracy. */
  readonly gap: number;
  readonly noise: number;
  readonly blur: number;
  /** Relative degradation (clean − attacked) / clean at each swept step size, in the configuration's order. */
  readonly degradation: readonly number[];
}

export interface StepTime {
  readonly seconds: number;
  /** What the time scales with: training images x epochs (training), test images x iterations (attack). */
  readonly units: number;
}

export interface SeedRun {
  readonly dataset: DatasetName;
  readonly seed: number;
  readonly nTrain: number;
  readonly nTest: number;
  readonly nets: Record<string, NetTargets>;
  /** Each net's activation set on the test split (the zoo's inputs). */
  readonly activations: Record<string, string>;
  readonly trainTimes: Record<string, StepTime>;
  readonly attackTimes: readonly StepTime[];
  /** Seconds this run spent training and attacking (0 when every one came from the cache). */
  readonly computedSeconds: number;
}

const timeFile = (file: string): string => `${file}.seconds.json`;
function readTime(file: string): number {
  return existsSync(timeFile(file)) ? (JSON.parse(readFileSync(timeFile(file), 'utf8')) as { seconds: number }).seconds : NaN;
}
function writeAtomic(file: string, write: (tmp: string) => void, seconds: number): void {
  atomicWrite(file, write);
  writeFileSync(timeFile(file), JSON.stringify({ seconds }));
}

const paramsOf = (net: Net): number => net.weights.reduce((a, w) => a + w.size, 0);

export async function runSeed(tf: Tf, dataset: DatasetName, seed: number, c: ClaimConfig): Promise<SeedRun> {
  const { train: trainSet, test } = split(loadDataset(dataset), seed, c.limit);
  const nTest = test.labels.length;
  const dataKey = { dataset, seed, limit: c.limit, code: CODE_VERSION };

  const attacked: Float32Array[] = [];
  const attackKeys: string[] = [];
  const attackTimes: StepTime[] = [];
  let computedSeconds = 0;
  for (const epsilon of c.epsilons) {
    const key = keyOf({ ...dataKey, epsilon, iterations: c.attackIterations, batch: c.batch });
    const file = cacheFile('attacks', `${dataset}-${seed}-${key}.f32`);
    if (!existsSync(file)) {
      const t = performance.now();
      const p = substituteAttack(tf, test, { epsilon, iterations: c.attackIterations, seed, batch: c.batch });
      const s = (performance.now() - t) / 1000;
      computedSeconds += s;
      writeAtomic(file, (tmp) => writeFileSync(tmp, p), s);
      log(`claim ${dataset} seed ${seed}: attacked at ε = ${(epsilon * 255).toFixed(3)}/255 in ${s.toFixed(1)} s`);
    }
    const b = readFileSync(file);
    attacked.push(new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice());
    attackKeys.push(key);
    attackTimes.push({ seconds: readTime(file), units: nTest * c.attackIterations });
  }
  const noisy = gaussianNoise(test.images, c.noiseSigma, 7000 + seed);
  const blurred = gaussianBlur(test.images, c.blurSigma);

  const nets: Record<string, NetTargets> = {};
  const acts: Record<string, string> = {};
  const trainTimes: Record<string, StepTime> = {};
  for (const { spec, epochs } of c.nets) {
    const key = keyOf({ ...dataKey, spec, epochs, batch: c.batch, lr: c.lr });
    const file = cacheFile('nets', `${dataset}-${seed}-${spec.name}-${key}.safetensors`);
    let net: Net;
    if (existsSync(file)) net = loadNet(tf, spec, file);
    else {
      const t = performance.now();
      net = initNet(tf, spec, seed);
      const optimizer = tf.train.adam(c.lr);
      const loss = train(tf, net, trainSet, { epochs, batch: c.batch, seed, optimizer });
      optimizer.dispose();
      const s = (performance.now() - t) / 1000;
      computedSeconds += s;
      writeAtomic(file, (tmp) => saveNet(net, tmp), s);
      log(`claim ${dataset} seed ${seed}: trained ${spec.name} in ${s.toFixed(1)} s (last epoch's loss ${loss.toFixed(3)})`);
    }
    trainTimes[spec.name] = { seconds: readTime(file), units: trainSet.labels.length * epochs };

    const targetFile = cacheFile(
      'claim-targets',
      `${dataset}-${seed}-${spec.name}-${keyOf({ key, attackKeys, c: [c.noiseSigma, c.blurSigma], TARGET_CODE })}.json`,
    );
    if (existsSync(targetFile)) nets[spec.name] = JSON.parse(readFileSync(targetFile, 'utf8')) as NetTargets;
    else {
      const acc = (images: Float32Array, labels = test.labels) => accuracy(predict(tf, net, images), labels);
      const clean = acc(test.images);
      const trainAcc = acc(trainSet.images, trainSet.labels);
      const t: NetTargets = {
        epochs,
        params: paramsOf(net),
        clean,
        train: trainAcc,
        gap: trainAcc - clean,
        noise: acc(noisy),
        blur: acc(blurred),
        degradation: attacked.map((a) => (clean - acc(a)) / clean),
      };
      writeFileSync(targetFile, JSON.stringify(t));
      nets[spec.name] = t;
    }

    const actFile = cacheFile('activations', `${dataset}-${seed}-${spec.name}-${key}.safetensors`);
    if (!existsSync(actFile)) {
      atomicWrite(actFile, (tmp) => writeActivationSet(tmp, activations(tf, net, test.images)));
    }
    acts[spec.name] = actFile;
    net.dispose();
  }
  return { dataset, seed, nTrain: trainSet.labels.length, nTest, nets, activations: acts, trainTimes, attackTimes, computedSeconds };
}
