/** `neurocorr plan`'s time estimate: its breakdown and the pieces behind it, checked for shape and arithmetic, never for this machine's speed. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scaledShape } from '../dist/coordinator/plan-tiles.js';
import { fillUntimed, kernelTime, shapeClasses } from '../dist/coordinator/plan-cost.js';
import { planPair } from '../dist/shared/formats/index.js';
import { operands, outOfCoreSchedule, planJob, type JobPlan, type StreamedSide } from '../dist/shared/job/index.js';
import { genModel, writeNpyDir } from './helpers/models.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'neurocorr.js');

interface PlanJson {
  seconds: number;
  gflopsPerSecond: number;
  breakdown: { kernel: { main: number; null: number }; load: number; fixed: number };
  calibration: {
    block: number;
    tiles: { main: number; null: number };
    shapes: number;
    timed: number;
    loadNanoseconds: [number, number];
    startUp: number;
    pool: number;
    seconds: number;
  };
}

const F = writeNpyDir(genModel(21, { m: 16, layers: [[300], [130]] }));
const G = writeNpyDir(genModel(22, { m: 16, layers: [[250], [40], [90]] }));
const PAIR = { conv: 'units', layers: null, layersF: null, layersG: null, sample: null, probes: null } as const;

function jobOf(block: number, nul: { permutations: number; sample: number; seed: number }): JobPlan {
  const pair = planPair(F, G, PAIR);
  return planJob([pair.f.skeleton(), pair.g.skeleton()], [{ f: 0, g: 1 }], { block, nulls: [nul] });
}

function plan(args: string[]): PlanJson {
  const r = spawnSync(process.execPath, [BIN, 'plan', F, G, '--json', ...args], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as PlanJson;
}

describe('plan: the time estimate', () => {
  it('breaks its seconds down into start-up, loading, main and null tiles, for the tiles the run would compute', () => {
    const p = plan(['--null', '2', '--null-sample', '10']);
    const { kernel, load, fixed } = p.breakdown;
    for (const v of [kernel.main, kernel.null, load, fixed]) {
      expect(typeof v).toBe('number');
      expect(Number.isFinite(v)).toBe(true);
      expect(v).toBeGreaterThan(0);
    }
    expect(p.seconds).toBeCloseTo(fixed + load + kernel.main + kernel.null, 9);
    const c = p.calibration;
    expect(Number.isInteger(c.block) && c.block > 0).toBe(true);
    const job = jobOf(c.block, { permutations: 2, sample: 10, seed: 1 });
    const main = job.tiles.filter((t) => t.kind === 'main').length;
    expect(c.tiles).toEqual({ main, null: job.tiles.length - main });
    expect(c.shapes).toBe(shapeClasses(job).classes.length);
    expect(c.timed).toBeGreaterThanOrEqual(1);
    expect(c.timed).toBeLessThanOrEqual(c.shapes);
    expect(c.loadNanoseconds.every((ns) => ns > 0)).toBe(true);
    expect(c.startUp).toBe(fixed);
    expect(c.pool).toBeGreaterThan(0);
    expect(c.seconds).toBeGreaterThan(0);
    expect(p.gflopsPerSecond).toBeGreaterThan(0);

    const off = plan(['--null', '0']);
    expect(off.breakdown.kernel.null).toBe(0);
    expect(off.calibration.tiles.null).toBe(0);
    expect(off.seconds).toBeCloseTo(off.breakdown.fixed + off.breakdown.load + off.breakdown.kernel.main, 9);

    const human = spawnSync(process.execPath, [BIN, 'plan', F, G, '--null', '0'], { encoding: 'utf8' });
    expect(human.stdout).toMatch(/about .+ in all = .+ start-up \+ .+ reading the inputs \+ .+ main tiles \+ .+ null tiles/);
  });

  it('groups tiles by kind and shape, most work first', () => {
    const job = jobOf(96, { permutations: 3, sample: 50, seed: 1 });
    const { classes, classOf } = shapeClasses(job);
    expect(classes.reduce((sum, c) => sum + c.tiles, 0)).toBe(job.tiles.length);
    job.tiles.forEach((tile, id) => {
      const c = classes[classOf[id]!]!;
      const { rows, cols } = operands(job, tile);
      expect([c.kind, c.rows, c.cols]).toEqual([tile.kind, rows.block.count, cols.block.count]);
    });
    const work = classes.map((c) => c.tiles * c.rows * c.cols);
    expect(work).toEqual([...work].sort((a, b) => b - a));
    // Layer edges make smaller tiles: 300 = 96 x 3 + 12, 130 = 96 + 34, and so on.
    expect(classes.some((c) => c.kind === 'main' && c.rows === 12)).toBe(true);
    expect(classes.some((c) => c.kind === 'null')).toBe(true);
  });

  it('schedules tiles on the threads and splits the wall time between main and null tiles', () => {
    const job = jobOf(96, { permutations: 3, sample: 50, seed: 1 });
    const shapes = shapeClasses(job);
    const ones = shapes.classes.map(() => 1);
    const mainTiles = job.tiles.filter((t) => t.kind === 'main').length;
    for (const threads of [1, 2, 3, 8]) {
      const t = kernelTime(job, shapes, ones, threads);
      expect(t.main + t.null).toBeCloseTo(Math.ceil(job.tiles.length / threads), 9);
      expect(t.main / (t.main + t.null)).toBeCloseTo(mainTiles / job.tiles.length, 9);
    }
    // The main thread's work (merging results, gathering null samples) comes on top of the threads'.
    const n = job.tiles.length;
    const serial = kernelTime(job, shapes, ones, 2, { main: 3, null: 5 });
    expect(serial.main).toBeCloseTo((Math.ceil(n / 2) * mainTiles) / n + 3, 9);
    expect(serial.null).toBeCloseTo((Math.ceil(n / 2) * (n - mainTiles)) / n + 5, 9);
    // With a core to spare the main thread's work overlaps the threads': each kind takes the longer of the two.
    const spare = kernelTime(job, shapes, ones, 1, { main: 3, null: 1e6 }, 2);
    expect(spare.main).toBeCloseTo(Math.max((n * mainTiles) / n, 3), 9);
    expect(spare.null).toBe(1e6);
    // One long tile and many short ones: the long one bounds the wall time.
    const long = shapes.classes.map((_, k) => (k === 0 ? 100 : 0.001));
    expect(kernelTime(job, shapes, long, 4).main + kernelTime(job, shapes, long, 4).null).toBeGreaterThanOrEqual(100);
  });

  it('scales untimed shapes from the nearest timed one of their kind, by pairs', () => {
    const classes = [
      { kind: 'main', rows: 1000, cols: 1000, tiles: 4 },
      { kind: 'null', rows: 4000, cols: 100, tiles: 4 },
      { kind: 'main', rows: 1000, cols: 500, tiles: 2 },
      { kind: 'null', rows: 2000, cols: 100, tiles: 2 },
    ] as const;
    expect(fillUntimed(classes, [2, 1, null, null])).toEqual([2, 1, 1, 0.5]);
    expect(() => fillUntimed(classes, [null, null, null, null])).toThrow(RangeError);
  });

  it('times big shapes at a smaller size, cutting the longer side first', () => {
    expect(scaledShape(500, 400, 64, 1e9)).toEqual({ rows: 500, cols: 400, m: 64 });
    const s = scaledShape(12544, 500, 64, 1e8);
    expect(s.cols).toBe(500);
    expect(s.rows * s.cols * s.m).toBeLessThanOrEqual(1e8);
    const square = scaledShape(4896, 4896, 64, 1e8);
    expect(square.rows).toBe(square.cols);
    expect(square.rows * square.cols * 64).toBeLessThanOrEqual(1e8);
    // Samples are cut only once both sides are down to a panel.
    const wide = scaledShape(128, 128, 50176, 1e8);
    expect([wide.rows, wide.cols]).toEqual([96, 96]);
    expect(wide.m).toBeLessThan(50176);
  });
});

describe('out-of-core schedule', () => {
  const pair = planPair(F, G, PAIR);
  const models = [pair.f.skeleton(), pair.g.skeleton()];
  // Shards of 40 neurons (fewer at a layer's end), 100 bytes of file per neuron.
  const sideOf = (n: number, layers: readonly { start: number; count: number }[]): StreamedSide => {
    const shards = layers.flatMap((l) =>
      Array.from({ length: Math.ceil(l.count / 40) }, (_, i) => ({
        first: l.start + i * 40,
        count: Math.min(40, l.count - i * 40),
        bytes: 100 * Math.min(40, l.count - i * 40),
      })),
    );
    expect(shards.reduce((sum, s) => sum + s.count, 0)).toBe(n);
    return { shards, m: 16, bufferBytes: 40 * 16 * 4 };
  };
  const f = sideOf(models[0]!.n, models[0]!.layers);
  const g = sideOf(models[1]!.n, models[1]!.layers);
  const job = planJob(models, [{ f: 0, g: 1 }], {
    block: 16,
    nulls: [{ permutations: 2, sample: 30, seed: 4 }],
    cuts: [f.shards.map((s) => s.first), g.shards.map((s) => s.first)],
  });

  it('runs every tile of the plan once, ids unchanged, a resident range per pass and one streamed shard per group', () => {
    const memory = 6 * 2560;
    for (const [fSide, gSide, keepSamples] of [
      [f, g, true],
      [f, g, false],
      [f, null, true],
      [null, g, true],
    ] as const) {
      const s = outOfCoreSchedule(job, { f: fSide, g: gSide, memory, keepSamples })!;
      const order = [...s.passes.flatMap((p) => p.groups.flat()), ...s.tail];
      expect(order.map((t) => t.id).sort((a, b) => a - b)).toEqual(job.tiles.map((t) => t.id));
      for (const tile of order) expect(tile).toBe(job.tiles[tile.id]);
      expect(s.tail.length).toBe(keepSamples ? 0 : job.tiles.filter((t) => t.kind === 'null').length);
      expect(s.lowerBound).toBeLessThanOrEqual(s.planned);
      const held = s.resident === 'F' ? fSide : gSide;
      const streamed = s.resident === 'F' ? gSide : fSide;
      const shardOf = (side: StreamedSide, start: number) => side.shards.findLastIndex((x) => x.first <= start);
      if (held !== null) {
        // Ranges follow one another and cover the resident side; each fits beside a window of two streamed buffers.
        expect(s.passes.map((p) => p.hold![0])).toEqual([0, ...s.passes.slice(0, -1).map((p) => p.hold![1])]);
        expect(s.passes.at(-1)!.hold![1]).toBe(held.shards.length);
        expect(s.arena).toBeLessThanOrEqual(memory - (streamed === null ? 0 : 2 * streamed.bufferBytes));
      }
      s.passes.forEach((p, r) => {
        for (const group of p.groups) {
          const streamedShards = new Set<number>();
          for (const tile of group) {
            const resident = tile.kind === 'main' ? (s.resident === 'F' ? tile.f : tile.g) : null;
            if (tile.kind === 'super') throw new Error('an embedded plan has no super-tiles');
            const other = tile.kind === 'main' ? (s.resident === 'F' ? tile.g : tile.f) : tile.other;
            if (resident !== null && held !== null) {
              const k = shardOf(held, resident.start);
              expect(k >= p.hold![0] && k < p.hold![1]).toBe(true);
            }
            const againstResident = tile.kind === 'null' && tile.side === (s.resident === 'F' ? 1 : 0);
            if (streamed !== null && !againstResident) streamedShards.add(shardOf(streamed, other.start));
          }
          expect(streamedShards.size).toBeLessThanOrEqual(1);
        }
        // The null's tiles against the streamed side ride in the last pass only.
        if (r < s.passes.length - 1) expect(p.groups.flat().some((t) => t.kind === 'null' && t.side === (s.resident === 'F' ? 0 : 1))).toBe(false);
      });
      if (fSide !== null && gSide !== null) {
        expect(s.passes.length).toBeGreaterThan(1);
        expect(s.planned).toBe(f.shards.reduce((a, x) => a + x.bytes, 0) + s.passes.length * g.shards.reduce((a, x) => a + x.bytes, 0));
      }
    }
    expect(outOfCoreSchedule(job, { f: null, g: null, memory: 1 << 20, keepSamples: true })).toBeNull();
  });
});
