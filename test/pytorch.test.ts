/**
 * PyTorch for real: Debian's torch and torchvision (provisioned by the test
 * set-up) run examples/pytorch/extract_activations.py on torchvision models
 * with seeded random weights, a ResNet-18 and a SqueezeNet 1.1 (no residual
 * connections: its blocks end in a Concat). The same models, exported by the
 * recipe with torch.onnx.export, run through `neurocorr extract`: every layer
 * must equal PyTorch's hooks within 1e-4 of its largest value, and the
 * scores of the pair must agree within 1e-6.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadActivationSet } from '../dist/shared/formats/index.js';
import type { RawModel } from '../dist/shared/formats/index.js';
import { rng } from './helpers/models.js';
import { locateTool } from './setup/tools.js';

const ROOT = join(import.meta.dirname, '..');
const SCRIPT = join(ROOT, 'examples', 'pytorch', 'extract_activations.py');
const root = mkdtempSync(join(tmpdir(), 'nc-pytorch-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const M = 16;
const SIDE = 64;
const RESNET_BLOCKS = ['layer1.0', 'layer1.1', 'layer2.0', 'layer2.1', 'layer3.0', 'layer3.1', 'layer4.0', 'layer4.1', 'avgpool', 'fc'];
const FIRES = ['features.3', 'features.4', 'features.6', 'features.7', 'features.9', 'features.10', 'features.11', 'features.12'];

interface Case {
  readonly model: string;
  readonly seed: number;
  /** The recipe's modules (--layers). */
  readonly layers: readonly string[];
  /** neurocorr extract's selection of the same values (undefined: its default, the block outputs). */
  readonly onnxLayers?: string;
  /** A fragment of each ONNX value name, in order: the module the exporter named it after (the logits have a number). */
  readonly onnxNames: readonly (string | null)[];
}

const CASES: readonly Case[] = [
  { model: 'resnet18', seed: 0, layers: RESNET_BLOCKS, onnxNames: [...RESNET_BLOCKS.slice(0, -1).map((n) => `/${n}/`), null] },
  // Its Fire modules end in a Concat; classifier.3 is the global pool (the logits are its flattened copy, left out).
  {
    model: 'squeezenet1_1',
    seed: 1,
    layers: [...FIRES, 'classifier.3'],
    onnxLayers: '/Concat|GlobalAveragePool/',
    onnxNames: [...FIRES, 'classifier.3'].map((n) => `/${n}/`),
  },
];

function run(command: string, args: readonly string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8', cwd: ROOT, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' }, timeout: 300_000 });
  expect(r.status, `${command} ${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(0);
  return `${r.stdout}${r.stderr}`;
}
const neurocorr = (args: readonly string[]) => run(process.execPath, [join(ROOT, 'bin', 'neurocorr.js'), ...args]);

const probes = join(root, 'probes');
const torchSet = (c: Case) => join(root, `${c.model}.safetensors`);
const onnxFile = (c: Case) => join(root, `${c.model}.onnx`);
const onnxSet = (c: Case) => join(root, `${c.model}-onnx`);
let python = '';
let recipeLog = new Map<string, string>();

beforeAll(async () => {
  python = locateTool('python3');
  // Seeded noise images of exactly the crop size: Resize and CenterCrop leave them as they are in both tools.
  mkdirSync(probes);
  const next = rng(7);
  for (let i = 0; i < M; i++) {
    const pixels = Uint8Array.from({ length: SIDE * SIDE * 3 }, () => Math.floor(next() * 256));
    await sharp(pixels, { raw: { width: SIDE, height: SIDE, channels: 3 } })
      .png()
      .toFile(join(probes, `p${String(i).padStart(2, '0')}.png`));
  }
  recipeLog = new Map(
    CASES.map((c) => {
      const args = [SCRIPT, probes, torchSet(c), '--model', c.model, '--weights', 'none', '--seed', String(c.seed)];
      const out = run(python, [
        ...args,
        '--resize',
        `${SIDE}`,
        '--crop',
        `${SIDE}`,
        '--layers',
        c.layers.join(','),
        '--threads',
        '2',
        '--export-onnx',
        onnxFile(c),
      ]);
      const select = c.onnxLayers !== undefined ? ['--layers', c.onnxLayers] : [];
      neurocorr(['extract', onnxFile(c), '--probes', probes, '--preprocess', 'torch', '--out', onnxSet(c), ...select, '--no-progress']);
      return [c.model, out];
    }),
  );
}, 600_000);

/** Every value of a layer, as float64, probe-major. */
function values(model: RawModel, index: number): Float64Array {
  const layer = model.layers[index]!;
  return Float64Array.from(layer.read(0, layer.shape[0]!));
}

describe('PyTorch (Debian torch 1.13, torchvision 0.14) against neurocorr extract on the ONNX export', () => {
  it('provisioned: the python3 found imports torch, torchvision, onnx and PIL', () => {
    const out = run(python, ['-c', 'import torch, torchvision, onnx, PIL; print(torch.__version__, torchvision.__version__, onnx.__version__)']);
    expect(out).toMatch(/^1\.1[3-9]\.|^[2-9]\./);
  });

  for (const c of CASES) {
    it(`${c.model}: the recipe writes its modules in forward order, depths 0, 1, 2, ..., and the ONNX file`, () => {
      expect(recipeLog.get(c.model)).toContain(`${torchSet(c)}: ${M} probes, layers ${c.layers.join(', ')}`);
      const set = loadActivationSet(torchSet(c));
      expect(set.layers.map((l) => l.name)).toEqual(c.layers);
      expect(set.layers.map((l) => l.depth)).toEqual(c.layers.map((_, i) => i));
      expect(set.layers.every((l) => l.shape[0] === M && l.dtype === 'f4')).toBe(true);
      expect(set.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(readFileSync(onnxFile(c)).subarray(0, 2).length).toBe(2);
    });

    it(`${c.model}: every layer extracted from the ONNX export equals PyTorch's within 1e-4 of its largest value`, () => {
      const torch = loadActivationSet(torchSet(c));
      const onnx = loadActivationSet(onnxSet(c));
      expect(onnx.layers).toHaveLength(torch.layers.length);
      onnx.layers.forEach((layer, i) => {
        const fragment = c.onnxNames[i];
        if (fragment !== null && fragment !== undefined) expect(layer.name).toContain(fragment);
        expect(layer.shape).toEqual(torch.layers[i]!.shape);
        const a = values(torch, i);
        const b = values(onnx, i);
        const largest = a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        expect(largest, `${c.layers[i]} is all zeros`).toBeGreaterThan(0);
        const worst = a.reduce((m, v, k) => Math.max(m, Math.abs(v - b[k]!)), 0);
        expect(worst / largest, `${c.layers[i]}: ${worst} against a largest value of ${largest}`).toBeLessThanOrEqual(1e-4);
      });
    });
  }

  type Scores = Record<'paper' | 'penalized', Record<'forward' | 'backward' | 'symmetric', number>>;
  const scores = (f: string, g: string, extra: readonly string[]): Scores => {
    const out = join(root, `score-${Math.random().toString(36).slice(2)}.json`);
    neurocorr(['score', f, g, ...extra, '--out', out, '--no-progress']);
    return (JSON.parse(readFileSync(out, 'utf8')) as { scores: Scores }).scores;
  };
  const [resnet, squeeze] = CASES as [Case, Case];

  /** The --matches CSV: per model (F, G), per neuron, its partner, |rho| and S. */
  const matches = (file: string) => {
    const rows = readFileSync(file, 'utf8').trim().split('\n').slice(1);
    const by: Record<string, { partner: number; rho: number; s: number }[]> = { F: [], G: [] };
    for (const row of rows) {
      const [model, , , partner, , rho, score] = row.split(',');
      by[model!]!.push({ partner: Number(partner), rho: Number(rho), s: Number(score) });
    }
    return by;
  };

  it('ResNet-18 against SqueezeNet 1.1, every neuron: the penalized scores agree within 1e-6; the paper scores too, once the near ties that rounding breaks the other way are counted', () => {
    const files = [join(root, 'torch-matches.csv'), join(root, 'onnx-matches.csv')] as const;
    const torch = scores(torchSet(resnet), torchSet(squeeze), ['--matches', files[0]]);
    const onnx = scores(onnxSet(resnet), onnxSet(squeeze), ['--matches', files[1]]);
    for (const direction of ['forward', 'backward', 'symmetric'] as const) {
      expect(Math.abs(torch.penalized[direction] - onnx.penalized[direction]), `penalized ${direction}`).toBeLessThanOrEqual(1e-6);
    }
    // The paper mode divides |rho| by the depth gap of the argmax: where two partners' |rho| tie
    // within rounding, float noise may pick the other one, and S jumps (docs/PYTORCH.md). With 16
    // probes a ReLU unit active on one probe ties with every unit active on that probe alone.
    const [a, b] = files.map(matches) as [ReturnType<typeof matches>, ReturnType<typeof matches>];
    const diff: Record<string, number> = {};
    for (const [model, direction] of [
      ['F', 'forward'],
      ['G', 'backward'],
    ] as const) {
      const rowsA = a[model]!;
      const rowsB = b[model]!;
      expect(rowsB).toHaveLength(rowsA.length);
      let flipped = 0;
      let flips = 0;
      rowsA.forEach((r, i) => {
        const o = rowsB[i]!;
        if (r.partner === o.partner) return;
        flipped++;
        expect(Math.abs(r.rho - o.rho), `${model} neuron ${i}: partners ${r.partner} and ${o.partner} are not a near tie`).toBeLessThanOrEqual(1e-5);
        flips += r.s - o.s;
      });
      expect(flipped, `${model}: ${flipped} of ${rowsA.length} neurons changed partner`).toBeLessThanOrEqual(rowsA.length * 0.01);
      diff[direction] = flips / rowsA.length;
      expect(Math.abs(torch.paper[direction] - onnx.paper[direction] - diff[direction]!), `paper ${direction}`).toBeLessThanOrEqual(1e-6);
    }
    expect(torch.paper.symmetric).toBeGreaterThan(0);
  });

  it('the same pair with --conv channels pooled to one size: the penalized scores agree within 1e-6', () => {
    // The paper mode divides by the depth gap of the argmax, so a near tie that float rounding
    // breaks the other way can move it (docs/PYTORCH.md); the penalized maximum is continuous.
    const args = ['--conv', 'channels', '--spatial', 'min'];
    const torch = scores(torchSet(resnet), torchSet(squeeze), args);
    const onnx = scores(onnxSet(resnet), onnxSet(squeeze), args);
    for (const direction of ['forward', 'backward', 'symmetric'] as const) {
      expect(Math.abs(torch.penalized[direction] - onnx.penalized[direction]), direction).toBeLessThanOrEqual(1e-6);
    }
  });

  it('the recipe refuses a module that never runs, naming it, and writes nothing', () => {
    const out = join(root, 'never.safetensors');
    const r = spawnSync(
      python,
      [SCRIPT, probes, out, '--model', 'resnet18', '--weights', 'none', '--layers', 'layer1.0,nonesuch', '--resize', '64', '--crop', '64'],
      {
        encoding: 'utf8',
        cwd: ROOT,
      },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('resnet18 has no module nonesuch');
    expect(() => readFileSync(out)).toThrow();
  });
});
