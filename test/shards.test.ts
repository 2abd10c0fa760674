/** Shard sets: synth -> prepare -> score, hand-built shards, damage, and prepare's memory bound. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Field, FixedSizeList, Float32, RecordBatch, Schema, Struct, Table, Uint64, makeData, tableToIPC } from 'apache-arrow';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { prepare } from '../dist/prepare/prepare.js';
import { architectureLayers, neuronCount } from '../dist/synth/architectures.js';
import { loadActivationSet } from '../dist/shared/formats/index.js';
import { planShardSet } from '../dist/shared/formats/index.js';
import { ShardStream } from '../dist/shared/formats/index.js';
import { synthesize } from '../dist/synth/synth.js';
import { bruteForce } from './helpers/brute.js';
import { bruteLayers, genModel, latents, writeNpyDir } from './helpers/models.js';
import { runPair } from './helpers/run.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'neurocorr.js');
const cli = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
const scratch = () => mkdtempSync(join(tmpdir(), 'nc-shards-'));
const quiet = { log: () => undefined };

async function reductionState(fPath: string, gPath: string, block: number) {
  const { reduction } = await runPair(fPath, gPath, { kernel: 'native', threads: 2, tile: block });
  return JSON.stringify([reduction.forward, reduction.backward].flatMap((s) => [s.best, s.arg, s.pen, s.penArg].map((a) => Array.from(a))));
}

describe('synth', () => {
  it('follows the real architectures', () => {
    // ResNet-152 block outputs at 224: about 1.4e7 neurons.
    const n = neuronCount(architectureLayers('resnet152', 224, 1, false));
    expect(n).toBeGreaterThan(1.3e7);
    expect(n).toBeLessThan(1.5e7);
    const r18 = architectureLayers('resnet18', 224, 1, false);
    expect(r18.map((l) => l.name).slice(0, 3)).toEqual(['conv1', 'layer1.0', 'layer1.1']);
    expect(r18[0]!.shape).toEqual([64, 112, 112]);
    expect(r18.find((l) => l.name === 'layer4.1')!.shape).toEqual([512, 7, 7]);
    expect(architectureLayers('resnet50', 224, 1, true).length).toBeGreaterThan(architectureLayers('resnet50', 224, 1, false).length);
    expect(architectureLayers('mlp:100,60,40', 224, 1, false).map((l) => l.shape)).toEqual([[100], [60], [40]]);
    expect(() => architectureLayers('vgg', 224, 1, false)).toThrow(/^arch vgg: expected one of resnet18/);
  });

  it('writes a loadable set with dead units whose models share structure', () => {
    const dir = scratch();
    const opts = { arch: 'resnet18', probes: 12, resolution: 224, scale: 1 / 28, allConvs: false, probeSeed: 3, depth: 'stage' as const };
    const a = synthesize(join(dir, 'a'), { ...opts, seed: 1 });
    synthesize(join(dir, 'b'), { ...opts, seed: 2 });
    const raw = loadActivationSet(join(dir, 'a'));
    expect(raw.layers).toHaveLength(a.layers);
    expect(raw.fingerprint).toBe('synth:3:12');
    expect(raw.layers[0]!.shape).toEqual([12, 64, 4, 4]);
    expect(JSON.parse(readFileSync(join(dir, 'a', 'layers.json'), 'utf8')).layers[1].depth).toBe(1);
    expect(() => synthesize(join(dir, 'a'), { ...opts, seed: 1 })).toThrow(/already exists/);
  });
});

describe('prepare -> score', () => {
  const latent = latents(9, 24, 3);
  const F = genModel(31, { m: 24, layers: [[30], [2, 3, 4], [1]], latent, constants: 0.1, duplicates: 0.1 });
  const G = genModel(32, { m: 24, layers: [[17], [25]], latent, duplicates: 0.15 });
  const fDir = writeNpyDir(F);
  const gDir = writeNpyDir(G);

  it('scores bit for bit like the .npy it came from, for several block sizes and shard sizes', async () => {
    const dir = scratch();
    prepare({ input: fDir, out: join(dir, 'F'), memory: 64 << 20, conv: 'units', force: false, shardNeurons: 7, ...quiet });
    prepare({ input: gDir, out: join(dir, 'G'), memory: 64 << 20, conv: 'units', force: false, ...quiet });
    const manifest = JSON.parse(readFileSync(join(dir, 'F', 'manifest.json'), 'utf8'));
    expect(manifest.shards.length).toBe(5 + 4 + 1);
    for (const block of [5, 64, 1 << 20]) {
      const direct = await reductionState(fDir, gDir, block);
      expect(await reductionState(join(dir, 'F'), join(dir, 'G'), block), `block ${block}`).toBe(direct);
      expect(await reductionState(join(dir, 'F'), gDir, block)).toBe(direct);
    }
    const r = cli(['score', join(dir, 'F'), join(dir, 'G'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).constant).toEqual(JSON.parse(cli(['score', fDir, gDir, '--json']).stdout).constant);
  });

  it('streams shard sets through a bounded cache with the same bits as in memory', () => {
    const dir = scratch();
    prepare({ input: fDir, out: join(dir, 'F'), memory: 64 << 20, conv: 'units', force: false, shardNeurons: 6, ...quiet });
    prepare({ input: gDir, out: join(dir, 'G'), memory: 64 << 20, conv: 'units', force: false, shardNeurons: 5, ...quiet });
    const direct = JSON.parse(cli(['score', fDir, gDir, '--json', '--tile', '4']).stdout);
    for (const memory of ['4KiB', '64MiB']) {
      const r = cli(['score', join(dir, 'F'), join(dir, 'G'), '--json', '--tile', '4', '--memory', memory]);
      expect(r.status, r.stderr).toBe(0);
      const streamed = JSON.parse(r.stdout);
      expect(streamed.scores).toEqual(direct.scores);
      expect(streamed.constant).toEqual(direct.constant);
      expect(streamed.layers).toEqual(direct.layers.map((l: { source: string }, i: number) => ({ ...l, source: streamed.layers[i].source })));
      // G has 9 shards; with 2 KiB per side every F block re-reads them, with 32 MiB each is read once.
      const loads = streamed.io.G.loads;
      if (memory === '4KiB') expect(loads).toBeGreaterThan(9);
      else expect(loads).toBe(9);
      expect(streamed.io.F.loads).toBeGreaterThanOrEqual(10);
    }
  });

  it('runs out of core near the I/O lower bound, with the bits of the in-memory run and the cache within budget', async () => {
    const dir = scratch();
    prepare({ input: fDir, out: join(dir, 'F'), memory: 64 << 20, conv: 'units', force: false, shardNeurons: 6, ...quiet });
    prepare({ input: gDir, out: join(dir, 'G'), memory: 64 << 20, conv: 'units', force: false, shardNeurons: 5, ...quiet });
    const shardCount = (set: string) => JSON.parse(readFileSync(join(dir, set, 'manifest.json'), 'utf8')).shards.length as number;
    const nul = { permutations: 3, sample: 20, seed: 5 };
    const options = { kernel: 'native' as const, threads: 2, tile: 4, null: nul };
    const outcome = (r: Awaited<ReturnType<typeof runPair>>) =>
      JSON.stringify({
        scores: r.report.scores,
        // The null's tiles are cut at shard starts, so only their number differs from an in-memory run.
        null: { ...r.report.null, seconds: 0, tiles: 0 },
        state: [r.reduction.forward, r.reduction.backward].flatMap((s) => [s.best, s.arg, s.pen, s.penArg].map((a) => Array.from(a))),
      });
    const direct = outcome(await runPair(fDir, gDir, options));
    // 3000 bytes: G's window takes two 480-byte buffers, so F's ranges hold three 576-byte shards: several passes.
    const memory = 3000;
    for (const [f, g] of [
      [join(dir, 'F'), join(dir, 'G')],
      [join(dir, 'F'), gDir],
      [fDir, join(dir, 'G')],
    ] as const) {
      const run = await runPair(f, g, { ...options, memory });
      expect(outcome(run), `${f} x ${g}`).toBe(direct);
      const io = run.io!;
      const schedule = io.schedule!;
      expect(schedule.resident).toBe('F');
      expect(io.bytesRead).toBe((io.F?.bytesRead ?? 0) + (io.G?.bytesRead ?? 0));
      expect(io.bytesRead).toBeLessThanOrEqual(schedule.planned);
      expect(io.bytesRead).toBeLessThanOrEqual(1.5 * schedule.lowerBound);
      expect((io.F?.peakBytes ?? 0) + (io.G?.peakBytes ?? 0)).toBeLessThanOrEqual(memory);
      if (io.F !== null && io.G !== null) {
        expect(schedule.passes).toBeGreaterThan(2);
        // F is read once; G once per pass, less the shards a pass starts on that the previous one ended on.
        expect(io.F.loads).toBe(shardCount('F'));
        expect(io.G.loads).toBeLessThan(schedule.passes * shardCount('G'));
      } else {
        // One side streams: it is read once, the null's samples included.
        expect((io.F ?? io.G)!.loads).toBe(shardCount(io.F ? 'F' : 'G'));
      }
    }
  });

  it('holds the smaller side resident when that reads less, with the same bits', async () => {
    const dir = scratch();
    const big = genModel(41, { m: 24, layers: [[40], [30]], latent, constants: 0.05 });
    const small = genModel(42, { m: 24, layers: [[9]], latent });
    const [bigDir, smallDir] = [writeNpyDir(big), writeNpyDir(small)];
    prepare({ input: bigDir, out: join(dir, 'F'), memory: 64 << 20, conv: 'units', force: false, shardNeurons: 5, ...quiet });
    prepare({ input: smallDir, out: join(dir, 'G'), memory: 64 << 20, conv: 'units', force: false, shardNeurons: 3, ...quiet });
    const options = { kernel: 'native' as const, threads: 2, tile: 3, null: { permutations: 2, sample: 8, seed: 3 } };
    const direct = await runPair(bigDir, smallDir, options);
    // 9 x 24 x 4 = 864 bytes of G fit beside two of F's 480-byte window buffers; F's 70 neurons would take many passes.
    const run = await runPair(join(dir, 'F'), join(dir, 'G'), { ...options, memory: 2000 });
    expect(run.io!.schedule!.resident).toBe('G');
    expect(run.io!.schedule!.passes).toBe(1);
    expect(run.io!.G!.loads).toBe(3);
    expect(run.io!.F!.loads).toBe(14);
    expect(run.report.scores).toEqual(direct.report.scores);
    expect({ ...run.report.null, seconds: 0, tiles: 0 }).toEqual({ ...direct.report.null, seconds: 0, tiles: 0 });
    expect([...run.reduction.forward.best]).toEqual([...direct.reduction.forward.best]);
    expect([...run.reduction.backward.arg]).toEqual([...direct.reduction.backward.arg]);
  });

  it('a budget smaller than one shard never recycles a shard that is handed out', () => {
    const dir = scratch();
    prepare({ input: fDir, out: join(dir, 'F'), memory: 64 << 20, conv: 'units', force: false, shardNeurons: 6, ...quiet });
    const plan = planShardSet(join(dir, 'F'), 'units', false);
    const whole = plan.build(new Float32Array(plan.n * plan.m));
    const stream = new ShardStream(join(dir, 'F'), plan, 1);
    const first = stream.acquire(0, 6);
    const expected = Float32Array.from(whole.z.subarray(0, 6 * plan.m));
    // Loading two more shards under a 1-byte budget must evict neither the pinned shard nor reuse its buffer.
    for (const start of [6, 12]) {
      expect([...stream.acquire(start, 6)]).toEqual([...whole.z.subarray(start * plan.m, (start + 6) * plan.m)]);
      stream.release(start);
    }
    expect([...first]).toEqual([...expected]);
    stream.release(0);
  });

  it('refuses to overwrite without --force, and replaces with it', () => {
    const dir = scratch();
    expect(cli(['prepare', fDir, join(dir, 'F')]).status).toBe(0);
    const again = cli(['prepare', fDir, join(dir, 'F')]);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/--force/);
    expect(cli(['prepare', fDir, join(dir, 'F'), '--force', '--shard-neurons', '4']).status).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'F', 'manifest.json'), 'utf8')).shards.length).toBe(8 + 6 + 1);
  });
});

/** A shard set written by hand with apache-arrow, the way a pyarrow user would: uint64 ids, two record batches. */
function handBuiltSet(dir: string, vectors: Float64Array[][], m: number, fingerprint: string | null): void {
  mkdirSync(dir, { recursive: true });
  const zType = new FixedSizeList(m, new Field('item', new Float32(), false));
  const fields = [new Field('neuron', new Uint64(), false), new Field('z', zType, false)];
  const schema = new Schema(fields);
  const layers: object[] = [];
  const shards: object[] = [];
  let start = 0;
  vectors.forEach((layer, k) => {
    const z = new Float32Array(layer.length * m);
    layer.forEach((v, j) => {
      const mean = v.reduce((a, b) => a + b, 0) / m;
      const norm = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0));
      for (let t = 0; t < m; t++) z[j * m + t] = norm === 0 ? 0 : (v[t]! - mean) / norm;
    });
    const batch = (from: number, to: number) => {
      const count = to - from;
      const children = [
        makeData({ type: new Uint64(), length: count, nullCount: 0, data: BigUint64Array.from({ length: count }, (_, r) => BigInt(start + from + r)) }),
        makeData({
          type: zType,
          length: count,
          nullCount: 0,
          child: makeData({ type: new Float32(), length: count * m, nullCount: 0, data: z.slice(from * m, to * m) }),
        }),
      ];
      return new RecordBatch(schema, makeData({ type: new Struct(fields), length: count, nullCount: 0, children }));
    };
    const half = Math.ceil(layer.length / 2);
    const bytes = tableToIPC(new Table([batch(0, half), batch(half, layer.length)]), 'file');
    const file = `hand-${k}.arrow`;
    writeFileSync(join(dir, file), bytes);
    shards.push({ file, layer: k, first: start, count: layer.length, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    layers.push({ name: `L${k}`, depth: k, shape: [layer.length], start, count: layer.length, total: layer.length, constant: 0 });
    start += layer.length;
  });
  const manifest = { format: 'neurocorr-shards', version: 1, model: 'hand', probes: m, samples: m, fingerprint, conv: 'units', layers, shards };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
}

describe('shard sets built by hand and damaged ones', () => {
  const latent = latents(4, 16, 2);
  const F = genModel(41, { m: 16, layers: [[9], [6]], latent, dtype: 'f8' });
  const G = genModel(42, { m: 16, layers: [[11]], latent, dtype: 'f8' });
  const root = scratch();
  handBuiltSet(
    join(root, 'F'),
    bruteLayers(F).map((l) => [...l.vectors]),
    16,
    'probes-A',
  );
  handBuiltSet(
    join(root, 'G'),
    bruteLayers(G).map((l) => [...l.vectors]),
    16,
    'probes-A',
  );

  it('reads a hand-built set (uint64 ids, several record batches) and scores it like the float64 brute force', () => {
    const r = cli(['score', join(root, 'F'), join(root, 'G'), '--json']);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    const expected = bruteForce(bruteLayers(F), bruteLayers(G));
    expect(report.scores.paper.symmetric).toBeCloseTo(expected.symmetric.paper, 6);
    expect(report.scores.penalized.forward).toBeCloseTo(expected.forward.penalized, 6);
    expect(report.neurons).toEqual([15, 11]);
  });

  const damaged = (name: string, damage: (dir: string) => void) => {
    const dir = join(scratch(), name);
    handBuiltSet(
      dir,
      bruteLayers(F).map((l) => [...l.vectors]),
      16,
      'probes-A',
    );
    damage(dir);
    return dir;
  };
  const flip = (file: string) => {
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(file, bytes);
  };
  const cases: [string, () => string, RegExp, string][] = [
    ['a corrupted shard', () => damaged('corrupt', (d) => flip(join(d, 'hand-1.arrow'))), /sha256/, 'hand-1.arrow'],
    [
      'a truncated shard',
      () => damaged('trunc', (d) => writeFileSync(join(d, 'hand-0.arrow'), readFileSync(join(d, 'hand-0.arrow')).subarray(0, 100))),
      /bytes/,
      'hand-0.arrow',
    ],
    [
      'a wrong sha256 in the manifest',
      () =>
        damaged('sha', (d) => {
          const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8'));
          m.shards[0].sha256 = '0'.repeat(64);
          writeFileSync(join(d, 'manifest.json'), JSON.stringify(m));
        }),
      /sha256/,
      'hand-0.arrow',
    ],
    [
      'a mismatched probe fingerprint',
      () => {
        const dir = join(scratch(), 'fp');
        handBuiltSet(
          dir,
          bruteLayers(F).map((l) => [...l.vectors]),
          16,
          'probes-B',
        );
        return dir;
      },
      /fingerprint/,
      '',
    ],
  ];
  it.each(cases)('%s exits 2, names the shard, and writes nothing', (_name, make, message, shard) => {
    const dir = make();
    const out = join(scratch(), 'report.json');
    const r = cli(['score', dir, join(root, 'G'), '--out', out]);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    if (shard) expect(r.stderr).toContain(join(dir, shard));
    expect(r.stderr).toMatch(/Fix/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('prepare memory', () => {
  it('holds no more than its budget on an input several times larger', () => {
    const dir = scratch();
    // One layer of 48,000 neurons x 256 probes: 47 MiB of float32, prepared with a 16 MiB budget.
    synthesize(join(dir, 'big'), { arch: 'mlp:48000', probes: 256, resolution: 224, scale: 1, allConvs: false, seed: 1, probeSeed: 1, depth: 'position' });
    const rss = (args: string[]) => {
      const script = `const { main } = await import(${JSON.stringify(join(import.meta.dirname, '..', 'dist', 'cli', 'main.js'))}); const code = await main(${JSON.stringify(args)}, { stdout: () => {}, stderr: () => {} }); process.stdout.write(JSON.stringify({ code, rss: process.resourceUsage().maxRSS * 1024 }));`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      return JSON.parse(r.stdout) as { code: number; rss: number };
    };
    // Peak RSS moves by a few MiB from run to run (V8's heap slack, GC timing): compare medians of three runs each.
    const median = (args: string[]) => {
      const runs = [0, 1, 2].map((k) => rss([...args.slice(0, 2), `${args[2]}-${k}`, ...args.slice(3)]));
      for (const r of runs) expect(r.code).toBe(0);
      return runs.map((r) => r.rss).sort((a, b) => a - b)[1]!;
    };
    const small = median(['prepare', join(import.meta.dirname, '..', 'examples', 'mlp'), join(dir, 'small'), '--memory', '16MiB']);
    const big = median(['prepare', join(dir, 'big'), join(dir, 'big-shards'), '--memory', '16MiB']);
    // The input is 47 MiB; what prepare adds stays near its 16 MiB budget (a few MiB of V8 heap slack allowed), not near the input's size.
    expect(big - small).toBeLessThan(20 * 2 ** 20);
    expect(JSON.parse(readFileSync(join(dir, 'big-shards-0', 'manifest.json'), 'utf8')).shards.length).toBeGreaterThan(3);
  });
});
