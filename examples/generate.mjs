// Regenerates the example activation sets (run after `npm ci`: node examples/generate.mjs).
// Two small "models" run on the same 64 probes: an MLP and a small CNN. Both are
// ReLU of random projections of 12 shared latent features plus private noise,
// so real matches exist; a few dead units are included.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { synthesize } from '../dist/synth/synth.js';
import { encodeNpy } from '../dist/shared/formats/index.js';

const M = 64;
const LATENT = 12;
let state = 20261128;
const rand = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = Math.imul(state ^ (state >>> 15), state | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
const latent = Array.from({ length: M }, () => Array.from({ length: LATENT }, gauss));

function layer(perProbe, noise, deadFraction) {
  const n = perProbe.reduce((a, b) => a * b, 1);
  const data = new Float32Array(M * n);
  for (let j = 0; j < n; j++) {
    const dead = rand() < deadFraction;
    const w = Array.from({ length: LATENT }, gauss);
    for (let p = 0; p < M; p++) {
      let v = noise * gauss() - 0.3;
      for (let q = 0; q < LATENT; q++) v += (w[q] * latent[p][q]) / Math.sqrt(LATENT);
      data[p * n + j] = dead ? 0 : Math.max(0, v);
    }
  }
  return encodeNpy(data, [M, ...perProbe]);
}

const models = {
  mlp: { '0_fc1': layer([100], 0.5, 0.03), '1_fc2': layer([60], 0.7, 0.03), '2_fc3': layer([40], 0.9, 0.0) },
  cnn: { '0_conv1': layer([8, 6, 6], 0.6, 0.05), '1_conv2': layer([16, 3, 3], 0.8, 0.05), '2_fc': layer([32], 1.0, 0.0) },
};
const root = new URL('.', import.meta.url).pathname;
for (const [name, layers] of Object.entries(models)) {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, bytes] of Object.entries(layers)) writeFileSync(join(dir, `${file}.npy`), bytes);
}
console.log(
  `wrote ${Object.keys(models)
    .map((m) => join(root, m))
    .join(', ')}`,
);

// The zoo example (examples/zoo): five small models from `neurocorr synth` on one probe set. Two families read
// overlapping parts of the same latent features (a: features 0-9, b: 6-15), two models each; one reads none.
const zoo = [
  { name: 'a1', seed: 1, features: { from: 0, to: 10 }, tags: ['family-a'] },
  { name: 'a2', seed: 2, features: { from: 0, to: 10 }, tags: ['family-a'] },
  { name: 'b1', seed: 3, features: { from: 6, to: 16 }, tags: ['family-b'] },
  { name: 'b2', seed: 4, features: { from: 6, to: 16 }, tags: ['family-b'] },
  { name: 'random', seed: 5, features: 'none', tags: ['random'] },
];
const zooDir = join(root, 'zoo');
mkdirSync(zooDir, { recursive: true });
for (const model of zoo) {
  synthesize(join(zooDir, model.name), {
    arch: 'mlp:96,64,32',
    probes: 48,
    resolution: 224,
    scale: 1,
    allConvs: false,
    seed: model.seed,
    probeSeed: 7,
    features: model.features,
    depth: 'position',
    force: true,
  });
}
writeFileSync(join(zooDir, 'zoo.json'), `${JSON.stringify({ models: zoo.map(({ name, tags }) => ({ name, path: name, tags })) }, null, 1)}\n`);
console.log(`wrote ${zooDir}`);
