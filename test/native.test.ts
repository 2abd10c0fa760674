/** The native addon: every SIMD variant gives the same bits, and it is safe in many threads at once. */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { loadAddon, nativeChunk } from '../dist/worker/kernels/native.js';
import { computeTileReference } from '../dist/worker/kernels/reference.js';
import { DEFAULT_CACHES } from '../dist/worker/caches.js';
import { rng } from './helpers/models.js';

const addon = loadAddon();
const isas = addon.info().isas;

function randomRows(n: number, m: number, seed: number): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n * m);
  for (let i = 0; i < out.length; i++) out[i] = r() * 2 - 1;
  // Exact duplicates and a zero row (a constant neuron), for ties.
  if (n > 4) {
    out.copyWithin(3 * m, 0, m);
    out.fill(0, m, 2 * m);
  }
  return out;
}

function tile(isa: string, f: Float32Array, g: Float32Array, nf: number, ng: number, m: number, chunk: number): Uint8Array {
  const out = new ArrayBuffer((nf + ng) * 12);
  expect(addon.computeTile(f, g, nf, ng, m, 100, 7, chunk, isa as 'auto', out)).toBe(isa);
  return new Uint8Array(out);
}

describe('native addon', () => {
  it('reports its ISAs and cache sizes', () => {
    const info = addon.info();
    expect(info.isas).toContain('scalar');
    expect(info.isas).toContain(info.best);
    expect(nativeChunk(64, DEFAULT_CACHES)).toBe(1024);
  });

  it.each([
    [1, 1, 1],
    [5, 3, 2],
    [13, 33, 5],
    [100, 77, 64],
    [37, 250, 3],
    [24, 64, 300],
  ])('%i x %i at m = %i: every ISA and G chunk gives the bits of the scalar path, and matches the reference', (nf, ng, m) => {
    const f = randomRows(nf, m, nf * 31 + m);
    const g = randomRows(ng, m, ng * 17 + m);
    const scalar = tile('scalar', f, g, nf, ng, m, 1 << 20);
    for (const isa of isas) {
      for (const chunk of [1, 16, 32, 33, 96, 1 << 20])
        expect(Buffer.from(tile(isa, f, g, nf, ng, m, chunk)).equals(Buffer.from(scalar)), `${isa} chunk ${chunk}`).toBe(true);
    }
    const ref = computeTileReference({ f, g, fCount: nf, gCount: ng, m, fStart: 100, gStart: 7 });
    const got = new Float64Array(scalar.buffer, 0, nf + ng);
    const want = [...ref.rowBest, ...ref.colBest];
    got.forEach((v, k) => expect(Math.abs(v - want[k]!)).toBeLessThan(1e-5));
  });

  it('reuses packed F panels only for the same key and sizes', () => {
    const m = 20;
    const f1 = randomRows(30, m, 1);
    const f2 = randomRows(30, m, 2);
    const g1 = randomRows(50, m, 3);
    const g2 = randomRows(70, m, 4);
    const run = (f: Float32Array, g: Float32Array, ng: number, key: number, nf = 30) => {
      const out = new ArrayBuffer((nf + ng) * 12);
      addon.computeTile(f, g, nf, ng, m, 0, 0, 32, 'auto', out, key);
      return Buffer.from(out);
    };
    const fresh = (f: Float32Array, g: Float32Array, ng: number, nf = 30) => run(f, g, ng, 0, nf);
    expect(run(f1, g1, 50, 7).equals(fresh(f1, g1, 50))).toBe(true);
    expect(run(f1, g2, 70, 7).equals(fresh(f1, g2, 70))).toBe(true);
    expect(run(f2, g2, 70, 8).equals(fresh(f2, g2, 70))).toBe(true);
    // Same key, fewer rows: repacked, not reused.
    expect(run(f2, g1, 50, 8, 17).equals(fresh(f2, g1, 50, 17))).toBe(true);
  });

  it('rejects buffers that do not match the sizes', () => {
    const f = new Float32Array(4);
    expect(() => addon.computeTile(f, f, 2, 2, 4, 0, 0, 32, 'auto', new ArrayBuffer(48))).toThrow(RangeError);
    expect(() => addon.computeTile(f, f, 1, 1, 4, 0, 0, 32, 'mmx' as 'auto', new ArrayBuffer(24))).toThrow(/isa/);
  });

  it('loads and computes in several worker threads at once', async () => {
    const m = 48;
    const n = 200;
    const f = randomRows(n, m, 1);
    const g = randomRows(n, m, 2);
    const expected = Buffer.from(tile(addon.info().best, f, g, n, n, m, 64));
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const addon = require(workerData.path);
      const out = new ArrayBuffer((workerData.n * 2) * 12);
      for (let rep = 0; rep < 20; rep++) addon.computeTile(workerData.f, workerData.g, workerData.n, workerData.n, workerData.m, 100, 7, 64, 'auto', out);
      parentPort.postMessage(Buffer.from(out));
    `;
    const path = new URL('../worker/native/build/Release/neurocorr.node', import.meta.url).pathname;
    const results = await Promise.all(
      Array.from({ length: 6 }, () => {
        const worker = new Worker(source, { eval: true, workerData: { path, f, g, n, m } });
        return new Promise<Uint8Array>((resolve, reject) => {
          worker.once('message', resolve);
          worker.once('error', reject);
        }).finally(() => worker.terminate());
      }),
    );
    for (const r of results) expect(Buffer.from(r).equals(expected)).toBe(true);
  });
});

describe('native pool path', () => {
  it('every ISA gives the same score, bit for bit, through the pool', async () => {
    const { runPair } = await import('./helpers/run.js');
    const { genModel, latents, writeNpyDir } = await import('./helpers/models.js');
    const latent = latents(1, 24, 3);
    const fDir = writeNpyDir(genModel(1, { m: 24, layers: [[40], [3, 4, 4]], latent, duplicates: 0.2, constants: 0.05 }));
    const gDir = writeNpyDir(genModel(2, { m: 24, layers: [[70]], latent, duplicates: 0.2 }));
    const states: string[] = [];
    for (const isa of isas) {
      process.env['NEUROCORR_NATIVE_ISA'] = isa;
      const { reduction, kernelName } = await runPair(fDir, gDir, { kernel: 'native', threads: 2, tile: 13 });
      expect(kernelName).toBe(`native-${isa}`);
      states.push(JSON.stringify([reduction.forward, reduction.backward].flatMap((s) => [s.best, s.arg, s.pen, s.penArg].map((a) => Array.from(a)))));
    }
    delete process.env['NEUROCORR_NATIVE_ISA'];
    expect(new Set(states).size).toBe(1);
  });
});

describe('native standardization loops', () => {
  it('give z bit-identical to the TypeScript loops, for float32 and float64, units and channels', async () => {
    const { planModel, jsLoops } = await import('../dist/shared/formats/index.js');
    const { loadActivationSet } = await import('../dist/shared/formats/index.js');
    const { nativeLoops } = await import('../dist/worker/native-assist.js');
    const { genModel, latents, writeNpyDir } = await import('./helpers/models.js');
    const loops = nativeLoops();
    expect(loops).toBeDefined();
    for (const dtype of ['f4', 'f8'] as const) {
      const dir = writeNpyDir(genModel(5, { m: 37, layers: [[9], [3, 4, 5], [1]], latent: latents(2, 37, 2), dtype, constants: 0.1, duplicates: 0.1 }));
      for (const conv of ['units', 'channels'] as const) {
        const raw = loadActivationSet(dir);
        const options = { conv, probes: null, layers: conv === 'channels' ? ['layer01'] : null, sample: conv === 'units' ? { n: 7, seed: 3 } : null };
        const a = planModel(raw, { ...options, loops: jsLoops });
        const b = planModel(raw, { ...options, loops: loops! });
        const za = new Float32Array(a.n * a.m);
        const zb = new Float32Array(b.n * b.m);
        const ma = a.build(za);
        const mb = b.build(zb);
        expect(Buffer.from(zb.buffer).equals(Buffer.from(za.buffer)), `${dtype} ${conv}`).toBe(true);
        expect(Array.from(mb.constant)).toEqual(Array.from(ma.constant));
      }
    }
  });
});
