/**
 * The ONNX runner of `neurocorr extract`: layers, shapes, blocks and values of
 * tiny models against a float64 reference; its errors. And the PyTorch
 * recipe's output format, which neurocorr must read.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import { openOnnxRunner } from '../dist/extract/onnx-runner.js';
import { loadOnnxRuntime } from '../dist/extract/onnx-runtime.js';
import type { ModelRunner } from '../dist/extract/runner.js';
import { InputError, InternalError } from '../dist/shared/errors.js';
import { encodeNpy, encodeSafetensors, parseNpy } from '../dist/shared/formats/index.js';
import { genModel, latents, rng } from './helpers/models.js';
import { convNet, encodeModel, mlp, type TinyModel, valueInfo } from './helpers/onnx-models.js';

const { onnx } = onnxProto;
const root = mkdtempSync(join(tmpdir(), 'nc-onnx-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let files = 0;
function write(contents: Uint8Array | string, name = `m${files++}.onnx`): string {
  const file = join(root, name);
  writeFileSync(file, contents);
  return file;
}

function probes(seed: number, n: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

async function withRunner<T>(model: TinyModel, use: (runner: ModelRunner) => Promise<T>): Promise<T> {
  const runner = await openOnnxRunner(write(model.bytes));
  try {
    return await use(runner);
  } finally {
    await runner.dispose();
  }
}

/** Every value of `got` within float32 rounding of the reference (the values are about 1 in size). */
function expectClose(got: Float32Array, want: Float64Array, what: string): void {
  expect(got.length, what).toBe(want.length);
  const worst = want.reduce((w, v, i) => Math.max(w, Math.abs(got[i]! - v) / (1 + Math.abs(v))), 0);
  expect(worst, what).toBeLessThan(1e-6);
}

const summary = (runner: ModelRunner) => runner.layers.map((l) => [l.name, l.kind, l.shape, l.layout, l.block]);

describe('ONNX runner: an MLP', () => {
  it('lists the float node outputs that depend on the input, in order, and runs them', async () => {
    const model = mlp();
    await withRunner(model, async (runner) => {
      expect(runner.format).toBe('onnx');
      expect(runner.input).toEqual({ name: 'x', shape: [4], layout: null });
      // The Constant node's bias does not vary over probes, and the bias Add is no residual join.
      expect(summary(runner)).toEqual([
        ['h_mm', 'Gemm', [6], null, false],
        ['h_pre', 'Add', [6], null, false],
        ['h', 'Relu', [6], null, false],
        ['y', 'Gemm', [3], null, true],
      ]);
      const m = 7;
      const x = probes(1, m * 4);
      const want = model.reference(x, m);
      const names = ['y', 'h_mm', 'h', 'h_pre'];
      const got = await runner.run(x, m, names);
      names.forEach((name, k) => expectClose(got[k]!, want.get(name)!, name));
      // Another set of layers (a session of its own), a repeated name, and the first set again.
      const [h, again] = await runner.run(x, m, ['h', 'h']);
      expectClose(h!, want.get('h')!, 'h alone');
      expect(again).toEqual(h);
      expectClose((await runner.run(x.subarray(0, 8), 2, ['y']))[0]!, model.reference(x.subarray(0, 8), 2).get('y')!, 'y for 2 probes');
    });
  });

  it('runs a model exported with a fixed batch size that many probes at a time', async () => {
    const model = mlp(2);
    await withRunner(model, async (runner) => {
      expect(runner.layers.map((l) => l.shape)).toEqual([[6], [6], [6], [3]]);
      const m = 5;
      const x = probes(2, m * 4);
      const [y, h] = await runner.run(x, m, ['y', 'h']);
      const want = model.reference(x, m);
      expectClose(y!, want.get('y')!, 'y');
      expectClose(h!, want.get('h')!, 'h');
    });
  });
});

describe('ONNX runner: a residual conv net', () => {
  const expected = [
    ['c1', 'Conv', [4, 8, 8], 'nchw', false],
    ['r1', 'Relu', [4, 8, 8], 'nchw', false],
    ['c2', 'Conv', [4, 8, 8], 'nchw', false],
    ['s', 'Add', [4, 8, 8], 'nchw', false],
    ['r2', 'Relu', [4, 8, 8], 'nchw', true],
    ['g', 'GlobalAveragePool', [4, 1, 1], 'nchw', true],
    ['f', 'Flatten', [4], null, false],
    ['y', 'Gemm', [5], null, true],
  ];

  for (const shuffled of [false, true]) {
    it(`layers, shapes, blocks and every value${shuffled ? ', nodes stored out of order' : ''}`, async () => {
      const model = convNet(shuffled);
      await withRunner(model, async (runner) => {
        expect(runner.input).toEqual({ name: 'x', shape: [3, 8, 8], layout: 'nchw' });
        expect(summary(runner)).toEqual(expected);
        const m = 6;
        const x = probes(3, m * 3 * 64);
        const want = model.reference(x, m);
        const names = runner.layers.map((l) => l.name);
        const got = await runner.run(x, m, names);
        names.forEach((name, k) => expectClose(got[k]!, want.get(name)!, name));
        // Alone, the block output lets the runtime fuse what comes before it.
        expectClose((await runner.run(x, m, ['r2']))[0]!, want.get('r2')!, 'r2 alone');
      });
    });
  }
});

describe('ONNX runner: an NHWC input of open size', () => {
  // x [N, H, W, 3] -> Transpose t [3, H, W] -> GlobalAveragePool g [3, 1, 1]
  const bytes = encodeModel(
    onnx.GraphProto.create({
      node: [
        onnx.NodeProto.create({
          opType: 'Transpose',
          input: ['x'],
          output: ['t'],
          attribute: [onnx.AttributeProto.create({ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: [0, 3, 1, 2] })],
        }),
        onnx.NodeProto.create({ opType: 'GlobalAveragePool', input: ['t'], output: ['g'] }),
      ],
      input: [valueInfo('x', ['N', 'H', 'W', 3])],
      output: [valueInfo('g', ['N', 3, 1, 1])],
    }),
  );

  it('says NHWC, solves a square probe for its height and width, and learns the open shapes from the run', async () => {
    const file = write(bytes);
    const runner = await openOnnxRunner(file);
    try {
      expect(runner.input).toEqual({ name: 'x', shape: [null, null, 3], layout: 'nhwc' });
      expect(summary(runner)).toEqual([
        ['t', 'Transpose', [3, null, null], 'nchw', false],
        ['g', 'GlobalAveragePool', [3, 1, 1], 'nchw', true],
      ]);
      const m = 2;
      const x = probes(5, m * 5 * 5 * 3);
      const [t, g] = await runner.run(x, m, ['t', 'g']);
      const mean = (p: number, c: number) => x.subarray(p * 75, (p + 1) * 75).reduce((sum, v, i) => (i % 3 === c ? sum + v : sum), 0) / 25;
      expectClose(
        g!,
        Float64Array.from({ length: 6 }, (_, i) => mean(Math.floor(i / 3), i % 3)),
        'g',
      );
      expect(t![1 * 75 + 2 * 25 + 4 * 5 + 1]).toBe(x[1 * 75 + (4 * 5 + 1) * 3 + 2]);
      expect(runner.layers[0]!.shape).toEqual([3, 5, 5]);
      const err: unknown = await runner.run(probes(6, 30), 1, ['g']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as Error).message).toMatch(/input "x" has shape \[\?, \?, 3\] per probe; a probe of 30 values does not tell its open dims/);
    } finally {
      await runner.dispose();
    }
  });
});

describe('ONNX runner: errors', () => {
  const expectInputError = async (file: string, pattern: RegExp) => {
    const err: unknown = await openOnnxRunner(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).file).toBe(file);
    expect((err as Error).message).toMatch(pattern);
  };

  it('a missing file, a garbage file, a text file and an empty protobuf name the file', async () => {
    await expectInputError(join(root, 'absent.onnx'), /no such file/);
    await expectInputError(write(new Uint8Array(probes(9, 64).buffer)), /is not an ONNX model/);
    await expectInputError(write('{"not": "a model"}\n'), /is not an ONNX model/);
    await expectInputError(write(new Uint8Array(0)), /is not an ONNX model/);
    await expectInputError(root, /not a regular file/);
  });

  it('an input that is not float32, or more than one input, names the file', async () => {
    const graph = (input: ReturnType<typeof valueInfo>[]) =>
      encodeModel(
        onnx.GraphProto.create({
          node: [onnx.NodeProto.create({ opType: 'Identity', input: [input[0]!.name!], output: ['y'] })],
          input,
          output: [valueInfo('y', ['N', 4])],
        }),
      );
    await expectInputError(write(graph([valueInfo('x', ['N', 4], onnx.TensorProto.DataType.INT64)])), /input "x" is int64; extract feeds float32/);
    await expectInputError(write(graph([valueInfo('x', ['N', 4]), valueInfo('z', ['N', 4])])), /takes 2 inputs \(x, z\)/);
  });

  it('an unknown layer names the file and the layer', async () => {
    const file = write(mlp().bytes);
    const runner = await openOnnxRunner(file);
    try {
      const err: unknown = await runner.run(probes(4, 8), 2, ['h', 'b1']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).file).toBe(file);
      expect((err as Error).message).toMatch(/has no layer "b1".*h_mm, h_pre, h, y/);
    } finally {
      await runner.dispose();
    }
  });

  it('a missing onnxruntime-node says it is optional and how to install it', () => {
    expect(() => loadOnnxRuntime('model.onnx', 'onnxruntime-node-not-there')).toThrow(InternalError);
    expect(() => loadOnnxRuntime('model.onnx', 'onnxruntime-node-not-there')).toThrow(
      /model\.onnx: reading ONNX models needs onnxruntime-node, an optional dependency of neurocorr, which is not installed\. Fix: .*ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@1\.22\.0/,
    );
  });
});

describe('PyTorch recipe (examples/pytorch/extract_activations.py)', () => {
  const ROOT = join(import.meta.dirname, '..');
  const script = join(ROOT, 'examples', 'pytorch', 'extract_activations.py');
  const python = (args: string[], env: Record<string, string> = {}) => {
    const r = spawnSync('python3', args, { encoding: 'utf8', env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', ...env } });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout;
  };

  it('compiles', () => {
    python(['-m', 'py_compile', script], { PYTHONPYCACHEPREFIX: mkdtempSync(join(root, 'pyc-')) });
  });

  it('writes what neurocorr score reads: layer names, depths, layouts and the probe fingerprint', () => {
    const m = 12;
    const names = ['layer1.0', 'layer2.0', 'avgpool', 'fc'];
    const shapes = [[2, 3, 3], [3, 2, 2], [3, 1, 1], [5]];
    const depths = [7, 14, 30, 31];
    // The preprocessed probes, [M, 3, H, W] float32, as the script hashes them.
    const probesFile = write(new Uint8Array(probes(7, m * 3 * 4 * 4).buffer), 'probes.f32');
    const helpers = `
import hashlib, json, sys
sys.path.insert(0, sys.argv[1])
import extract_activations as e
pre = e.preprocessing_string(256, 224)
fp = e.probe_fingerprint(hashlib.sha256(open(sys.argv[2], "rb").read()), pre)
print(json.dumps(e.safetensors_metadata(${JSON.stringify(names)}, ${JSON.stringify(depths)}, ${JSON.stringify(shapes.map((s) => s.length + 1))}, fp, pre)))
`;
    const metadata = JSON.parse(python(['-c', helpers, join(ROOT, 'examples', 'pytorch'), probesFile])) as Record<string, string>;

    // The layout as the script documents it.
    const preprocessing = metadata['preprocessing']!;
    expect(preprocessing).toMatch(/^torchvision: RGB, Resize\(256, .*CenterCrop\(224\)/);
    const digest = createHash('sha256')
      .update(new Uint8Array(probes(7, m * 3 * 4 * 4).buffer))
      .update(preprocessing, 'utf8')
      .digest('hex');
    expect(metadata['probe_fingerprint']).toBe(`sha256:${digest}`);
    expect(Object.keys(metadata).sort()).toEqual(['depths', 'layers', 'layouts', 'preprocessing', 'probe_fingerprint']);
    expect(JSON.parse(metadata['layers']!)).toEqual(names);
    expect(JSON.parse(metadata['depths']!)).toEqual(depths);
    expect(JSON.parse(metadata['layouts']!)).toEqual(['nchw', 'nchw', 'nchw', null]);

    const latent = latents(8, m, 2);
    const set = (seed: number, fingerprint: string) => {
      const model = genModel(seed, { m, layers: shapes, latent });
      const tensors = names.map((name, k) => ({ name, shape: [m, ...shapes[k]!], data: Float32Array.from(model.layers[k]!.data) }));
      // The library writes tensors in its own order (by dtype, then name); the metadata orders the layers.
      tensors.reverse();
      return write(encodeSafetensors(tensors, { ...metadata, probe_fingerprint: fingerprint }), `torch${seed}.safetensors`);
    };
    const f = set(31, metadata['probe_fingerprint']!);
    const g = set(32, metadata['probe_fingerprint']!);
    const neurocorr = (args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin', 'neurocorr.js'), ...args], { encoding: 'utf8' });
    const r = neurocorr(['score', f, g, '--json', '--null', '0']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as { layers: { model: string; name: string; depth: number; shape: number[]; layout: string | null }[] };
    expect(report.layers.filter((l) => l.model === 'F').map((l) => [l.name, l.depth, l.shape, l.layout])).toEqual(
      names.map((name, k) => [name, depths[k], shapes[k], k < 3 ? 'nchw' : null]),
    );
    // The fingerprint comes through: a set of other probes is refused.
    const other = set(33, 'sha256:0000');
    const refused = neurocorr(['score', f, other, '--json', '--null', '0']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain(`probe fingerprint sha256:0000 differs from ${f}'s ${metadata['probe_fingerprint']}`);
  });
});

describe('neurocorr extract on an ONNX model', () => {
  const BIN = join(import.meta.dirname, '..', 'bin', 'neurocorr.js');
  const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

  it('writes every asked layer as the float64 reference computes it, with layouts and depths, and the set scores', () => {
    const model = convNet();
    const file = write(model.bytes, 'cnn.onnx');
    const m = 12;
    const x = probes(41, m * 3 * 8 * 8);
    const npy = join(root, 'cnn-probes.npy');
    writeFileSync(npy, encodeNpy(x, [m, 3, 8, 8]));
    const out = join(root, 'cnn-acts');
    const r = run(['extract', file, '--probes', npy, '--out', out, '--layers', 'r1,r2,g,y', '--batch', '5']);
    expect(r.status, r.stderr).toBe(0);
    const want = model.reference(x, m);
    const map = JSON.parse(readFileSync(join(out, 'layers.json'), 'utf8')) as {
      probes: string;
      layers: { file: string; name: string; depth: number; layout?: string }[];
    };
    expect(map.layers.map((l) => [l.name, l.depth, l.layout ?? null])).toEqual([
      ['r1', 0, 'nchw'],
      ['r2', 1, 'nchw'],
      ['g', 2, 'nchw'],
      ['y', 3, null],
    ]);
    for (const layer of map.layers) {
      const got = parseNpy(readFileSync(join(out, layer.file)), layer.file);
      expect(got.shape[0]).toBe(m);
      expectClose(Float32Array.from(got.data), want.get(layer.name)!, layer.name);
    }
    const self = run(['score', out, out, '--json', '--null', '0', '--no-progress']);
    expect(self.status, self.stderr).toBe(0);
    expect((JSON.parse(self.stdout) as { neurons: number[] }).neurons[0]).toBe(4 * 64 + 4 * 64 + 4 + 5);
  });
});
