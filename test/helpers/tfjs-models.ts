/**
 * Tiny TensorFlow.js models for the extract tests, built here with seeded
 * weights and saved as model.json + weights.bin, each with a float64
 * reference forward pass written independently of tfjs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { rng } from './models.js';

// No banner about tfjs-node: the tests build their models on the cpu backend on purpose.
tf.env().set('PROD', true);

const C = 4;
const CLASSES = 5;

export interface ResidualWeights {
  readonly k1: Float64Array; // [3, 3, 3, C]
  readonly b1: Float64Array;
  readonly k2: Float64Array; // [3, 3, C, C]
  readonly b2: Float64Array;
  readonly w: Float64Array; // [C, CLASSES]
  readonly b: Float64Array;
}

/** Uniform values in [-scale, scale], rounded to float32 (what the model stores). */
function values(next: () => number, n: number, scale: number): Float64Array {
  return Float64Array.from({ length: n }, () => Math.fround((next() * 2 - 1) * scale));
}

/**
 * conv1 (3x3, same) -> relu1 -> conv2 (3x3, same) -> add(conv2, conv1) -> relu2 -> gap -> fc,
 * input [side, side, 3] (side null: open), saved to `dir`.
 */
export async function saveResidualModel(dir: string, seed: number, side: number | null): Promise<ResidualWeights> {
  const next = rng(seed);
  const weights: ResidualWeights = {
    k1: values(next, 9 * 3 * C, 0.5),
    b1: values(next, C, 0.1),
    k2: values(next, 9 * C * C, 0.5),
    b2: values(next, C, 0.1),
    w: values(next, C * CLASSES, 1),
    b: values(next, CLASSES, 0.1),
  };
  const input = tfl.input({ shape: [side, side, 3], name: 'pixels' });
  const conv1 = tfl.layers.conv2d({ filters: C, kernelSize: 3, padding: 'same', name: 'conv1' });
  const conv2 = tfl.layers.conv2d({ filters: C, kernelSize: 3, padding: 'same', name: 'conv2' });
  const fc = tfl.layers.dense({ units: CLASSES, name: 'fc' });
  const c1 = conv1.apply(input) as tfl.SymbolicTensor;
  const r1 = tfl.layers.reLU({ name: 'relu1' }).apply(c1);
  const c2 = conv2.apply(r1) as tfl.SymbolicTensor;
  const sum = tfl.layers.add({ name: 'add' }).apply([c2, c1]);
  const r2 = tfl.layers.activation({ activation: 'relu', name: 'relu2' }).apply(sum);
  const gap = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(r2);
  const model = tfl.model({ inputs: input, outputs: fc.apply(gap) as tfl.SymbolicTensor });
  const f32 = (a: Float64Array, shape: number[]) => tf.tensor(Float32Array.from(a), shape);
  conv1.setWeights([f32(weights.k1, [3, 3, 3, C]), f32(weights.b1, [C])]);
  conv2.setWeights([f32(weights.k2, [3, 3, C, C]), f32(weights.b2, [C])]);
  fc.setWeights([f32(weights.w, [C, CLASSES]), f32(weights.b, [CLASSES])]);
  mkdirSync(dir, { recursive: true });
  await model.save({
    save: async (artifacts) => {
      const data = artifacts.weightData as ArrayBuffer;
      writeFileSync(join(dir, 'weights.bin'), new Uint8Array(data));
      const json = {
        format: 'layers-model',
        generatedBy: 'neurocorr tests',
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      };
      writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  });
  model.dispose();
  return weights;
}

/** 3x3 'same' convolution in float64: x [h, w, cin] -> [h, w, cout]. */
function conv3x3(x: Float64Array, h: number, w: number, cin: number, k: Float64Array, b: Float64Array): Float64Array {
  const cout = b.length;
  const y = new Float64Array(h * w * cout);
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      for (let o = 0; o < cout; o++) {
        let s = b[o]!;
        for (let di = 0; di < 3; di++) {
          for (let dj = 0; dj < 3; dj++) {
            const ii = i + di - 1;
            const jj = j + dj - 1;
            if (ii < 0 || jj < 0 || ii >= h || jj >= w) continue;
            for (let c = 0; c < cin; c++) s += x[(ii * w + jj) * cin + c]! * k[((di * 3 + dj) * cin + c) * cout + o]!;
          }
        }
        y[(i * w + j) * cout + o] = s;
      }
    }
  }
  return y;
}

const relu = (a: Float64Array): Float64Array => a.map((v) => (v > 0 ? v : 0));

/** The residual model's layers for one probe x [h, w, 3], in float64, by name. */
export function residualForward(weights: ResidualWeights, x: Float64Array, h: number, w: number): Record<string, Float64Array> {
  const conv1 = conv3x3(x, h, w, 3, weights.k1, weights.b1);
  const relu1 = relu(conv1);
  const conv2 = conv3x3(relu1, h, w, C, weights.k2, weights.b2);
  const add = conv2.map((v, i) => v + conv1[i]!);
  const relu2 = relu(add);
  const gap = new Float64Array(C);
  for (let p = 0; p < h * w; p++) for (let c = 0; c < C; c++) gap[c]! += relu2[p * C + c]! / (h * w);
  const fc = Float64Array.from({ length: CLASSES }, (_, o) => {
    let s = weights.b[o]!;
    for (let c = 0; c < C; c++) s += gap[c]! * weights.w[c * CLASSES + o]!;
    return s;
  });
  return { conv1, relu1, conv2, add, relu2, gap, fc };
}

export interface MlpWeights {
  readonly w1: Float64Array; // [4, 3]
  readonly b1: Float64Array;
  readonly w2: Float64Array; // [3, 2]
  readonly b2: Float64Array;
}

/**
 * A GraphModel written by hand: x [-1, 4] -> MatMul w1 -> BiasAdd b1 -> Relu
 * (node "hidden/Relu") -> MatMul w2 -> BiasAdd b2 (node "logits", the output).
 */
export function saveGraphModel(dir: string, seed: number): MlpWeights {
  const next = rng(seed);
  const weights: MlpWeights = { w1: values(next, 12, 1), b1: values(next, 3, 0.2), w2: values(next, 6, 1), b2: values(next, 2, 0.2) };
  const float = { type: 'DT_FLOAT' };
  const dims = (shape: number[]) => ({ dim: shape.map((size) => ({ size: String(size) })) });
  const constant = (name: string, shape: number[]) => ({
    name,
    op: 'Const',
    attr: { dtype: float, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: dims(shape) } } },
  });
  const node = (name: string, op: string, input: string[]) => ({ name, op, input, attr: { T: float } });
  const json = {
    format: 'graph-model',
    generatedBy: 'neurocorr tests',
    convertedBy: null,
    modelTopology: {
      node: [
        { name: 'x', op: 'Placeholder', attr: { dtype: float, shape: { shape: dims([-1, 4]) } } },
        constant('hidden/w', [4, 3]),
        constant('hidden/b', [3]),
        constant('out/w', [3, 2]),
        constant('out/b', [2]),
        node('hidden/MatMul', 'MatMul', ['x', 'hidden/w']),
        node('hidden/BiasAdd', 'BiasAdd', ['hidden/MatMul', 'hidden/b']),
        node('hidden/Relu', 'Relu', ['hidden/BiasAdd']),
        node('out/MatMul', 'MatMul', ['hidden/Relu', 'out/w']),
        node('logits', 'BiasAdd', ['out/MatMul', 'out/b']),
      ],
      versions: { producer: 1 },
    },
    weightsManifest: [
      {
        paths: ['group1-shard1of1.bin'],
        weights: [
          { name: 'hidden/w', shape: [4, 3], dtype: 'float32' },
          { name: 'hidden/b', shape: [3], dtype: 'float32' },
          { name: 'out/w', shape: [3, 2], dtype: 'float32' },
          { name: 'out/b', shape: [2], dtype: 'float32' },
        ],
      },
    ],
  };
  mkdirSync(dir, { recursive: true });
  const data = Float32Array.from([...weights.w1, ...weights.b1, ...weights.w2, ...weights.b2]);
  writeFileSync(join(dir, 'group1-shard1of1.bin'), new Uint8Array(data.buffer));
  writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
  return weights;
}

/** The graph model's hidden ReLU and logits for one probe x [4], in float64. */
export function graphForward(weights: MlpWeights, x: Float64Array): { hidden: Float64Array; logits: Float64Array } {
  const hidden = Float64Array.from({ length: 3 }, (_, o) => {
    let s = weights.b1[o]!;
    for (let i = 0; i < 4; i++) s += x[i]! * weights.w1[i * 3 + o]!;
    return s > 0 ? s : 0;
  });
  const logits = Float64Array.from({ length: 2 }, (_, o) => {
    let s = weights.b2[o]!;
    for (let i = 0; i < 3; i++) s += hidden[i]! * weights.w2[i * 2 + o]!;
    return s;
  });
  return { hidden, logits };
}
