/**
 * The Keras ResNet-50 (keras.applications.ResNet50's architecture and layer
 * names: ZeroPadding, 7x7/2 stem, max pool, stacks of 3, 4, 6, 3 bottleneck
 * blocks with the stride on the first 1x1 convolution, global average pool,
 * 1000-way softmax) built with @tensorflow/tfjs-layers, with seeded random
 * weights (He-uniform kernels, identity batch norms), saved as a tfjs
 * layers-model (model.json + weights.bin) for `npm run bench:extract`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { mulberry32 } from '../shared/core/index.js';

type T = tfl.SymbolicTensor;

const BN_EPSILON = 1.001e-5;

function bn(x: T, name: string): T {
  return tfl.layers.batchNormalization({ axis: 3, epsilon: BN_EPSILON, name }).apply(x) as T;
}

function conv(x: T, filters: number, kernel: number, stride: number, name: string, padding: 'valid' | 'same' = 'valid'): T {
  return tfl.layers.conv2d({ filters, kernelSize: kernel, strides: stride, padding, name }).apply(x) as T;
}

const relu = (x: T, name: string): T => tfl.layers.activation({ activation: 'relu', name }).apply(x) as T;

/** keras.applications.resnet.block1. */
function block(x: T, filters: number, stride: number, shortcutConv: boolean, name: string): T {
  const shortcut = shortcutConv ? bn(conv(x, 4 * filters, 1, stride, `${name}_0_conv`), `${name}_0_bn`) : x;
  let y = relu(bn(conv(x, filters, 1, stride, `${name}_1_conv`), `${name}_1_bn`), `${name}_1_relu`);
  y = relu(bn(conv(y, filters, 3, 1, `${name}_2_conv`, 'same'), `${name}_2_bn`), `${name}_2_relu`);
  y = bn(conv(y, 4 * filters, 1, 1, `${name}_3_conv`), `${name}_3_bn`);
  const sum = tfl.layers.add({ name: `${name}_add` }).apply([shortcut, y]) as T;
  return relu(sum, `${name}_out`);
}

function stack(x: T, filters: number, blocks: number, stride: number, name: string): T {
  let y = block(x, filters, stride, true, `${name}_block1`);
  for (let i = 2; i <= blocks; i++) y = block(y, filters, 1, false, `${name}_block${i}`);
  return y;
}

export function kerasResnet50(size: number): tfl.LayersModel {
  const input = tfl.input({ shape: [size, size, 3], name: 'input_1' });
  let x = tfl.layers.zeroPadding2d({ padding: 3, name: 'conv1_pad' }).apply(input) as T;
  x = relu(bn(conv(x, 64, 7, 2, 'conv1_conv'), 'conv1_bn'), 'conv1_relu');
  x = tfl.layers.zeroPadding2d({ padding: 1, name: 'pool1_pad' }).apply(x) as T;
  x = tfl.layers.maxPooling2d({ poolSize: 3, strides: 2, name: 'pool1_pool' }).apply(x) as T;
  x = stack(x, 64, 3, 1, 'conv2');
  x = stack(x, 128, 4, 2, 'conv3');
  x = stack(x, 256, 6, 2, 'conv4');
  x = stack(x, 512, 3, 2, 'conv5');
  x = tfl.layers.globalAveragePooling2d({ name: 'avg_pool' }).apply(x) as T;
  x = tfl.layers.dense({ units: 1000, activation: 'softmax', name: 'predictions' }).apply(x) as T;
  return tfl.model({ inputs: input, outputs: x, name: 'resnet50' });
}

/** Seeded weights: kernels He-uniform over their fan-in, biases and BN betas and means 0, BN gammas and variances 1. */
function seedWeights(model: tfl.LayersModel, seed: number): void {
  const next = mulberry32(seed);
  for (const layer of model.layers) {
    const weights = layer.weights;
    if (weights.length === 0) continue;
    const values = weights.map((w) => {
      const n = w.shape.reduce((a, b) => a! * b!, 1)!;
      const name = w.originalName;
      if (name.endsWith('/kernel')) {
        const fanIn = w.shape.slice(0, -1).reduce((a, b) => a! * b!, 1)!;
        const bound = Math.sqrt(6 / fanIn);
        return tf.tensor(
          Float32Array.from({ length: n }, () => (next() * 2 - 1) * bound),
          w.shape as number[],
        );
      }
      const one = name.endsWith('/gamma') || name.endsWith('/moving_variance');
      return tf.fill(w.shape as number[], one ? 1 : 0);
    });
    layer.setWeights(values);
    tf.dispose(values);
  }
}

/** Builds the model at `size` px with weights from `seed` and saves it in `dir` (model.json, weights.bin). */
export async function saveKerasResnet50(dir: string, size: number, seed: number): Promise<void> {
  tf.env().set('PROD', true);
  await tf.setBackend('cpu');
  const model = kerasResnet50(size);
  seedWeights(model, seed);
  mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const json = {
        format: 'layers-model',
        generatedBy: 'neurocorr bench:extract',
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      };
      writeFileSync(join(dir, 'weights.bin'), new Uint8Array(artifacts.weightData as ArrayBuffer));
      writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  model.dispose();
}
