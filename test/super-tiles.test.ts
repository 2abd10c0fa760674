/**
 * Super-tiles (cluster runs): a main tile of several blocks a side that a
 * worker splits into kernel tiles and folds into one result. The worker's
 * own path (TileRunner over a plan of span > 1) must give the embedded run's
 * reduction bit for bit, on random models with ties, constant neurons,
 * conv-shaped layers, one-neuron layers, M = 2 and shard cuts; and the
 * sizing rule must keep results within max_payload.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSources } from '../dist/coordinator/embedded.js';
import { MERGE_RATE, superTileLimit, superTileSize } from '../dist/coordinator/cluster/job-spec.js';
import { prepare } from '../dist/coordinator/prepare.js';
import { architectureLayers } from '../dist/coordinator/synth/architectures.js';
import type { Block } from '../dist/shared/tiles/index.js';
import { planPair } from '../dist/shared/formats/index.js';
import { JobProgress, kernelTiles, pairNulls, planJob, type MainTile } from '../dist/shared/job/index.js';
import { startPool } from '../dist/worker/pool.js';
import { TileRunner } from '../dist/worker/tile-runner.js';
import { genModel, latents, rng, writeNpyDir, type GenOptions } from './helpers/models.js';
import { runPair } from './helpers/run.js';

interface Case {
  readonly name: string;
  readonly m: number;
  readonly f: Omit<GenOptions, 'm' | 'latent'>;
  readonly g: Omit<GenOptions, 'm' | 'latent'>;
}

const CASES: Case[] = [
  {
    name: 'mixed layers with constants and ties',
    m: 16,
    f: { layers: [[23], [2, 3, 3], [1], [17]], constants: 0.1, duplicates: 0.15 },
    g: { layers: [[19], [4], [3, 2, 2], [1]], constants: 0.1, duplicates: 0.2 },
  },
  { name: 'M = 2 (every |rho| ties)', m: 2, f: { layers: [[9], [7]] }, g: { layers: [[11], [2]], constants: 0.2 } },
  { name: 'conv-shaped layers', m: 8, f: { layers: [[3, 4, 4]], duplicates: 0.1 }, g: { layers: [[2, 4, 4], [6]], constants: 0.05 } },
];

function makeCase(c: Case, seed: number) {
  const latent = latents(seed, c.m, 3);
  const f = genModel(seed + 1, { ...c.f, m: c.m, latent });
  const g = genModel(seed + 2, { ...c.g, m: c.m, latent });
  return { fDir: writeNpyDir(f), gDir: writeNpyDir(g) };
}

/** The worker's path: every tile of a plan of `span` through a TileRunner, folded into a JobProgress. */
async function runWorkerPath(fDir: string, gDir: string, block: number, span: number, kernel: 'native' | 'reference', threads: number) {
  const planned = planPair(fDir, gDir, { conv: 'units', layout: null, spatial: null, layers: null, layersF: null, layersG: null, sample: null, probes: null });
  const sources = openSources(
    [
      { path: fDir, plan: planned.f },
      { path: gDir, plan: planned.g },
    ],
    2 ** 31,
  );
  for (const s of sources) await s.load();
  const models = sources.map((s) => s.model);
  const pairs = [{ f: 0, g: 1 }];
  const plan = planJob(models, pairs, { block, span, nulls: pairNulls(null, models, pairs), cuts: sources.map((s) => s.cuts) });
  const pool = await startPool({ choice: kernel }, threads);
  try {
    const runner = new TileRunner(pool, plan, sources);
    const progress = new JobProgress(plan);
    // Results arrive in any order in a cluster: merge them in reverse.
    const outcomes = await Promise.all(plan.tiles.map((t) => runner.run(t)));
    for (let i = plan.tiles.length - 1; i >= 0; i--) progress.merge(plan.tiles[i]!, outcomes[i]!.result, outcomes[i]!.constant);
    return progress;
  } finally {
    await pool.destroy();
  }
}

function expectSameReduction(a: JobProgress, b: JobProgress): void {
  const [ra, rb] = [a.pairs[0]!.reduction, b.pairs[0]!.reduction];
  for (const dir of ['forward', 'backward'] as const) {
    for (const field of ['best', 'arg', 'pen', 'penArg', 'penRho'] as const) expect(ra[dir][field], `${dir}.${field}`).toEqual(rb[dir][field]);
  }
  expect(a.constant).toEqual(b.constant);
}

describe('super-tiles on the worker path', () => {
  CASES.forEach((c, index) => {
    for (const kernel of ['native', 'reference'] as const) {
      it(`${c.name}, ${kernel}: spans 2, 3 and whole layers give the embedded reduction bit for bit`, async () => {
        const { fDir, gDir } = makeCase(c, 300 + index * 10);
        const block = 2;
        const embedded = await runPair(fDir, gDir, { kernel, tile: block, threads: 2 });
        const scores = embedded.report.scores;
        for (const span of [2, 3, 64]) {
          const progress = await runWorkerPath(fDir, gDir, block, span, kernel, 2);
          expect(progress.complete).toBe(true);
          // Fewer, larger main tiles than the embedded plan's.
          expect(progress.plan.tiles.length).toBeLessThan(embedded.progress.plan.tiles.length);
          expectSameReduction(progress, embedded.progress);
        }
        expect(scores).toEqual((await runPair(fDir, gDir, { kernel, tile: block, threads: 1 })).report.scores);
      });
    }
  });

  it('a shard set: super-tiles are cut at shard starts as kernel tiles are, and the reduction is the same', async () => {
    const c = CASES[0]!;
    const { fDir, gDir } = makeCase(c, 400);
    const dir = mkdtempSync(join(tmpdir(), 'nc-super-shards-'));
    const quiet = { log: () => undefined };
    prepare({ input: fDir, out: join(dir, 'F'), memory: 64 << 20, conv: 'units', force: false, shardNeurons: 7, ...quiet });
    const embedded = await runPair(join(dir, 'F'), gDir, { kernel: 'native', tile: 3, threads: 2 });
    for (const span of [2, 5]) expectSameReduction(await runWorkerPath(join(dir, 'F'), gDir, 3, span, 'native', 2), embedded.progress);
  });
});

describe('kernelTiles', () => {
  it("a span-k plan's super-tiles split into exactly the span-1 plan's main tiles, on random layouts and cuts", () => {
    const r = rng(77);
    for (let trial = 0; trial < 200; trial++) {
      const layout = (n: number) => {
        let start = 0;
        const layers = Array.from({ length: n }, (_, k) => {
          const count = 1 + Math.floor(r() * 40);
          const layer = { name: `l${k}`, source: '', shape: [count], start, count, total: count, depth: k, constant: 0 };
          start += count;
          return layer;
        });
        return { path: '', n: start, m: 4, probes: 4, layers, constant: new Uint8Array(start), z: new Float32Array(0), ids: null, fingerprint: null };
      };
      const models = [layout(1 + Math.floor(r() * 4)), layout(1 + Math.floor(r() * 4))];
      const cuts = models.map((m) => Array.from({ length: Math.floor(r() * 4) }, () => Math.floor(r() * m.n)));
      const block = 1 + Math.floor(r() * 9);
      const span = 1 + Math.floor(r() * 6);
      const pairs = [{ f: 0, g: 1 }];
      const nulls = pairNulls(null, models, pairs);
      const key = (t: { f: Block; g: Block }) => `${t.f.layer}:${t.f.start}:${t.f.count}/${t.g.layer}:${t.g.start}:${t.g.count}`;
      const flat = planJob(models, pairs, { block, nulls, cuts }).tiles.map((t) => key(t as MainTile));
      const grouped = planJob(models, pairs, { block, span, nulls, cuts });
      const split = grouped.tiles.flatMap((t) => kernelTiles(grouped, t as MainTile, cuts).map(key));
      expect(split.sort()).toEqual(flat.sort());
      // Every super-tile is within one layer of each model and at most span x block a side.
      for (const t of grouped.tiles as MainTile[]) {
        expect(t.f.count).toBeLessThanOrEqual(block * span);
        expect(t.g.count).toBeLessThanOrEqual(block * span);
        for (const [b, model] of [
          [t.f, models[0]!],
          [t.g, models[1]!],
        ] as const) {
          const layer = model.layers[b.layer]!;
          expect(b.start >= layer.start && b.start + b.count <= layer.start + layer.count).toBe(true);
        }
      }
      // Fewer main tiles once a span groups several blocks of a layer.
      if (span > 1 && models.some((m) => m.layers.some((l) => l.count > block))) expect(grouped.tiles.length).toBeLessThan(flat.length);
    }
  });
});

describe('superTileSize', () => {
  // ResNet-152's block outputs at 224 px, as `neurocorr synth --arch resnet152` makes them.
  const layers = architectureLayers('resnet152', 224, 1, false).map((l) => l.shape.reduce((a, b) => a * b, 1));
  const resnet = { f: layers, g: layers, maxPayload: 8 * 1024 * 1024, workers: 16, superTile: undefined };
  const seconds = (m: number) => (2 * m * 13_951_976 ** 2) / (16 * 30e12);

  it('keeps small jobs at one kernel tile a side (8 super-tiles per worker at least)', () => {
    expect(layers.reduce((a, b) => a + b, 0)).toBe(13_951_976);
    expect(superTileSize({ ...resnet, m: 24, f: [100, 100, 60], g: [120, 80], block: 16 }).span).toBe(1);
  });

  it("sizes ResNet-152's super-tiles so 16 GPU workers stay within the merge rate at M = 100 and 1000, and within max_payload", () => {
    for (const [m, block] of [
      [100, 4512],
      [1000, 1440],
    ] as const) {
      const { span, inflow } = superTileSize({ ...resnet, m, block });
      expect(inflow).toBeLessThanOrEqual(MERGE_RATE);
      expect(span * block).toBeLessThanOrEqual(superTileLimit(resnet.maxPayload));
      // The inflow is the job's result entries over its time: nF x (G's layer ranges) + nG x (F's).
      const ranges = layers.reduce((a, n) => a + Math.ceil(n / (span * block)), 0);
      expect(inflow).toBeCloseTo((2 * 13_951_976 * ranges) / seconds(m), 0);
      // The smallest span that does it and computes for 1 s at least on a 30 TFLOP/s worker.
      // (or as large as max_payload allows)
      expect((2 * m * (span * block) ** 2) / 30e12 >= 1 || (span + 1) * block > superTileLimit(resnet.maxPayload)).toBe(true);
      const smaller = superTileSize({ ...resnet, m, block, superTile: (span - 1) * block }).inflow;
      expect(smaller > MERGE_RATE || (2 * m * ((span - 1) * block) ** 2) / 30e12 < 1).toBe(true);
    }
  });

  it('at M = 10 it stops at max_payload and says the inflow it expects', () => {
    const { span, inflow } = superTileSize({ ...resnet, m: 10, block: 8192 });
    expect(span).toBe(Math.floor(superTileLimit(resnet.maxPayload) / 8192));
    expect(inflow).toBeGreaterThan(MERGE_RATE);
  });

  it('takes a side given by the user, in whole blocks, and refuses one whose results would not fit max_payload', () => {
    expect(superTileSize({ ...resnet, m: 100, block: 100, superTile: 950 }).span).toBe(9);
    expect(superTileSize({ ...resnet, m: 100, block: 100, superTile: 50 }).span).toBe(1);
    expect(() => superTileSize({ ...resnet, m: 100, block: 100, maxPayload: 1024 * 1024, superTile: 50_000 })).toThrow(
      /superTile 50000 makes super-tile results larger than the NATS server's max_payload \(1048576 bytes\); use .* 40172 or less/,
    );
  });
});
