// Regenerates examples/tfjs (run after `npm ci`: node examples/generate-tfjs.mjs): three tiny
// TensorFlow.js LayersModels with the same residual architecture, `a` with seeded random
// weights, `b` the same weights with 30% noise added (a sibling of a), `c` other random
// weights (unrelated to a), and 64 probe
// images of 16x16 pixels (smooth colour patterns) in probes/.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Buffer } from 'node:buffer';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import sharp from 'sharp';

tf.env().set('PROD', true);
await tf.setBackend('cpu');
const ROOT = join(import.meta.dirname, 'tfjs');
const SIDE = 16;
let state = 20261130;
const rand = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = Math.imul(state ^ (state >>> 15), state | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const uniform = (n, scale) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);

function residualModel() {
  const input = tfl.input({ shape: [SIDE, SIDE, 3], name: 'pixels' });
  const conv1 = tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', name: 'conv1' }).apply(input);
  const relu1 = tfl.layers.reLU({ name: 'relu1' }).apply(conv1);
  const conv2 = tfl.layers.conv2d({ filters: 8, kernelSize: 3, padding: 'same', name: 'conv2' }).apply(relu1);
  const add = tfl.layers.add({ name: 'add' }).apply([conv2, conv1]);
  const relu2 = tfl.layers.activation({ activation: 'relu', name: 'relu2' }).apply(add);
  const pool = tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(relu2);
  const conv3 = tfl.layers.conv2d({ filters: 16, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv3' }).apply(pool);
  const gap = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(conv3);
  return tfl.model({ inputs: input, outputs: tfl.layers.dense({ units: 10, name: 'fc' }).apply(gap) });
}

async function save(model, dir) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await model.save({
    save: async (a) => {
      writeFileSync(join(dir, 'weights.bin'), new Uint8Array(a.weightData));
      const json = {
        format: 'layers-model',
        generatedBy: 'examples/generate-tfjs.mjs',
        modelTopology: a.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
      };
      writeFileSync(join(dir, 'model.json'), `${JSON.stringify(json)}\n`);
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  });
}

const a = residualModel();
const weights = a.getWeights().map((w) => uniform(w.size, w.shape.length > 1 ? Math.sqrt(3 / (w.size / w.shape.at(-1))) : 0.1));
a.setWeights(weights.map((w, i) => tf.tensor(w, a.getWeights()[i].shape)));
await save(a, join(ROOT, 'a'));
const b = residualModel();
b.setWeights(
  weights.map((w, i) =>
    tf.tensor(
      w.map((v) => v + 0.3 * (rand() * 2 - 1) * Math.abs(v)),
      a.getWeights()[i].shape,
    ),
  ),
);
await save(b, join(ROOT, 'b'));
const c = residualModel();
c.setWeights(weights.map((w, i) => tf.tensor(uniform(w.length, Math.max(...w.map(Math.abs))), a.getWeights()[i].shape)));
await save(c, join(ROOT, 'c'));

const probes = join(ROOT, 'probes');
rmSync(probes, { recursive: true, force: true });
mkdirSync(probes);
for (let p = 0; p < 64; p++) {
  const waves = Array.from({ length: 3 }, () => Array.from({ length: 3 }, () => [rand() * 0.8, rand() * 0.8, rand() * 6.3]));
  const pixels = Buffer.alloc(SIDE * SIDE * 3);
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      for (let c = 0; c < 3; c++) {
        const v = waves[c].reduce((s, [fx, fy, phase]) => s + Math.sin(fx * x + fy * y + phase), 0);
        pixels[(y * SIDE + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(128 + 42 * v)));
      }
    }
  }
  await sharp(pixels, { raw: { width: SIDE, height: SIDE, channels: 3 } })
    .png()
    .toFile(join(probes, `p${String(p).padStart(2, '0')}.png`));
}
