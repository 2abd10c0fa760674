/**
 * The networks of the paper's Table 1 (five fully connected nets, Net4 in
 * both published sizes) and its two-layer CNN, written directly on
 * tfjs-core: seeded Keras-style initialization (Glorot uniform kernels,
 * zero biases), ReLU hidden layers, Adam on the softmax cross-entropy.
 * A net's weights are saved as one .safetensors file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type * as TfCore from '@tensorflow/tfjs-core';
import { createRng, hashString } from '#dist/shared/core/index.js';
import { encodeSafetensors, parseSafetensors } from '#dist/shared/formats/index.js';
import { initialize } from '../../study/models.js';
import { PaperError } from './common.js';
import { trainableConv } from './conv.js';
import { PIXELS, SIDE, type Dataset } from './data.js';

type Tf = typeof TfCore;

export interface MlpSpec {
  readonly name: string;
  readonly kind: 'mlp';
  readonly hidden: readonly number[];
  /** The hidden layers' nonlinearity; absent is ReLU (Table 1's nets leave it out, which keeps their cache keys). */
  readonly activation?: Activation;
}
export const ACTIVATIONS = ['relu', 'tanh', 'sigmoid', 'elu'] as const;
export type Activation = (typeof ACTIVATIONS)[number];
export interface CnnSpec {
  readonly name: string;
  readonly kind: 'cnn';
  /** Filters of the two 3 x 3 conv layers, each followed by ReLU and 2 x 2 max pooling. */
  readonly filters: readonly [number, number];
}
export type NetSpec = MlpSpec | CnnSpec;

/** Table 1, with Net4 in the published notebooks' size as Net4s. */
export const MLPS: readonly MlpSpec[] = [
  { name: 'Net1', kind: 'mlp', hidden: [100] },
  { name: 'Net2', kind: 'mlp', hidden: [60, 40] },
  { name: 'Net3', kind: 'mlp', hidden: [40, 60] },
  { name: 'Net4', kind: 'mlp', hidden: [196, 392] },
  { name: 'Net4s', kind: 'mlp', hidden: [50, 50] },
  { name: 'Net5', kind: 'mlp', hidden: [20, 20, 20, 20, 20] },
];
export const CNN: CnnSpec = { name: 'CNN', kind: 'cnn', filters: [16, 32] };
export const KERNEL = 3;

export const describe = (s: NetSpec): string => (s.kind === 'mlp' ? `[${s.hidden.join(', ')}]` : `conv ${KERNEL}x${KERNEL}: [${s.filters.join(', ')}] + pool`);

interface Shape {
  readonly name: string;
  readonly shape: readonly number[];
}

/** Every weight of the net, in order. */
function weightShapes(spec: NetSpec): Shape[] {
  if (spec.kind === 'cnn') {
    const [a, b] = spec.filters;
    const flat = (SIDE / 4) * (SIDE / 4) * b;
    return [
      { name: 'conv1/kernel', shape: [KERNEL, KERNEL, 1, a] },
      { name: 'conv1/bias', shape: [a] },
      { name: 'conv2/kernel', shape: [KERNEL, KERNEL, a, b] },
      { name: 'conv2/bias', shape: [b] },
      { name: 'out/kernel', shape: [flat, 10] },
      { name: 'out/bias', shape: [10] },
    ];
  }
  const sizes = [PIXELS, ...spec.hidden, 10];
  return sizes.slice(1).flatMap((n, i) => {
    const layer = i === spec.hidden.length ? 'out' : `dense${i + 1}`;
    return [
      { name: `${layer}/kernel`, shape: [sizes[i]!, n] },
      { name: `${layer}/bias`, shape: [n] },
    ];
  });
}

export interface Net {
  readonly spec: NetSpec;
  readonly weights: TfCore.Variable[];
  /** Logits and each hidden layer's output, flattened to [B, units] (the CNN's after pooling). */
  forward(x: TfCore.Tensor2D): { logits: TfCore.Tensor2D; hidden: TfCore.Tensor2D[] };
  dispose(): void;
}

function build(tf: Tf, spec: NetSpec, values: readonly Float32Array[]): Net {
  const shapes = weightShapes(spec);
  const weights = shapes.map((s, i) => tf.variable(tf.tensor(values[i]!, [...s.shape]), true, undefined, 'float32'));
  const conv = trainableConv(tf);
  const forward = (x: TfCore.Tensor2D) => {
    const hidden: TfCore.Tensor2D[] = [];
    if (spec.kind === 'cnn') {
      let a: TfCore.Tensor4D = tf.reshape(x, [-1, SIDE, SIDE, 1]);
      for (let l = 0; l < 2; l++) {
        a = tf.maxPool(tf.relu(tf.add(conv(a, weights[2 * l] as TfCore.Tensor4D), weights[2 * l + 1]!)) as TfCore.Tensor4D, 2, 2, 'valid') as TfCore.Tensor4D;
        hidden.push(tf.reshape(a, [a.shape[0], -1]));
      }
      return { logits: tf.add(tf.matMul(hidden[1]!, weights[4] as TfCore.Tensor2D), weights[5]!) as TfCore.Tensor2D, hidden };
    }
    let a: TfCore.Tensor2D = x;
    const act = tf[spec.activation ?? 'relu'];
    for (let l = 0; l < spec.hidden.length; l++) {
      a = act(tf.add(tf.matMul(a, weights[2 * l] as TfCore.Tensor2D), weights[2 * l + 1]!)) as TfCore.Tensor2D;
      hidden.push(a);
    }
    const l = spec.hidden.length;
    return { logits: tf.add(tf.matMul(a, weights[2 * l] as TfCore.Tensor2D), weights[2 * l + 1]!) as TfCore.Tensor2D, hidden };
  };
  return { spec, weights, forward, dispose: () => weights.forEach((w) => w.dispose()) };
}

/** A fresh net: Glorot uniform kernels, zero biases, each weight's stream seeded from the seed and its name. */
export function initNet(tf: Tf, spec: NetSpec, seed: number): Net {
  const values = weightShapes(spec).map(({ name, shape }) => {
    const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const init = name.endsWith('bias') ? { class_name: 'Zeros', config: {} } : { class_name: 'GlorotUniform', config: {} };
    initialize(out, shape, init, createRng(hashString(`${spec.name}/${name}`, seed)), `${spec.name} ${name}`);
    return out;
  });
  return build(tf, spec, values);
}

export function saveNet(net: Net, file: string): void {
  const shapes = weightShapes(net.spec);
  const tensors = net.weights.map((w, i) => ({ name: shapes[i]!.name, shape: [...shapes[i]!.shape], data: w.dataSync() as Float32Array }));
  writeFileSync(file, encodeSafetensors(tensors, { spec: JSON.stringify(net.spec) }));
}

export function loadNet(tf: Tf, spec: NetSpec, file: string): Net {
  const { tensors } = parseSafetensors(new Uint8Array(readFileSync(file)), file);
  const shapes = weightShapes(spec);
  const values = shapes.map((s) => {
    const t = tensors.find((x) => x.name === s.name);
    if (t === undefined || !(t.data instanceof Float32Array)) throw new PaperError(`${file}: no float32 weight ${s.name}; delete the file to retrain`);
    return t.data;
  });
  return build(tf, spec, values);
}

export interface TrainOptions {
  readonly epochs: number;
  readonly batch: number;
  readonly seed: number;
  readonly optimizer: TfCore.Optimizer;
}

const batchOf = (tf: Tf, d: Dataset, idx: ArrayLike<number>) => {
  const x = new Float32Array(idx.length * PIXELS);
  const y = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    x.set(d.images.subarray(idx[i]! * PIXELS, (idx[i]! + 1) * PIXELS), i * PIXELS);
    y[i] = d.labels[idx[i]!]!;
  }
  return { x: tf.tensor2d(x, [idx.length, PIXELS]), y: tf.oneHot(tf.tensor1d(y, 'int32'), 10) };
};

export const lossOf = (tf: Tf, net: Net, x: TfCore.Tensor2D, y: TfCore.Tensor): TfCore.Scalar =>
  tf.losses.softmaxCrossEntropy(y, net.forward(x).logits) as TfCore.Scalar;

/** Minibatch training in a seeded order; returns the last epoch's mean loss. */
export function train(tf: Tf, net: Net, d: Dataset, o: TrainOptions): number {
  const n = d.labels.length;
  const rng = createRng(o.seed);
  let last = NaN;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const order = Uint32Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    let sum = 0;
    for (let s = 0; s < n; s += o.batch) {
      const idx = order.subarray(s, Math.min(n, s + o.batch));
      const { x, y } = batchOf(tf, d, idx);
      const loss = o.optimizer.minimize(() => lossOf(tf, net, x, y), true, net.weights);
      sum += loss!.dataSync()[0]! * idx.length;
      tf.dispose([x, y, loss!]);
    }
    last = sum / n;
  }
  return last;
}

/** Predicted class of every image. */
export function predict(tf: Tf, net: Net, images: Float32Array, batch = 500): Uint8Array {
  const n = images.length / PIXELS;
  const out = new Uint8Array(n);
  for (let s = 0; s < n; s += batch) {
    const m = Math.min(batch, n - s);
    const p = tf.tidy(() => tf.argMax(net.forward(tf.tensor2d(images.subarray(s * PIXELS, (s + m) * PIXELS), [m, PIXELS])).logits, 1));
    out.set(p.dataSync(), s);
    p.dispose();
  }
  return out;
}

export function accuracy(pred: Uint8Array, labels: Uint8Array): number {
  let ok = 0;
  for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) ok++;
  return ok / labels.length;
}

/** Each hidden layer's activations on `images`, [M, units] row-major. */
export function activations(tf: Tf, net: Net, images: Float32Array, batch = 500): { shape: [number, number]; data: Float32Array }[] {
  const n = images.length / PIXELS;
  let out: { shape: [number, number]; data: Float32Array }[] | null = null;
  for (let s = 0; s < n; s += batch) {
    const m = Math.min(batch, n - s);
    const hidden = tf.tidy(() => net.forward(tf.tensor2d(images.subarray(s * PIXELS, (s + m) * PIXELS), [m, PIXELS])).hidden);
    out ??= hidden.map((h) => ({ shape: [n, h.shape[1]], data: new Float32Array(n * h.shape[1]) }));
    hidden.forEach((h, l) => out![l]!.data.set(h.dataSync() as Float32Array, s * h.shape[1]));
    tf.dispose(hidden);
  }
  return out ?? [];
}
