/**
 * `neurocorr extract --threads N`: a TensorFlow.js LayersModel and GraphModel
 * (a pool of backends, one per thread) and an ONNX model (the runtime's
 * threads) give the same bytes at 1, 2 and 3 threads, 3 over an uneven
 * number of batches; progress comes in probe order; a bad --threads is
 * exit 2 naming the flag; and peak RSS grows by one model and one batch per
 * thread, not with the probes.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, describe, expect, it } from 'vitest';
import { extract } from '../dist/index.js';
import { OptionRangeError, OptionTypeError } from '../dist/shared/errors.js';
import { encodeNpy } from '../dist/shared/formats/index.js';
import { rng } from './helpers/models.js';
import { convNet } from './helpers/onnx-models.js';
import { saveGraphModel, saveResidualModel } from './helpers/tfjs-models.js';

const ROOT = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'nc-extract-threads-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'neurocorr.js'), ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** M probes in batches of 3: four batches, the last of one probe. */
const M = 10;
const BATCH = 3;
const SIDE = 6;

function npy(name: string, seed: number, shape: number[]): string {
  const next = rng(seed);
  const file = join(dir, name);
  const n = shape.reduce((a, b) => a * b, 1);
  writeFileSync(
    file,
    encodeNpy(
      Float32Array.from({ length: n }, () => next() * 2 - 1),
      shape,
    ),
  );
  return file;
}

const models = {
  layers: join(dir, 'layers'),
  open: join(dir, 'open'),
  graph: join(dir, 'graph'),
  einsum: join(dir, 'einsum'),
  onnx: join(dir, 'cnn.onnx'),
};
saveGraphModel(models.graph, 7);
saveEinsumModel(models.einsum);
writeFileSync(models.onnx, convNet().bytes);
const ready = Promise.all([saveResidualModel(models.layers, 1, SIDE), saveResidualModel(models.open, 3, null)]);
const images = npy('images.npy', 11, [M, SIDE, SIDE, 3]);
const vectors = npy('vectors.npy', 12, [M, 4]);
const nchw = npy('nchw.npy', 13, [M, 3, 8, 8]);

/** A GraphModel x [-1, 4] -> Einsum ij,jk->ik with w [4, 3] -> Relu "y": the wasm backend has no Einsum kernel. */
function saveEinsumModel(at: string): void {
  const float = { type: 'DT_FLOAT' };
  const dims = (shape: number[]) => ({ dim: shape.map((size) => ({ size: String(size) })) });
  const json = {
    format: 'graph-model',
    modelTopology: {
      node: [
        { name: 'x', op: 'Placeholder', attr: { dtype: float, shape: { shape: dims([-1, 4]) } } },
        { name: 'w', op: 'Const', attr: { dtype: float, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: dims([4, 3]) } } } },
        { name: 'e', op: 'Einsum', input: ['x', 'w'], attr: { T: float, N: { i: '2' }, equation: { s: Buffer.from('ij,jk->ik').toString('base64') } } },
        { name: 'y', op: 'Relu', input: ['e'], attr: { T: float } },
      ],
      versions: { producer: 1 },
    },
    weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'w', shape: [4, 3], dtype: 'float32' }] }],
  };
  mkdirSync(at, { recursive: true });
  const next = rng(5);
  writeFileSync(join(at, 'w.bin'), new Uint8Array(Float32Array.from({ length: 12 }, () => next() * 2 - 1).buffer));
  writeFileSync(join(at, 'model.json'), JSON.stringify(json));
}

/** Every file extract wrote, by name. */
function files(out: string): Map<string, Buffer> {
  return new Map(readdirSync(out).map((f) => [f, readFileSync(join(out, f))]));
}

async function run(model: string, probes: string, threads: number, layers?: string[]) {
  const out = join(dir, `${model.split('/').pop()}-${threads}-${Math.random().toString(36).slice(2)}`);
  const seen: [number, number][] = [];
  const notes: string[] = [];
  const result = await extract({
    model,
    probes,
    out,
    batch: BATCH,
    threads,
    ...(layers !== undefined ? { layers } : {}),
    progress: (done, total) => seen.push([done, total]),
    log: (line) => notes.push(line),
  });
  return { out, result, seen, notes };
}

const cases: [string, () => string, () => string, string[] | undefined][] = [
  ['a tfjs LayersModel', () => models.layers, () => images, ['conv1', 'relu1', 'add', 'gap', 'fc']],
  ['a tfjs LayersModel with an open input size (each thread resolves it)', () => models.open, () => images, undefined],
  ['a tfjs GraphModel', () => models.graph, () => vectors, ['hidden/Relu', 'logits']],
  ['an ONNX model', () => models.onnx, () => nchw, ['r1', 'r2', 'g', 'y']],
];

describe('extract --threads: the same bytes whatever the threads', () => {
  for (const [what, model, probes, layers] of cases) {
    it(`${what}: 1, 2 and 3 threads write identical files, with progress in probe order`, async () => {
      await ready;
      const one = await run(model(), probes(), 1, layers);
      const want = files(one.out);
      expect(want.size).toBeGreaterThan(2);
      for (const threads of [2, 3]) {
        const got = await run(model(), probes(), threads, layers);
        expect({ ...got.result, threads: 0 }).toEqual({ ...one.result, threads: 0 });
        // The tfjs models ran on a pool of as many backends (never more than the 4 batches); ONNX Runtime on that many threads.
        expect([one.result.threads, got.result.threads]).toEqual([1, threads]);
        const written = files(got.out);
        expect([...written.keys()].sort()).toEqual([...want.keys()].sort());
        for (const [name, bytes] of want) expect(written.get(name)!.equals(bytes), `${name} at ${threads} threads`).toBe(true);
        expect(got.seen).toEqual([
          [3, M],
          [6, M],
          [9, M],
          [10, M],
        ]);
        expect(got.notes).toEqual(one.notes);
      }
    });
  }

  // In new processes: a fallback moves the whole process (and so later tests) to the cpu backend.
  const viaCli = (model: string, probes: string, threads: number) => {
    const out = join(dir, `cli-${model.split('/').pop()}-${threads}`);
    const r = cli(['extract', model, '--probes', probes, '--out', out, '--batch', String(BATCH), '--threads', String(threads), '--no-progress']);
    expect(r.status, r.stderr).toBe(0);
    return { files: files(out), stderr: r.stderr };
  };

  it('the CLI takes --threads: the same files at 1 and 2 threads', async () => {
    await ready;
    const want = viaCli(models.layers, images, 1).files;
    const got = viaCli(models.layers, images, 2).files;
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, bytes] of want) expect(got.get(name)!.equals(bytes), name).toBe(true);
  });

  it('a model with an op the wasm backend lacks runs on the cpu backend in every thread, said once, the same at 1, 2 and 3 threads', () => {
    const one = viaCli(models.einsum, vectors, 1);
    const fallback = "extract: Kernel 'Einsum' not registered for backend 'wasm'; running on the tfjs cpu backend";
    expect(one.stderr).toContain(fallback);
    for (const threads of [2, 3]) {
      const got = viaCli(models.einsum, vectors, threads);
      expect(got.stderr.split(fallback).length - 1).toBe(1);
      for (const [name, bytes] of one.files) expect(got.files.get(name)!.equals(bytes), `${name} at ${threads} threads`).toBe(true);
    }
  });
});

describe('extract --threads: refusals', () => {
  it('a NaN a pool thread computes is refused as in the main thread, naming the layer and the probe', async () => {
    await ready;
    // Probe 1 is in the first batch, which goes to a pool thread.
    const bad = join(dir, 'nan.npy');
    const values = new Float32Array(M * SIDE * SIDE * 3).fill(0.5);
    values[SIDE * SIDE * 3 + 5] = Number.NaN;
    writeFileSync(bad, encodeNpy(values, [M, SIDE, SIDE, 3]));
    const errors = [1, 2].map((threads) => {
      const r = cli(['extract', models.layers, '--probes', bad, '--out', join(dir, `nan-${threads}`), '--batch', String(BATCH), '--threads', String(threads)]);
      expect(r.status, r.stderr).toBe(2);
      return r.stderr;
    });
    expect(errors[0]).toMatch(/layer "relu2" gives NaN on probe nan\.npy\[1\]/);
    expect(errors[1]).toBe(errors[0]);
  });

  it('a bad --threads is exit 2 naming the flag', async () => {
    await ready;
    for (const bad of ['0', '-1', 'two', '1.5', '1025']) {
      const r = cli(['extract', models.layers, '--probes', images, '--out', join(dir, 'never'), '--threads', bad]);
      expect(r.status, bad).toBe(2);
      expect(r.stderr, bad).toMatch(/--threads/);
    }
  });

  it('the library refuses a bad threads with OptionRangeError or OptionTypeError naming options.threads', async () => {
    const base = { model: models.layers, probes: images, out: join(dir, 'never') };
    await expect(extract({ ...base, threads: 0 })).rejects.toThrow(OptionRangeError);
    await expect(extract({ ...base, threads: 0 })).rejects.toThrow(/options\.threads/);
    await expect(extract({ ...base, threads: 2.5 })).rejects.toThrow(OptionTypeError);
    await expect(extract({ ...base, threads: '2' as unknown as number })).rejects.toThrow(OptionTypeError);
  });
});

describe('extract --threads: memory', () => {
  // The rule docs/CLI.md states: peak RSS <= fixed + threads x (THREAD + model + batch x per-probe bytes), where a
  // probe's bytes are its input, every layer's activation (the backend's heap holds a forward pass) and the selected
  // layers twice (read back from the backend, then sent to the main thread).
  const THREAD = 40 * 2 ** 20;

  it('peak RSS grows by one model and one batch per thread, and not with the probes', async () => {
    const side = 48;
    const big = join(dir, 'big');
    await saveResidualModel(big, 9, side);
    const probes = (m: number) => npy(`big-${m}.npy`, 21, [m, side, side, 3]);
    const inputs = { 512: probes(512), 2048: probes(2048) };
    const batch = 32;
    let runs = 0;
    const rss = (m: 512 | 2048, threads: number) => {
      const args = ['extract', big, '--probes', inputs[m], '--out', join(dir, `rss-${runs++}`), '--layers', 'conv1,relu1,conv2,add'];
      const all = [...args, '--batch', String(batch), '--threads', String(threads)];
      const script = `const { main } = await import(${JSON.stringify(join(ROOT, 'dist', 'cli', 'main.js'))}); const code = await main(${JSON.stringify(all)}, { stdout: () => {}, stderr: (s) => process.stderr.write(s) }); process.stdout.write(JSON.stringify({ code, rss: process.resourceUsage().maxRSS * 1024 }));`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      const { code, rss } = JSON.parse(r.stdout) as { code: number; rss: number };
      expect(code, r.stderr).toBe(0);
      return rss;
    };
    const median = (m: 512 | 2048, threads: number) => [0, 1, 2].map(() => rss(m, threads)).sort((a, b) => a - b)[1]!;
    const t2 = median(512, 2);
    const t4 = median(512, 4);
    const t2long = median(2048, 2);
    const plane = side * side * 4 * 4;
    const selected = 4 * plane;
    const perProbe = side * side * 3 * 4 + 5 * plane + 2 * selected;
    const model = statSync(join(big, 'weights.bin')).size;
    const perThread = (t4 - t2) / 2;
    expect(perThread).toBeGreaterThan(model + batch * selected);
    expect(perThread).toBeLessThan(THREAD + model + batch * perProbe);
    // Holding the activations of the 1536 more probes would add 216 MiB.
    expect(Math.abs(t2long - t2)).toBeLessThan(((2048 - 512) * selected) / 8);
  }, 180_000);
});
