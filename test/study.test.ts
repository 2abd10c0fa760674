/**
 * The real-network case study's own machinery (study/), on small made-up
 * inputs: random weights drawn from each layer's Keras initializer, nsfwjs's
 * bundles converted to model.json + .bin, and the probe folder's filter and
 * order. The study itself (`npm run study:real`) downloads models and photos;
 * these tests need neither.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CACHE = mkdtempSync(join(tmpdir(), 'nc-study-'));
process.env['NEUROCORR_STUDY_CACHE'] = CACHE;
const { convertNsfwModel, randomizeWeights } = await import('../study/models.js');
const { buildProbes } = await import('../study/probes.js');

afterAll(() => rmSync(CACHE, { recursive: true, force: true }));

const conv = (name: string, filters: number, kernel: number) => ({
  name,
  class_name: 'Conv2D',
  config: {
    name,
    filters,
    kernel_size: [kernel, kernel],
    kernel_initializer: { class_name: 'VarianceScaling', config: { scale: 2, mode: 'fan_in', distribution: 'truncated_normal', seed: null } },
    bias_initializer: { class_name: 'Zeros', config: {} },
  },
});
const bn = (name: string) => ({
  name,
  class_name: 'BatchNormalization',
  config: {
    name,
    beta_initializer: { class_name: 'Zeros', config: {} },
    gamma_initializer: { class_name: 'Ones', config: {} },
    moving_mean_initializer: { class_name: 'Zeros', config: {} },
    moving_variance_initializer: { class_name: 'Ones', config: {} },
  },
});
const dense = { name: 'fc', class_name: 'Dense', config: { name: 'fc', kernel_initializer: { class_name: 'GlorotUniform', config: { seed: null } } } };

const SPECS = [
  { name: 'conv/kernel', shape: [3, 3, 16, 64] },
  { name: 'conv/bias', shape: [64] },
  { name: 'bn/gamma', shape: [64] },
  { name: 'bn/beta', shape: [64] },
  { name: 'bn/moving_mean', shape: [64] },
  { name: 'bn/moving_variance', shape: [64] },
  { name: 'fc/kernel', shape: [200, 50] },
].map((s) => ({ ...s, dtype: 'float32' }));

function writeKerasModel(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'model.json');
  const model = {
    format: 'layers-model',
    modelTopology: { class_name: 'Model', model_config: { class_name: 'Model', config: { layers: [conv('conv', 64, 3), bn('bn'), dense] } } },
    weightsManifest: [{ paths: ['w.bin'], weights: SPECS }],
  };
  writeFileSync(file, JSON.stringify(model));
  return file;
}

function weights(file: string): Map<string, Float32Array> {
  const model = JSON.parse(readFileSync(file, 'utf8')) as { weightsManifest: { paths: string[]; weights: { name: string; shape: number[] }[] }[] };
  const [group] = model.weightsManifest;
  const bytes = readFileSync(join(file, '..', group!.paths[0]!));
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const out = new Map<string, Float32Array>();
  let at = 0;
  for (const w of group!.weights) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    out.set(w.name, all.subarray(at, at + n));
    at += n;
  }
  expect(at).toBe(all.length);
  return out;
}

const sd = (xs: Float32Array) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
};

describe('random weights', () => {
  let source: string;
  beforeAll(() => {
    source = writeKerasModel(join(CACHE, 'src'));
  });

  it("draws every weight from its layer's initializer", async () => {
    const w = weights(await randomizeWeights(source, 'rand-a', 1));
    const k = w.get('conv/kernel')!;
    // He truncated normal: variance 2 / fan_in with fan_in = 3·3·16, cut at 2 sd of the untruncated normal.
    const target = Math.sqrt(2 / (3 * 3 * 16));
    expect(sd(k)).toBeGreaterThan(target * 0.95);
    expect(sd(k)).toBeLessThan(target * 1.05);
    expect(Math.max(...k.map(Math.abs))).toBeLessThanOrEqual((2 * target) / 0.8796256610342398 + 1e-6);
    expect([...w.get('conv/bias')!].every((x) => x === 0)).toBe(true);
    expect([...w.get('bn/gamma')!].every((x) => x === 1)).toBe(true);
    expect([...w.get('bn/moving_variance')!].every((x) => x === 1)).toBe(true);
    expect([...w.get('bn/moving_mean')!, ...w.get('bn/beta')!].every((x) => x === 0)).toBe(true);
    // Glorot uniform: limit sqrt(6 / (fan_in + fan_out)).
    const fc = w.get('fc/kernel')!;
    const limit = Math.sqrt(6 / 250);
    expect(Math.max(...fc.map(Math.abs))).toBeLessThanOrEqual(limit);
    expect(sd(fc)).toBeCloseTo(limit / Math.sqrt(3), 2);
  });

  it('is seeded: the same seed gives the same bytes, another seed others', async () => {
    const a = readFileSync(join(CACHE, 'models', 'rand-a', 'weights.bin'));
    const again = readFileSync(join(await randomizeWeights(source, 'rand-a2', 1), '..', 'weights.bin'));
    const other = readFileSync(join(await randomizeWeights(source, 'rand-b', 2), '..', 'weights.bin'));
    expect(again.equals(a)).toBe(true);
    expect(other.equals(a)).toBe(false);
  });

  it('refuses an initializer it does not know', async () => {
    const file = writeKerasModel(join(CACHE, 'odd'));
    writeFileSync(file, readFileSync(file, 'utf8').replace('"GlorotUniform"', '"Orthogonal"'));
    await expect(randomizeWeights(file, 'rand-odd', 1)).rejects.toThrow(/fc\/kernel: initializer Orthogonal is not supported/);
  });
});

describe('nsfwjs bundles', () => {
  const umd = (value: string) =>
    `!function(e){"object"==typeof exports&&"undefined"!=typeof module?module.exports=e():this.x=e()}(function(){return ${value}});`;

  it('become model.json and .bin files with the bundled bytes', async () => {
    const pkg = join(CACHE, 'nsfwjs');
    const dir = join(pkg, 'dist', 'models', 'tiny');
    mkdirSync(dir, { recursive: true });
    const shard = Buffer.from(Float32Array.from([1, 2, 3, 4]).buffer);
    const model = {
      modelTopology: { class_name: 'Model', config: { layers: [] } },
      weightsManifest: [{ paths: ['group1-shard1of1'], weights: [{ name: 'k', shape: [4], dtype: 'float32' }] }],
    };
    writeFileSync(join(dir, 'model.min.js'), umd(JSON.stringify(model)));
    writeFileSync(join(dir, 'group1-shard1of1.min.js'), umd(JSON.stringify(shard.toString('base64'))));
    const file = await convertNsfwModel(pkg, 'tiny');
    const out = JSON.parse(readFileSync(file, 'utf8')) as { format: string; weightsManifest: { paths: string[] }[] };
    expect(out.format).toBe('layers-model');
    expect(out.weightsManifest[0]!.paths).toEqual(['group1-shard1of1.bin']);
    expect(readFileSync(join(file, '..', 'group1-shard1of1.bin')).equals(shard)).toBe(true);
  });

  it('run without require or process', async () => {
    const pkg = join(CACHE, 'nsfwjs-bad');
    const dir = join(pkg, 'dist', 'models', 'bad');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'model.min.js'), 'module.exports = require("node:fs").readdirSync("/");');
    await expect(convertNsfwModel(pkg, 'bad')).rejects.toThrow(/require is not defined/);
  });
});

describe('probe folder', () => {
  it('keeps photograph-like stamps, drops drawn ones, mirrors and symbols, and orders them by a seeded hash', async () => {
    const root = join(CACHE, 'deb', 'tuxpaint');
    const stamps = join(root, 'usr', 'share', 'tuxpaint', 'stamps');
    const noisy = async (file: string, seed: number) => {
      const px = Buffer.alloc(64 * 64 * 4);
      let s = seed;
      for (let i = 0; i < px.length; i++) {
        s = (s * 1103515245 + 12345) >>> 0;
        px[i] = i % 4 === 3 ? 255 : s >>> 24;
      }
      await sharp(px, { raw: { width: 64, height: 64, channels: 4 } })
        .png()
        .toFile(file);
    };
    const flat = (file: string) =>
      sharp({ create: { width: 64, height: 64, channels: 4, background: { r: 200, g: 30, b: 30, alpha: 1 } } })
        .png()
        .toFile(file);
    for (const d of ['animals', 'food', 'symbols', 'town/roadsigns']) mkdirSync(join(stamps, d), { recursive: true });
    for (let i = 0; i < 6; i++) await noisy(join(stamps, i % 2 === 0 ? 'animals' : 'food', `photo${i}.png`), i + 1);
    await noisy(join(stamps, 'animals', 'photo0_mirror.png'), 99);
    await noisy(join(stamps, 'symbols', 'letter.png'), 7);
    await noisy(join(stamps, 'town', 'roadsigns', 'stop.png'), 8);
    await flat(join(stamps, 'food', 'clipart.png'));
    const deb = { name: 'tuxpaint-stamps-default', version: 'test', file: 'x.deb', sha256: '', root };
    const set = await buildProbes([deb], 4);
    expect(set.pool).toBe(6);
    expect(set.dropped).toBe(1);
    const files = readdirSync(set.dir).sort();
    expect(files).toHaveLength(4);
    expect(files.every((f) => /^\d-(animals|food)-photo\d\.png$/.test(f))).toBe(true);
    const meta = await sharp(join(set.dir, files[0]!)).metadata();
    expect([meta.width, meta.height, meta.channels]).toEqual([320, 320, 3]);
    // The order is fixed by the paths: building it again gives the same folder.
    rmSync(set.dir, { recursive: true });
    rmSync(`${set.dir}.done`);
    expect(readdirSync((await buildProbes([deb], 4)).dir).sort()).toEqual(files);
  });
});
