/**
 * Super-tiles (cluster runs): `span` consecutive blocks a side, across
 * layers, that a worker splits into kernel tiles and folds (both match
 * modes) into one result, sent in parts. The worker's own path (TileRunner
 * over a plan of span > 1, its result cut into parts as the wire carries
 * them, merged in any order and twice) must give the embedded run's
 * reduction bit for bit, on random models with ties, constant neurons,
 * conv-shaped layers, one-neuron layers, M = 2 and shard cuts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSources } from '../dist/coordinator/embedded.js';
import { BOUND_SECONDS, coordinatorBound, MERGE_RATE, MERGE_SHARE, superTileSize, warnIfCoordinatorBound } from '../dist/coordinator/cluster/job-spec.js';
import { measureMergeRate } from '../dist/coordinator/cluster/merge-rate.js';
import { prepare } from '../dist/prepare/prepare.js';
import { architectureLayers } from '../dist/synth/architectures.js';
import { decodeResult, encodeParts, partEntriesFor } from '../dist/shared/cluster/index.js';
import type { Block, Range } from '../dist/shared/tiles/index.js';
import { planPair } from '../dist/shared/formats/index.js';
import { JobProgress, kernelTiles, pairNulls, planJob, type JobTile, type MainTile, type SuperTile, type TileOutcome } from '../dist/shared/job/index.js';
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

const provenance = { worker: 'w', kernel: 'k', deliveries: 1, milliseconds: 1 };

/** Outcomes as a coordinator receives them: a super-tile's result encoded in parts of `partEntries` and decoded, each part its own outcome. */
function overTheWire(tile: JobTile, outcome: TileOutcome, partEntries: number): TileOutcome[] {
  if (outcome.kind === 'tile') return [outcome];
  return encodeParts('job', tile.id, outcome.part, outcome.constant, partEntries, provenance).map((bytes) => {
    const m = decodeResult(bytes);
    if (m.kind !== 'part') throw new Error(`expected a part, got ${m.kind}`);
    return { kind: 'part', part: m.part, constant: m.constant, seconds: 0 };
  });
}

/** The worker's path: every tile of a plan of `span` through a TileRunner, sent in parts, merged in a shuffled order with every part twice. */
async function runWorkerPath(fDir: string, gDir: string, block: number, span: number, kernel: 'native' | 'reference', threads: number) {
  const planned = planPair(fDir, gDir, { conv: 'units', layout: null, spatial: null, layers: null, layersF: null, layersG: null, sample: null, probes: null });
  const sources = openSources(
    [
      { path: fDir, plan: planned.f },
      { path: gDir, plan: planned.g },
    ],
    [{ f: 0, g: 1 }],
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
    const outcomes = await Promise.all(plan.tiles.map((t) => runner.run(t)));
    const r = rng(span * 7919 + block);
    const partEntries = 1 + Math.floor(r() * 9);
    const arrivals = plan.tiles.flatMap((t, i) => overTheWire(t, outcomes[i]!, partEntries).flatMap((o) => [[t, o] as const, [t, o] as const]));
    for (let i = arrivals.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [arrivals[i], arrivals[j]] = [arrivals[j]!, arrivals[i]!];
    }
    const merged = { done: 0, part: 0, duplicate: 0 };
    for (const [tile, outcome] of arrivals) merged[progress.accept(tile, outcome)]++;
    expect(merged.done).toBe(plan.tiles.length);
    expect(merged.duplicate).toBe(arrivals.length / 2);
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

describe('parts from the network', () => {
  it('a part of the wrong shape is refused and leaves the state as it was', () => {
    const layer = (count: number, start: number, depth: number) => ({
      name: `l${depth}`,
      source: '',
      shape: [count],
      start,
      count,
      total: count,
      depth,
      constant: 0,
    });
    const model = (n: number) => ({
      path: '',
      n,
      m: 4,
      probes: 4,
      layers: [layer(3, 0, 0), layer(n - 3, 3, 1)],
      constant: new Uint8Array(n),
      z: new Float32Array(0),
      ids: null,
      fingerprint: null,
    });
    const models = [model(8), model(6)];
    const pairs = [{ f: 0, g: 1 }];
    const plan = planJob(models, pairs, { block: 2, span: 8, nulls: pairNulls(null, models, pairs) });
    const tile = plan.tiles[0] as SuperTile;
    expect(tile).toMatchObject({ kind: 'super', f: { start: 0, count: 8 }, g: { start: 0, count: 6 } });
    const progress = new JobProgress(plan);
    const part = (offset: number, count: number, partner: number) => ({
      kind: 'part' as const,
      part: {
        offset,
        best: new Float64Array(count).fill(0.5),
        arg: new Uint32Array(count).fill(partner),
        penRho: new Float64Array(count).fill(0.5),
        penArg: new Uint32Array(count).fill(partner),
      },
      constant: new Uint8Array(count),
      seconds: 0,
    });
    const before = JSON.stringify(progress.pairs[0]!.reduction);
    // F's entries name G neurons (6 of them); entries past 8 are G's and name F neurons (8).
    expect(() => progress.accept(tile, part(0, 4, 6))).toThrow(/entry 0 names partner 6, beyond the other model's 6 neurons/);
    expect(() => progress.accept(tile, part(8, 6, 8))).toThrow(/beyond the other model's 8 neurons/);
    expect(() => progress.accept(tile, part(12, 4, 0))).toThrow(/not within its 14 entries/);
    expect(() =>
      progress.accept(tile, {
        kind: 'tile',
        result: { rowBest: new Float64Array(8), rowArg: new Uint32Array(8), colBest: new Float64Array(6), colArg: new Uint32Array(6) },
        constant: null,
        seconds: 0,
      }),
    ).toThrow(/super-tile/);
    expect(JSON.stringify(progress.pairs[0]!.reduction)).toBe(before);
    // Parts cut two ways (two workers' deliveries) overlap: the tile is done once every entry is in.
    const arrivals = [part(0, 5, 5), part(3, 5, 5), part(0, 8, 5), part(8, 6, 7)];
    expect(arrivals.map((p) => progress.accept(tile, p))).toEqual(['part', 'part', 'duplicate', 'done']);
    expect(progress.complete).toBe(true);
    // Penalized values are recomputed from the depths: F's layer 1 (neurons 3..7) against G's neuron 5 (layer 1) is not penalized, F's layer 0 is.
    expect(Array.from(progress.pairs[0]!.reduction.forward.pen)).toEqual([0.25, 0.25, 0.25, 0.5, 0.5, 0.5, 0.5, 0.5]);
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
      const span = 1 + Math.floor(r() * 6); // the super-tiles' span is span + 1
      const pairs = [{ f: 0, g: 1 }];
      const nulls = pairNulls(null, models, pairs);
      const key = (t: { f: Block; g: Block }) => `${t.f.layer}:${t.f.start}:${t.f.count}/${t.g.layer}:${t.g.start}:${t.g.count}`;
      const flat = planJob(models, pairs, { block, nulls, cuts }).tiles as MainTile[];
      const grouped = planJob(models, pairs, { block, span: span + 1, nulls, cuts });
      const supers = grouped.tiles as SuperTile[];
      expect(supers.every((t) => t.kind === 'super')).toBe(true);
      const split = supers.flatMap((t) => kernelTiles(grouped, t, cuts));
      expect(split.map(key).sort()).toEqual(flat.map(key).sort());
      // Every kernel tile lies within its super-tile, and a super-tile's ranges are at most span + 1 blocks of the span-1 plan.
      const within = (b: Block, r: Range) => b.start >= r.start && b.start + b.count <= r.start + r.count;
      for (const t of supers) {
        const parts = kernelTiles(grouped, t, cuts);
        expect(parts.every((k) => within(k.f, t.f) && within(k.g, t.g))).toBe(true);
        expect(new Set(parts.map((k) => k.f.start)).size).toBeLessThanOrEqual(span + 1);
        expect(new Set(parts.map((k) => k.g.start)).size).toBeLessThanOrEqual(span + 1);
      }
      // Ranges cross layers: the super-tiles a side are ceil(blocks / span).
      const blocksOf = (side: 'f' | 'g') => new Set(flat.map((t) => t[side].start)).size;
      expect(supers.length).toBe(Math.ceil(blocksOf('f') / (span + 1)) * Math.ceil(blocksOf('g') / (span + 1)));
    }
  });
});

describe('superTileSize', () => {
  // ResNet-152's block outputs at 224 px, as `neurocorr synth --arch resnet152` makes them.
  const layers = architectureLayers('resnet152', 224, 1, false).map((l) => l.shape.reduce((a, b) => a * b, 1));
  const resnet = { f: layers, g: layers, workers: 16, superTile: undefined };
  const n = 13_951_976;
  const seconds = (m: number) => (2 * m * n ** 2) / (16 * 30e12);
  const blocks = (block: number) => layers.reduce((a, l) => a + Math.ceil(l / block), 0);
  const most = (block: number) => Math.floor(Math.sqrt((n * n) / (8 * 16)) / block);

  it('keeps small jobs at one kernel tile a side (8 super-tiles per worker at least)', () => {
    expect(layers.reduce((a, b) => a + b, 0)).toBe(n);
    expect(superTileSize({ ...resnet, m: 24, f: [100, 100, 60], g: [120, 80], block: 16 }).span).toBe(1);
  });

  it("sizes ResNet-152's super-tiles so 16 GPU workers stay within the merge rate at M = 100 and 1000", () => {
    for (const [m, block] of [
      [100, 4512],
      [1000, 1440],
    ] as const) {
      const { span, inflow } = superTileSize({ ...resnet, m, block });
      expect(inflow).toBeLessThanOrEqual(MERGE_RATE);
      // The inflow is the job's result entries over its time: nF x (G's ranges of span blocks) + nG x (F's).
      expect(inflow).toBeCloseTo((2 * n * Math.ceil(blocks(block) / span)) / seconds(m), 0);
      // The smallest span that does it and computes for 1 s at least on a 30 TFLOP/s worker, with 8 super-tiles per worker.
      expect((2 * m * (span * block) ** 2) / 30e12).toBeGreaterThanOrEqual(1);
      expect(span).toBeLessThanOrEqual(most(block));
      const smaller = superTileSize({ ...resnet, m, block, superTile: (span - 1) * block }).inflow;
      expect(smaller > MERGE_RATE || (2 * m * ((span - 1) * block) ** 2) / 30e12 < 1).toBe(true);
    }
  });

  it('at M = 10 it stops at 8 super-tiles per worker and says the inflow it expects', () => {
    const { span, inflow } = superTileSize({ ...resnet, m: 10, block: 8192 });
    expect(span).toBe(most(8192));
    expect(inflow).toBeGreaterThan(MERGE_RATE);
  });

  it("counts the entries and the workers' seconds the inflow is made of", () => {
    const { inflow, entries, seconds: s } = superTileSize({ ...resnet, m: 100, block: 4512 });
    expect(s).toBeCloseTo(seconds(100), 6);
    expect(inflow).toBeCloseTo(entries / s, 0);
  });

  it('takes a side given by the user, in whole blocks, of any size (results travel in parts)', () => {
    expect(superTileSize({ ...resnet, m: 100, block: 100, superTile: 950 }).span).toBe(9);
    expect(superTileSize({ ...resnet, m: 100, block: 100, superTile: 50 }).span).toBe(1);
    expect(superTileSize({ ...resnet, m: 100, block: 100, superTile: 5_000_000 }).span).toBe(50_000);
  });
});

describe('the coordinator-bound warning', () => {
  const layers = architectureLayers('resnet152', 224, 1, false).map((l) => l.shape.reduce((a, b) => a * b, 1));
  const resnet = { f: layers, g: layers, workers: 16, superTile: undefined };
  // What this repository's 2-core machine measures (21M entries/s in JobProgress.accept).
  const measured = 21e6;
  const logger = () => {
    const warnings: { fields: Record<string, unknown>; message: string }[] = [];
    const log = {
      info: () => undefined,
      debug: () => undefined,
      warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }),
    };
    return { log: log as unknown as Parameters<typeof warnIfCoordinatorBound>[2], warnings };
  };

  it('a small job never warns, whatever its planned inflow and however slow the merge', () => {
    // 264 x 464 neurons on one worker (the plan assumes GPUs, so the inflow is billions of entries/s): its results merge in microseconds.
    const small = { m: 24, f: [100, 100, 64], g: [200, 264], block: 16, workers: 1, superTile: undefined };
    const size = superTileSize(small);
    expect(size.inflow).toBeGreaterThan(1e9);
    for (const rate of [measured, 1e5]) expect(coordinatorBound(size, rate)).toBeNull();
    const { log, warnings } = logger();
    expect(warnIfCoordinatorBound(small, 1e5, log)).toBe(false);
    expect(warnings).toEqual([]);
  });

  it('warns when the inflow exceeds the measured rate on a job that takes the coordinator seconds, and says what it assumed and measured', () => {
    const m10 = { ...resnet, m: 10, block: 8192 };
    const size = superTileSize(m10);
    const bound = coordinatorBound(size, measured)!;
    expect(bound).toMatchObject({ inflow: size.inflow, sustained: measured * MERGE_SHARE, workerSeconds: size.seconds });
    expect(bound.coordinatorSeconds).toBeCloseTo(size.entries / (measured * MERGE_SHARE), 6);
    expect(bound.coordinatorSeconds).toBeGreaterThan(Math.max(BOUND_SECONDS, size.seconds));
    const { log, warnings } = logger();
    expect(warnIfCoordinatorBound(m10, measured, log)).toBe(true);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.fields).toMatchObject({ workers: 16, mergeRate: measured, sustained: measured * MERGE_SHARE });
    expect(warnings[0]!.message).toMatch(/^sized for 16 workers \(cluster.workers, --workers\) of 30 TFLOP\/s each/);
    expect(warnings[0]!.message).toMatch(/41.3M entries\/s, more than this coordinator takes in: about 6.3M\/s \(its merge alone measured 21.0M\/s here/);
    expect(warnings[0]!.message).toMatch(
      /the coordinator's pace, about 53.2 s against the workers' 8.1 s \(super-tiles are as large as 8 per worker allows\)$/,
    );
    // A coordinator that merges 10x faster keeps up; so does one at M = 100, where the workers take 81 s.
    expect(coordinatorBound(size, 10 * measured)).toBeNull();
    expect(coordinatorBound(superTileSize({ ...resnet, m: 100, block: 4512 }), measured)).toBeNull();
  });

  it('the plan does not depend on the measurement: the same span whether the coordinator warns or not', () => {
    const m10 = { ...resnet, m: 10, block: 8192 };
    const { log } = logger();
    const before = superTileSize(m10);
    warnIfCoordinatorBound(m10, measured, log);
    warnIfCoordinatorBound(m10, 1e12, log);
    expect(superTileSize(m10)).toEqual(before);
  });

  it("measures this machine's merge in tens of milliseconds", () => {
    const t = performance.now();
    const rate = measureMergeRate({ layers: [layers.length, layers.length], partEntries: partEntriesFor(1 << 20) });
    expect(performance.now() - t).toBeLessThan(1000);
    expect(Number.isFinite(rate) && rate > 0).toBe(true);
    // Parts of one entry (a tiny max_payload) still finish within the window.
    expect(measureMergeRate({ layers: [1, 1], partEntries: 1, budgetMs: 5 })).toBeGreaterThan(0);
  });
});
