/** The native addon: its loader, every SIMD variant gives the same bits, input checks, and many threads at once. */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { nativeChunk, nativeKernel } from '../dist/worker/kernels/native.js';
import { addonCandidates, loadAddon, packageRoot, requireAddon, type Isa } from '../dist/worker/native/addon.js';
import { computeTileReference } from '../dist/worker/kernels/reference.js';
import { DEFAULT_CACHES } from '../dist/worker/caches.js';
import { loadKernel } from '../dist/worker/loader.js';
import { KernelUnavailableError } from '../dist/shared/errors.js';
import type { TileInput } from '../dist/worker/kernel.js';
import { rng } from './helpers/models.js';

const ROOT = join(import.meta.dirname, '..');
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

function tile(isa: Isa, f: Float32Array, g: Float32Array, nf: number, ng: number, m: number, chunk: number): Uint8Array {
  const out = new ArrayBuffer((nf + ng) * 12);
  const kernel = addon.tileKernel({ isa, gChunk: chunk });
  expect(kernel.isa).toBe(isa);
  kernel({ f, g, fCount: nf, gCount: ng, m, fStart: 100, gStart: 7 }, out);
  return new Uint8Array(out);
}

describe('native addon loader', () => {
  it('finds the package root from dist and from the sources, and the Release build under it', () => {
    expect(packageRoot(join(ROOT, 'dist', 'worker', 'native', 'addon.js'))).toBe(ROOT);
    expect(packageRoot(new URL('../worker/native/addon.ts', import.meta.url))).toBe(ROOT);
    // Other packages' package.json files on the way up are passed over.
    expect(packageRoot(join(ROOT, 'node_modules', 'vitest', 'dist', 'index.js'))).toBe(ROOT);
    expect(() => packageRoot(join(tmpdir(), 'x.js'))).toThrow(/no folder above .* has a package.json named neurocorr/);
    const candidates = addonCandidates();
    expect(candidates).toEqual(['Release', 'Debug'].map((b) => join(ROOT, 'worker', 'native', 'build', b, 'neurocorr.node')));
    expect(existsSync(candidates[0]!)).toBe(true);
    // An explicit path is the only candidate.
    expect(addonCandidates({ addon: '/x/y.node' })).toEqual(['/x/y.node']);
  });

  it('loads once per thread', () => {
    expect(loadAddon()).toBe(addon);
    expect(loadAddon({ addon: addonCandidates()[0]! })).toBe(addon);
  });

  it('names every place tried, why each failed, and the fix', () => {
    const root = mkdtempSync(join(tmpdir(), 'nc-root-'));
    const [release, debug] = addonCandidates({}, root);
    mkdirSync(join(debug!, '..'), { recursive: true });
    writeFileSync(debug!, 'not a shared object');
    let error: unknown;
    try {
      requireAddon(addonCandidates({}, root));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(KernelUnavailableError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    expect(message).toContain(`${release} (absent)`);
    // A file that is there but does not load: dlopen's reason.
    expect(message).toContain(`${debug} (${debug}: `);
    expect(message).toMatch(/^native addon not built or not loadable: tried .* Fix: run npm rebuild \(or npm ci\)/);
    const missing = join(root, 'nope.node');
    expect(() => loadAddon({ addon: missing })).toThrow(
      `native addon not built or not loadable: tried ${missing} (absent). Fix: point the addon path at a built neurocorr.node`,
    );
  });
});

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
    const kernel = addon.tileKernel({ isa: 'auto', gChunk: 32 });
    const f1 = randomRows(30, m, 1);
    const f2 = randomRows(30, m, 2);
    const g1 = randomRows(50, m, 3);
    const g2 = randomRows(70, m, 4);
    const run = (f: Float32Array, g: Float32Array, ng: number, key: number, nf = 30) => {
      const out = new ArrayBuffer((nf + ng) * 12);
      kernel({ f, g, fCount: nf, gCount: ng, m, fStart: 0, gStart: 0, fKey: key }, out);
      return Buffer.from(out);
    };
    const fresh = (f: Float32Array, g: Float32Array, ng: number, nf = 30) => run(f, g, ng, 0, nf);
    expect(run(f1, g1, 50, 7).equals(fresh(f1, g1, 50))).toBe(true);
    expect(run(f1, g2, 70, 7).equals(fresh(f1, g2, 70))).toBe(true);
    expect(run(f2, g2, 70, 8).equals(fresh(f2, g2, 70))).toBe(true);
    // Same key, fewer rows: repacked, not reused.
    expect(run(f2, g1, 50, 8, 17).equals(fresh(f2, g1, 50, 17))).toBe(true);
  });

  it('chooses the ISA when the tile kernel is made: an unknown or unsupported one fails there', () => {
    expect(addon.tileKernel({ isa: 'auto', gChunk: 32 }).isa).toBe(addon.info().best);
    expect(() => addon.tileKernel({ isa: 'mmx' as Isa, gChunk: 32 })).toThrow(RangeError);
    expect(() => addon.tileKernel({ isa: 'mmx' as Isa, gChunk: 32 })).toThrow(/isa must be auto, avx512, avx2 or scalar, got 'mmx'/);
    for (const isa of (['avx512', 'avx2'] as const).filter((i) => !isas.includes(i))) {
      expect(() => addon.tileKernel({ isa, gChunk: 32 })).toThrow(`this CPU does not support ${isa}`);
    }
    expect(() => addon.tileKernel({ isa: 'auto', gChunk: 0 })).toThrow(RangeError);
    expect(() => addon.tileKernel({ isa: 'auto', gChunk: '32' as unknown as number })).toThrow(TypeError);
    expect(() => addon.tileKernel(undefined as unknown as { isa: 'auto'; gChunk: number })).toThrow(TypeError);
    // Through the kernel and the loader: at creation, before any tile.
    expect(() => nativeKernel({ isa: 'mmx' as Isa })).toThrow(RangeError);
    expect(nativeKernel({ isa: 'scalar' }).name).toBe('native-scalar');
    return expect(loadKernel({ choice: 'native', isa: 'mmx' as Isa })).rejects.toThrow(
      /the native kernel was asked for and cannot be loaded: native: unavailable \(tileKernel: isa must be/,
    );
  });

  it('checks the input object: TypeError for a wrong type, RangeError for a wrong size or value', () => {
    const kernel = addon.tileKernel({ isa: 'auto', gChunk: 32 });
    const f = new Float32Array(8);
    const good: TileInput = { f, g: f, fCount: 2, gCount: 2, m: 4, fStart: 0, gStart: 0 };
    const out = () => new ArrayBuffer(48);
    // Called as untyped JavaScript would call it.
    const compute = kernel as unknown as (input: unknown, out: unknown) => void;
    const call = (input: unknown, o: unknown = out()) => compute.bind(null, input, o);
    expect(call(good)).not.toThrow();
    // Views of a SharedArrayBuffer are fine.
    const shared = new Float32Array(new SharedArrayBuffer(32));
    expect(call({ ...good, f: shared, g: shared })).not.toThrow();
    expect(call(undefined)).toThrow(TypeError);
    expect(call(good, new Float64Array(6))).toThrow(/out must be an ArrayBuffer/);
    expect(call(good, new SharedArrayBuffer(48))).toThrow(TypeError);
    expect(call({ ...good, f: new Float64Array(8) })).toThrow(/input.f must be a Float32Array/);
    expect(call({ ...good, g: [0, 0, 0, 0, 0, 0, 0, 0] })).toThrow(TypeError);
    expect(call({ ...good, m: '4' })).toThrow(/input.m must be a number/);
    expect(call({ ...good, fStart: undefined })).toThrow(TypeError);
    expect(call({ ...good, fKey: 'k' })).toThrow(TypeError);
    expect(call({ ...good, fCount: 0 })).toThrow(RangeError);
    expect(call({ ...good, gCount: 1.5 })).toThrow(/input.gCount must be an integer from 1 to 2147483647, got 1.5/);
    expect(call({ ...good, gStart: -1 })).toThrow(RangeError);
    expect(call({ ...good, fKey: -1 })).toThrow(RangeError);
    expect(call({ ...good, fCount: 3 })).toThrow(/input.f holds 8 floats, fewer than fCount x m = 12/);
    expect(call({ ...good, g: new Float32Array(7) })).toThrow(RangeError);
    expect(call(good, new ArrayBuffer(47))).toThrow(/out holds 47 bytes/);
    expect(call({ ...good, fStart: 2 ** 32 - 1 })).toThrow(/past 2\^32 - 1/);
  });

  it('loads and computes in several worker threads at once', async () => {
    const m = 48;
    const n = 200;
    const f = randomRows(n, m, 1);
    const g = randomRows(n, m, 2);
    const expected = Buffer.from(tile(addon.info().best, f, g, n, n, m, 64));
    // Each thread loads the addon through the loader and makes its own tile kernel.
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.loader).then(({ loadAddon }) => {
        const kernel = loadAddon().tileKernel({ isa: 'auto', gChunk: 64 });
        const { f, g, n, m } = workerData;
        const out = new ArrayBuffer((n * 2) * 12);
        for (let rep = 0; rep < 20; rep++) kernel({ f, g, fCount: n, gCount: n, m, fStart: 100, gStart: 7 }, out);
        parentPort.postMessage(Buffer.from(out));
      });
    `;
    const loader = new URL('../dist/worker/native/addon.js', import.meta.url).href;
    const results = await Promise.all(
      Array.from({ length: 6 }, () => {
        const worker = new Worker(source, { eval: true, workerData: { loader, f, g, n, m } });
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
      const { reduction, kernelName } = await runPair(fDir, gDir, { kernel: { choice: 'native', isa }, threads: 2, tile: 13 });
      expect(kernelName).toBe(`native-${isa}`);
      states.push(JSON.stringify([reduction.forward, reduction.backward].flatMap((s) => [s.best, s.arg, s.pen, s.penArg].map((a) => Array.from(a)))));
    }
    expect(new Set(states).size).toBe(1);
  });
});

describe('native standardization loops', () => {
  it('give z bit-identical to the TypeScript loops, for float32 and float64, units and channels', async () => {
    const { planModel, jsLoops } = await import('../dist/shared/formats/index.js');
    const { loadActivationSet } = await import('../dist/shared/formats/index.js');
    const { nativeLoops } = await import('../dist/worker/native/assist.js');
    const { genModel, latents, writeNpyDir } = await import('./helpers/models.js');
    const loops = nativeLoops();
    expect(loops).toBeDefined();
    expect(nativeLoops({ disabled: true })).toBeUndefined();
    expect(nativeLoops({ addon: join(tmpdir(), 'nc-no-addon', 'neurocorr.node') })).toBeUndefined();
    for (const dtype of ['f4', 'f8'] as const) {
      const dir = writeNpyDir(genModel(5, { m: 37, layers: [[9], [3, 4, 5], [1]], latent: latents(2, 37, 2), dtype, constants: 0.1, duplicates: 0.1 }));
      for (const conv of ['units', 'channels'] as const) {
        const raw = loadActivationSet(dir);
        const options = {
          conv,
          probes: null,
          layers: conv === 'channels' ? ['layer01'] : null,
          sample: conv === 'units' ? { n: 7, seed: 3 } : null,
          layout: 'nchw' as const,
        };
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

describe('native standardization entry points check their one options object', () => {
  // Two probes of one sample, rows of 4 values; neurons at columns 0, 1 and 3.
  const accumulate = () => ({
    data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]),
    pn: 2,
    spatial: 1,
    probeStride: 4,
    spatialStride: 0,
    cols: Float64Array.from([0, 1, 3]),
    shift: Float64Array.from([1, 2, 4]),
    s1: new Float64Array(3),
    s2: new Float64Array(3),
    maxAbs: new Float64Array(3),
  });
  const write = () => ({
    ...accumulate(),
    p0: 1,
    mean: Float64Array.from([3, 4, 6]),
    scale: Float64Array.from([0.5, 0.25, 2]),
    constant: Uint8Array.from([0, 1, 0]),
    out: new Float32Array(3 * 3),
    m: 3,
  });

  it('compute what the TypeScript loops do', async () => {
    const { jsLoops } = await import('../dist/shared/formats/index.js');
    const [a, b] = [accumulate(), accumulate()];
    addon.standardizeAccumulate(a);
    jsLoops.accumulate(b);
    expect([a.s1, a.s2, a.maxAbs].map((x) => Array.from(x))).toEqual([b.s1, b.s2, b.maxAbs].map((x) => Array.from(x)));
    expect(Array.from(a.s1)).toEqual([4, 4, 4]);
    const [c, d] = [write(), write()];
    addon.standardizeWrite(c);
    jsLoops.write(d);
    expect(Array.from(c.out)).toEqual(Array.from(d.out));
    expect(Array.from(c.out)).toEqual([0, -1, 1, 0, 0, 0, 0, -4, 4]);
  });

  const call = (fn: (o: never) => void, options: unknown) => () => fn(options as never);
  const raw =
    (fn: unknown, ...args: unknown[]) =>
    () =>
      (fn as (...a: unknown[]) => void)(...args);

  it.each([
    ['no argument', raw(addon.standardizeAccumulate), TypeError, /^standardizeAccumulate takes one options object$/],
    ['the old positional arguments', raw(addon.standardizeAccumulate, new Float32Array(8), 2, 1, 4, 0), TypeError, /takes one options object/],
    ['a typed array for the options', call(addon.standardizeAccumulate, new Float64Array(3)), TypeError, /takes one options object/],
    [
      'data of integers',
      call(addon.standardizeAccumulate, { ...accumulate(), data: new Int32Array(8) }),
      TypeError,
      /options\.data must be a Float32Array or a Float64Array/,
    ],
    ['pn as a string', call(addon.standardizeAccumulate, { ...accumulate(), pn: '2' }), TypeError, /options\.pn must be a number/],
    ['pn 0', call(addon.standardizeAccumulate, { ...accumulate(), pn: 0 }), RangeError, /options\.pn must be an integer from 1 to 2147483647, got 0/],
    ['a fractional stride', call(addon.standardizeAccumulate, { ...accumulate(), probeStride: 4.5 }), RangeError, /options\.probeStride must be an integer/],
    [
      'cols of float32',
      call(addon.standardizeAccumulate, { ...accumulate(), cols: Float32Array.from([0, 1, 3]) }),
      TypeError,
      /options\.cols must be a Float64Array/,
    ],
    [
      's1 shorter than cols',
      call(addon.standardizeAccumulate, { ...accumulate(), s1: new Float64Array(2) }),
      RangeError,
      /options\.s1 holds 2 elements, one per neuron of cols \(3\)/,
    ],
    ['no maxAbs', call(addon.standardizeAccumulate, { ...accumulate(), maxAbs: undefined }), TypeError, /options\.maxAbs must be a Float64Array/],
    [
      'a column past the row',
      call(addon.standardizeAccumulate, { ...accumulate(), cols: Float64Array.from([0, 1, 4]) }),
      RangeError,
      /options\.cols\[2\] = 4 reads past data \(8 elements/,
    ],
    ['more probes than data holds', call(addon.standardizeAccumulate, { ...accumulate(), pn: 3 }), RangeError, /options\.cols\[0\] = 0 reads past data/],
    ['a negative column', call(addon.standardizeAccumulate, { ...accumulate(), cols: Float64Array.from([-1, 1, 3]) }), RangeError, /options\.cols\[0\] = -1/],
    [
      'a fractional column',
      call(addon.standardizeAccumulate, { ...accumulate(), cols: Float64Array.from([0, 0.5, 3]) }),
      RangeError,
      /options\.cols\[1\] = 0\.5/,
    ],
    [
      'constant of int8',
      call(addon.standardizeWrite, { ...write(), constant: new Int8Array(3) }),
      TypeError,
      /^standardizeWrite: options\.constant must be a Uint8Array$/,
    ],
    ['mean shorter than cols', call(addon.standardizeWrite, { ...write(), mean: new Float64Array(1) }), RangeError, /options\.mean holds 1 elements/],
    ['out of float64', call(addon.standardizeWrite, { ...write(), out: new Float64Array(9) }), TypeError, /options\.out must be a Float32Array/],
    [
      'out shorter than cols x m',
      call(addon.standardizeWrite, { ...write(), out: new Float32Array(8) }),
      RangeError,
      /options\.out holds 8 elements, fewer than cols x m = 3 x 3/,
    ],
    ['probes past m', call(addon.standardizeWrite, { ...write(), p0: 2 }), RangeError, /options\.p0 \+ pn = 4 probes of 1 samples each reach past m = 3/],
    ['m 0', call(addon.standardizeWrite, { ...write(), m: 0 }), RangeError, /options\.m must be an integer from 1/],
  ] as const)('%s: %s', (_what, run, type, message) => {
    expect(run).toThrow(type);
    expect(run).toThrow(message);
  });

  it('an options getter that throws: its error, and nothing computed', () => {
    const options = { ...accumulate() } as Record<string, unknown>;
    Object.defineProperty(options, 'cols', {
      get() {
        throw new Error('boom');
      },
    });
    expect(() => addon.standardizeAccumulate(options as never)).toThrow('boom');
  });

  it('nothing is written when a check fails', () => {
    const options = { ...write(), out: new Float32Array(9).fill(7), m: 2 };
    expect(() => addon.standardizeWrite(options)).toThrow(RangeError);
    expect(Array.from(options.out)).toEqual(new Array<number>(9).fill(7));
  });
});
