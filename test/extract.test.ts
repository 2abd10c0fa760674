/**
 * `neurocorr extract` on tiny TensorFlow.js models built here (a residual
 * LayersModel and a hand-written GraphModel, seeded weights): activations
 * against float64 forward passes written in the test, probes as .npy, PNG
 * images and IDX, scoring what it writes, refusals, streaming memory, and
 * the shard-set output.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import '@tensorflow/tfjs-backend-cpu';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { extract, listLayers } from '../dist/index.js';
import { encodeNpy, parseNpy } from '../dist/shared/formats/index.js';
import { rng } from './helpers/models.js';
import { graphForward, residualForward, saveGraphModel, saveResidualModel, type ResidualWeights } from './helpers/tfjs-models.js';

const ROOT = join(import.meta.dirname, '..');
const scratch = (): string => mkdtempSync(join(tmpdir(), 'nc-extract-'));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'neurocorr.js'), ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const M = 10;
const SIDE = 6;
const dir = scratch();
const models = { a: join(dir, 'a'), b: join(dir, 'b'), open: join(dir, 'open'), graph: join(dir, 'graph') };
let weights: { a: ResidualWeights; b: ResidualWeights; open: ResidualWeights };
const graphWeights = saveGraphModel(models.graph, 7);

// Probe values, [M, SIDE, SIDE, 3], rounded to float32.
const next = rng(11);
const inputs = Float64Array.from({ length: M * SIDE * SIDE * 3 }, () => Math.fround(next() * 2 - 1));
const pixels = Uint8Array.from({ length: M * SIDE * SIDE * 3 }, () => Math.floor(next() * 256));
const npyProbes = join(dir, 'probes.npy');
writeFileSync(npyProbes, encodeNpy(Float32Array.from(inputs), [M, SIDE, SIDE, 3]));
const otherProbes = join(dir, 'other.npy');
writeFileSync(
  otherProbes,
  encodeNpy(
    Float32Array.from(inputs, (v) => -v),
    [M, SIDE, SIDE, 3],
  ),
);

const ready = (async () => {
  weights = {
    a: await saveResidualModel(models.a, 1, SIDE),
    b: await saveResidualModel(models.b, 2, SIDE),
    open: await saveResidualModel(models.open, 3, null),
  };
  mkdirSync(join(dir, 'images'));
  for (let p = 0; p < M; p++) {
    const image = pixels.subarray(p * SIDE * SIDE * 3, (p + 1) * SIDE * SIDE * 3);
    await sharp(Buffer.from(image), { raw: { width: SIDE, height: SIDE, channels: 3 } })
      .png()
      .toFile(join(dir, 'images', `img${String(p).padStart(2, '0')}.png`));
  }
})();

const read = (file: string) => parseNpy(readFileSync(file), file);
const layersJson = (out: string) =>
  JSON.parse(readFileSync(join(out, 'layers.json'), 'utf8')) as { probes: string; layers: { file: string; name: string; depth: number; layout?: string }[] };

/** Every layer written to `out` against the float64 forward pass of `w` on probe inputs `x` (rounded to float32). */
function expectLayers(out: string, w: ResidualWeights, x: (p: number) => Float64Array, names: string[]): void {
  const map = layersJson(out);
  expect(map.layers.map((l) => l.name)).toEqual(names);
  for (const layer of map.layers) {
    const { shape, data } = read(join(out, layer.file));
    expect(shape[0]).toBe(M);
    const per = data.length / M;
    let worst = 0;
    let scale = 1;
    for (let p = 0; p < M; p++) {
      const want = residualForward(w, x(p), SIDE, SIDE)[layer.name]!;
      expect(want.length).toBe(per);
      for (let j = 0; j < per; j++) {
        worst = Math.max(worst, Math.abs(data[p * per + j]! - want[j]!));
        scale = Math.max(scale, Math.abs(want[j]!));
      }
    }
    // float32 sums of a few dozen terms: errors of a few ulps of the layer's largest values.
    expect(worst / scale, layer.name).toBeLessThan(1e-5);
  }
}

const probe = (values: ArrayLike<number>, scale: (v: number) => number) => (p: number) =>
  Float64Array.from({ length: SIDE * SIDE * 3 }, (_, i) => Math.fround(scale(values[p * SIDE * SIDE * 3 + i]!)));

describe('extract: LayersModel', () => {
  it('lists the layers with kind, shape, neurons and block outputs', async () => {
    await ready;
    const r = cli(['extract', join(models.a, 'model.json'), '--list-layers']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/tfjs-layers, input pixels \[6, 6, 3\] nhwc/);
    expect(r.stdout).toMatch(/^conv1 +Conv2D +\[6, 6, 4\] nhwc +144$/m);
    expect(r.stdout).toMatch(/^relu2 +Activation +\[6, 6, 4\] nhwc +144 +block$/m);
    expect(r.stdout).toMatch(/^gap +GlobalAveragePooling2D +\[4\] +4 +block$/m);
    expect(r.stdout).toMatch(/^fc +Dense +\[5\] +5 +block$/m);
    expect(r.stdout).toMatch(/7 layers, 3 block outputs/);
    const listing = await listLayers({ model: models.a });
    expect(listing.layers.filter((l) => l.block).map((l) => l.name)).toEqual(['relu2', 'gap', 'fc']);
  });

  it('extracts chosen layers from .npy probes, equal to a float64 forward pass', async () => {
    await ready;
    const out = join(dir, 'npy-out');
    const result = await extract({ model: join(models.a, 'model.json'), probes: npyProbes, out, layers: ['conv1', 'relu2', 'fc'], batch: 3 });
    expect(result.probes).toBe(M);
    expect(result.layers.map((l) => l.neurons)).toEqual([144, 144, 5]);
    expectLayers(
      out,
      weights.a,
      probe(inputs, (v) => v),
      ['conv1', 'relu2', 'fc'],
    );
    const map = layersJson(out);
    expect(map.layers.map((l) => [l.depth, l.layout])).toEqual([
      [0, 'nhwc'],
      [1, 'nhwc'],
      [2, undefined],
    ]);
    const marker = JSON.parse(readFileSync(join(out, 'extract.json'), 'utf8'));
    expect(marker).toMatchObject({ format: 'neurocorr-extract', model: { format: 'tfjs-layers' }, probes: { kind: 'npy', count: M, fingerprint: map.probes } });
    expect(marker.model.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('extracts from PNG images (unit and caffe preprocessing) and IDX images; the fingerprint names the probes, not the preprocessing', async () => {
    await ready;
    const unit = join(dir, 'png-unit');
    await extract({ model: models.a, probes: join(dir, 'images'), out: unit, preprocess: 'unit', layers: ['conv1', 'relu2', 'fc'] });
    expectLayers(
      unit,
      weights.a,
      probe(pixels, (v) => v / 255),
      ['conv1', 'relu2', 'fc'],
    );
    const caffe = join(dir, 'png-caffe');
    await extract({ model: models.a, probes: join(dir, 'images'), out: caffe, preprocess: 'caffe', layers: ['conv1'] });
    const mean = [103.939, 116.779, 123.68];
    // caffe: BGR order, minus the ImageNet means.
    const bgr = (p: number) =>
      Float64Array.from({ length: SIDE * SIDE * 3 }, (_, i) => Math.fround(pixels[p * SIDE * SIDE * 3 + i - (i % 3) + 2 - (i % 3)]! - mean[i % 3]!));
    expectLayers(caffe, weights.a, bgr, ['conv1']);
    expect(layersJson(caffe).probes).toBe(layersJson(unit).probes);
    const marker = JSON.parse(readFileSync(join(unit, 'extract.json'), 'utf8'));
    expect(marker.probes.names).toEqual(Array.from({ length: M }, (_, p) => `img${String(p).padStart(2, '0')}.png`));
    expect(marker.settings).toMatchObject({ size: [SIDE, SIDE], preprocess: 'unit' });

    // IDX: grey images (MNIST's format, gzipped), replicated to the model's three channels.
    const grey = pixels.subarray(0, M * SIDE * SIDE);
    const header = Buffer.alloc(16);
    header.writeUInt32BE(0x803, 0);
    [M, SIDE, SIDE].forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
    const idx = join(dir, 'probes-idx3-ubyte.gz');
    writeFileSync(idx, gzipSync(Buffer.concat([header, grey])));
    const fromIdx = join(dir, 'idx-out');
    await extract({ model: models.a, probes: idx, out: fromIdx, preprocess: 'unit', layers: ['relu2'], probesLimit: M });
    const rgb = (p: number) => Float64Array.from({ length: SIDE * SIDE * 3 }, (_, i) => Math.fround(grey[p * SIDE * SIDE + Math.floor(i / 3)]! / 255));
    expectLayers(fromIdx, weights.a, rgb, ['relu2']);
  });

  it('feeds a model of open input size at the images’ own size, and refuses images of mixed size without --size', async () => {
    await ready;
    const out = join(dir, 'open-out');
    await extract({ model: models.open, probes: join(dir, 'images'), out, preprocess: 'unit' });
    expectLayers(
      out,
      weights.open,
      probe(pixels, (v) => v / 255),
      ['relu2', 'gap', 'fc'],
    );
    const mixed = join(dir, 'mixed');
    mkdirSync(mixed);
    for (const [name, side] of [
      ['a.png', 6],
      ['b.png', 7],
    ] as const) {
      await sharp({ create: { width: side, height: side, channels: 3, background: '#336699' } })
        .png()
        .toFile(join(mixed, name));
    }
    const refused = cli(['extract', models.open, '--probes', mixed, '--out', join(dir, 'mixed-out'), '--preprocess', 'unit']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain(join(mixed, 'b.png'));
    expect(refused.stderr).toMatch(/7x7 but .*6x6.*--size N/);
    expect(existsSync(join(dir, 'mixed-out'))).toBe(false);
    const sized = cli(['extract', models.open, '--probes', mixed, '--out', join(dir, 'mixed-out'), '--preprocess', 'unit', '--size', '5', '--layers', 'gap']);
    expect(sized.status, sized.stderr).toBe(0);
    expect(read(join(dir, 'mixed-out', '000_gap.npy')).shape).toEqual([2, 4]);
  });
});

describe('extract: GraphModel', () => {
  it('lists the nodes and extracts a named intermediate node', async () => {
    const list = cli(['extract', join(models.graph, 'model.json'), '--list-layers']);
    expect(list.status, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/tfjs-graph, input x \[4\]/);
    expect(list.stdout).toMatch(/^hidden\/Relu +Relu +\[3\] +3 +block$/m);
    expect(list.stdout).toMatch(/^logits +BiasAdd +\[2\] +2 +block$/m);
    const next = rng(5);
    const x = Float64Array.from({ length: M * 4 }, () => Math.fround(next() * 4 - 2));
    const probes = join(dir, 'mlp-probes.npy');
    writeFileSync(probes, encodeNpy(Float32Array.from(x), [M, 4]));
    const out = join(dir, 'graph-out');
    const r = cli(['extract', models.graph, '--probes', probes, '--out', out, '--layers', 'hidden/*,logits', '--batch', '4']);
    expect(r.status, r.stderr).toBe(0);
    const map = layersJson(out);
    expect(map.layers.map((l) => l.name)).toEqual(['hidden/MatMul', 'hidden/BiasAdd', 'hidden/Relu', 'logits']);
    const relu = read(join(out, map.layers[2]!.file));
    const logits = read(join(out, map.layers[3]!.file));
    for (let p = 0; p < M; p++) {
      const want = graphForward(graphWeights, x.subarray(p * 4, p * 4 + 4));
      for (let j = 0; j < 3; j++) expect(relu.data[p * 3 + j]).toBeCloseTo(want.hidden[j]!, 5);
      for (let j = 0; j < 2; j++) expect(logits.data[p * 2 + j]).toBeCloseTo(want.logits[j]!, 5);
    }
  });
});

describe('extract: scoring its output', () => {
  it('scores two extracted models; shards score bit for bit as the .npy; other probes are refused', async () => {
    await ready;
    const sets = join(dir, 'sets');
    mkdirSync(sets);
    const run = (name: string, ...more: string[]) => {
      const r = cli(['extract', ...more, '--out', join(sets, name), '--layers', 'conv1,relu2,fc']);
      expect(r.status, r.stderr).toBe(0);
      return join(sets, name);
    };
    const a = run('a', models.a, '--probes', npyProbes);
    const b = run('b', models.b, '--probes', npyProbes);
    const aShards = run('a-shards', models.a, '--probes', npyProbes, '--shards', '--memory', '16MiB');
    const bShards = run('b-shards', models.b, '--probes', npyProbes, '--shards');
    const c = run('c', models.b, '--probes', otherProbes);
    const score = (f: string, g: string) => cli(['score', f, g, '--json', '--no-progress']);
    const npy = score(a, b);
    expect(npy.status, npy.stderr).toBe(0);
    const shards = score(aShards, bShards);
    expect(shards.status, shards.stderr).toBe(0);
    const [fromNpy, fromShards] = [JSON.parse(npy.stdout), JSON.parse(shards.stdout)];
    expect(fromNpy.neurons).toEqual([293, 293]);
    expect(fromShards.scores).toEqual(fromNpy.scores);
    expect(fromShards.null.scores).toEqual(fromNpy.null.scores);
    expect(readdirSync(aShards).sort()).toEqual(expect.arrayContaining(['extract.json', 'manifest.json']));
    const refused = score(a, c);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/probe fingerprint sha256:\w+ differs/);
  });
});

describe('extract: refusals', () => {
  it('refuses a bad model, a missing weight file, a missing layer and an unreadable image with exit 2, naming the file, writing nothing', async () => {
    await ready;
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    const out = join(bad, 'out');
    const refuse = (args: string[], names: string, message: RegExp) => {
      const r = cli(['extract', ...args, '--out', out]);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toContain(names);
      expect(r.stderr).toMatch(message);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(bad).filter((n) => n.includes('.tmp-'))).toEqual([]);
    };
    writeFileSync(join(bad, 'model.json'), '{"format": "layers-model", "modelTopology": ');
    refuse([join(bad, 'model.json'), '--probes', npyProbes], join(bad, 'model.json'), /not JSON/);
    writeFileSync(join(bad, 'odd.json'), JSON.stringify({ format: 'saved-model', modelTopology: {} }));
    refuse([join(bad, 'odd.json'), '--probes', npyProbes], join(bad, 'odd.json'), /unknown model format "saved-model"/);
    const shardless = join(bad, 'shardless');
    mkdirSync(shardless);
    writeFileSync(join(shardless, 'model.json'), readFileSync(join(models.a, 'model.json')));
    refuse([shardless, '--probes', npyProbes], join(shardless, 'weights.bin'), /weight file .* is missing/);
    refuse([models.a, '--probes', npyProbes, '--layers', 'conv1,relu_2'], join(models.a, 'model.json'), /no layer named "relu_2"; close names: relu2/);
    const images = join(bad, 'images');
    mkdirSync(images);
    writeFileSync(join(images, 'a.png'), readFileSync(join(dir, 'images', 'img00.png')));
    writeFileSync(join(images, 'b.jpg'), 'not a jpeg');
    refuse([models.a, '--probes', images, '--preprocess', 'unit'], join(images, 'b.jpg'), /not a readable JPEG or PNG image/);
    refuse([models.a, '--probes', images], '--preprocess', /image probes need --preprocess/);
    refuse([models.a, '--probes', join(bad, 'nothing.npy')], join(bad, 'nothing.npy'), /no such file/);
    const flat = join(bad, 'flat.npy');
    writeFileSync(flat, encodeNpy(new Float32Array(M * 4), [M, 4]));
    refuse([models.a, '--probes', flat], flat, /one probe has shape \[4\] but .* takes \[6, 6, 3\]/);
    const huge = join(bad, 'huge.npy');
    writeFileSync(huge, encodeNpy(new Float32Array(M * SIDE * SIDE * 3).fill(3e38), [M, SIDE, SIDE, 3]));
    refuse([models.a, '--probes', huge, '--layers', 'conv1'], join(models.a, 'model.json'), /layer "conv1" gives -?Infinity on probe huge\.npy\[0\]/);
  });

  it('--force replaces only a set extract wrote', async () => {
    await ready;
    const out = join(dir, 'forced');
    const run = (...more: string[]) => cli(['extract', models.a, '--probes', npyProbes, '--out', out, '--layers', 'gap', ...more]);
    expect(run().status).toBe(0);
    expect(run().stderr).toMatch(/already exists/);
    expect(run('--force').status).toBe(0);
    writeFileSync(join(out, 'notes.txt'), 'mine');
    const r = run('--force');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/not a set written by neurocorr extract \(it holds notes\.txt/);
  });
});

describe('extract: streaming', () => {
  it('holds one batch of activations, whatever M', async () => {
    await ready;
    // 32x32x3 inputs: conv1 and relu1 give 2 x 16 KiB a probe, so 2048 probes write 56 MiB more than 256 do.
    const side = 32;
    const big = join(dir, 'big');
    await saveResidualModel(big, 4, side);
    const probes = (m: number) => {
      const file = join(dir, `probes-${m}.npy`);
      const r = rng(m);
      writeFileSync(
        file,
        encodeNpy(
          Float32Array.from({ length: m * side * side * 3 }, () => r()),
          [m, side, side, 3],
        ),
      );
      return file;
    };
    const rss = (m: number, k: number) => {
      const args = ['extract', big, '--probes', probes(m), '--out', join(dir, `stream-${m}-${k}`), '--layers', 'conv1,relu1', '--batch', '8'];
      const script = `const { main } = await import(${JSON.stringify(join(ROOT, 'dist', 'cli', 'main.js'))}); const code = await main(${JSON.stringify(args)}, { stdout: () => {}, stderr: () => {} }); process.stdout.write(JSON.stringify({ code, rss: process.resourceUsage().maxRSS * 1024 }));`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      const { code, rss } = JSON.parse(r.stdout) as { code: number; rss: number };
      expect(code).toBe(0);
      return rss;
    };
    const median = (m: number) => [0, 1, 2].map((k) => rss(m, k)).sort((a, b) => a - b)[1]!;
    const small = median(256);
    const large = median(2048);
    const grown = (2048 - 256) * 2 * side * side * 4 * 4;
    expect(read(join(dir, 'stream-2048-0', '000_conv1.npy')).shape).toEqual([2048, side, side, 4]);
    // Peak RSS may move by a few MiB between runs; holding the activations would add 56 MiB.
    expect(large - small).toBeLessThan(grown / 4);
  });
});

describe('the docs/INPUTS.md example (examples/tfjs)', () => {
  it('runs as written: the listing is the one shown, the sibling scores 0.98 and the unrelated model 0.66', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'INPUTS.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## From models: `neurocorr extract`'));
    const blocks = [...section.matchAll(/```(\w*)\n([\s\S]*?)```/g)];
    const commands = blocks[0]![2]!.trim().split('\n');
    const out = scratch();
    const outputs = commands.map((line) => {
      const args = line
        .replace(/^npx neurocorr /, '')
        .replaceAll('/tmp/', `${out}/`)
        .split(' ');
      const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'neurocorr.js'), ...args], { encoding: 'utf8', cwd: ROOT });
      expect(r.status, `${line}\n${r.stderr}`).toBe(0);
      return r.stdout;
    });
    expect(outputs[0]).toBe(blocks[1]![2]);
    const symmetric = (text: string) => Number(/score \(paper, symmetric\): ([\d.]+)/.exec(text)![1]).toFixed(2);
    expect(symmetric(outputs.at(-2)!)).toBe('0.98');
    expect(symmetric(outputs.at(-1)!)).toBe('0.66');
  });
});
