/**
 * The measurements behind `neurocorr plan`'s time estimate, each on this
 * machine and each bounded:
 *
 * - tiles: every distinct tile shape of the job (plan-cost.ts), most work
 *   first, timed on the job's own pool with every thread busy (so the time
 *   per tile includes the hand-off and what the threads cost each other);
 *   a shape too big for the budget is timed on fewer rows, then fewer
 *   columns, and scaled by its pairs; shapes left when the budget is spent
 *   take the time per pair of the nearest shape timed;
 * - loading: a synthetic replica of each model (its layers with the same
 *   samples per neuron, scaled down to about 2^21 values in all) read and
 *   standardized into fresh memory the way the run reads its inputs;
 * - start-up: a fresh Node process loading the scoring modules, and the pool
 *   starting and stopping its threads (timed by the caller).
 */
import { spawnSync } from 'node:child_process';
import type { ConvMode, Model } from '../shared/core/index.js';
import { planModel, type Allocate, type RawLayer, type RawModel, type StandardizeLoops } from '../shared/formats/index.js';
import type { EmbeddedPool } from '../worker/pool.js';
import type { ShapeClass } from './plan-cost.js';

/** Wall seconds spent timing tiles, after the first shape of each kind. */
export const TILE_BUDGET_SECONDS = 0.8;
/** One timed tile should take about this long on one thread. */
const TILE_TARGET_SECONDS = 0.006;
/** Operand floats a timed shape may use (16 MiB). */
const MAX_FLOATS = 4 << 20;
/** Values in a model's loading replica. */
const REPLICA_VALUES = 1 << 21;
/** What a process start took on the development VM, for when no child process can be started. */
const FALLBACK_PROCESS_SECONDS = 0.15;
/** Whole register panels of either SIMD variant (shared/tiles/blocking.ts). */
const PANEL = 96;

export interface TileCalibration {
  /** Seconds of one tile of each class, on one thread while every thread computes; null where the budget ran out first. */
  readonly seconds: readonly (number | null)[];
  /** Wall seconds spent timing. */
  readonly wall: number;
}

/** Deterministic values in [-1, 1): what they are does not change a tile's time. */
function fill<T extends Float32Array>(a: T, seed: number): T {
  let x = seed >>> 0 || 1;
  for (let i = 0; i < a.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    a[i] = x / 2 ** 31 - 1;
  }
  return a;
}

const roundDown = (v: number, step: number) => Math.floor(v / step) * step;

/**
 * A shape of at most `units` pairs x samples (and MAX_FLOATS of operands)
 * that runs as efficiently as the shape it stands for: the kernel's speed
 * depends on the shorter side (how far each packed panel is reused), so the
 * longer side is cut first, down to the shorter, then both alike; samples
 * are cut only when both sides are down to a panel.
 */
export function scaledShape(rows: number, cols: number, m: number, units: number): { rows: number; cols: number; m: number } {
  const cut = (v: number, from: number) => (v >= from ? from : Math.max(Math.min(from, PANEL), roundDown(v, PANEL)));
  let [r, c, mm] = [rows, cols, m];
  if (r * c * mm > units) {
    const pairs = units / mm;
    const short = Math.min(r, c);
    const long = Math.max(short, pairs / short);
    const side = Math.sqrt(pairs);
    [r, c] = r >= c ? [cut(long, r), c] : [r, cut(long, c)];
    if (r * c * mm > units) [r, c] = [cut(side, r), cut(side, c)];
  }
  if (r * c * mm > 4 * units) mm = Math.max(Math.min(m, 64), Math.floor(units / (r * c)));
  mm = Math.max(1, Math.min(mm, Math.floor(MAX_FLOATS / (r + c))));
  return { rows: r, cols: c, m: mm };
}

/**
 * Times every class on `pool` (see the module comment). A round puts two
 * tiles per thread in flight, as the embedded run does; after a warm-up round
 * the best of two counts. Main tiles reuse their packed rows (`fKey`), as
 * consecutive tiles of one F block do; null tiles pack theirs every time.
 */
export async function timeTiles(pool: EmbeddedPool, classes: readonly ShapeClass[], m: number, budget = TILE_BUDGET_SECONDS): Promise<TileCalibration> {
  const started = performance.now();
  const count = 2 * pool.threads;
  let data = new Float32Array(new SharedArrayBuffer(0));
  const operandsOf = (r: number, c: number, mm: number) => {
    const gs = Math.max(1, Math.min(count, Math.floor((MAX_FLOATS / mm - r) / c)));
    const need = (r + gs * c) * mm;
    if (data.length < need) data = fill(new Float32Array(new SharedArrayBuffer(need * 4)), need);
    return { f: data.subarray(0, r * mm), g: Array.from({ length: gs }, (_, i) => data.subarray((r + i * c) * mm, (r + (i + 1) * c) * mm)) };
  };
  const round = async (r: number, c: number, mm: number, key: number): Promise<number> => {
    const { f, g } = operandsOf(r, c, mm);
    const t = performance.now();
    await Promise.all(
      Array.from({ length: count }, (_, i) =>
        pool.run({ f, g: g[i % g.length]!, fCount: r, gCount: c, m: mm, fStart: 0, gStart: 0, ...(key !== 0 ? { fKey: key } : {}) }),
      ),
    );
    // One thread's time per tile while every thread computes.
    return ((performance.now() - t) / 1000) * (pool.threads / count);
  };
  // A tiny tile first, for a first guess of the time per pair-sample (it overestimates: the hand-off dominates).
  const probe = Math.min(m, 256);
  let perUnit = (await round(32, 32, probe, 0)) / (32 * 32 * probe);
  const seconds: (number | null)[] = [];
  const seen = new Set<string>();
  for (const [k, shape] of classes.entries()) {
    const elapsed = (performance.now() - started) / 1000;
    if (elapsed > budget && seen.has(shape.kind)) {
      seconds.push(null);
      continue;
    }
    seen.add(shape.kind);
    const key = shape.kind === 'main' ? k + 1 : 0;
    // A scaled shape is re-scaled while it takes well under the target: the first guess comes from a hand-off-bound tile.
    for (let tries = 0; ; tries++) {
      const s = scaledShape(shape.rows, shape.cols, m, TILE_TARGET_SECONDS / perUnit);
      await round(s.rows, s.cols, s.m, key);
      const best = Math.min(await round(s.rows, s.cols, s.m, key), await round(s.rows, s.cols, s.m, key));
      perUnit = best / (s.rows * s.cols * s.m);
      const whole = s.rows === shape.rows && s.cols === shape.cols && s.m === m;
      if (whole || best > TILE_TARGET_SECONDS / 3 || tries === 2) break;
    }
    seconds.push(perUnit * shape.rows * shape.cols * m);
  }
  return { seconds, wall: (performance.now() - started) / 1000 };
}

/** A layer of synthetic values read the way a layer file is: each read copied into one reusable buffer. */
function replicaLayer(index: number, probes: number, neurons: number, spatial: number, scratch: { buffer: Float32Array }): RawLayer {
  const perProbe = neurons * spatial;
  const data = fill(new Float32Array(probes * perProbe), index + 7);
  return {
    name: `replica${index}`,
    depth: null,
    source: 'calibration',
    shape: spatial > 1 ? [probes, neurons, spatial] : [probes, neurons],
    dtype: 'f4',
    layout: 'nchw',
    read(start, count, from = 0, width = perProbe) {
      if (scratch.buffer.length < count * width) scratch.buffer = new Float32Array(Math.max(count * width, 2 * scratch.buffer.length));
      const out = scratch.buffer.subarray(0, count * width);
      for (let r = 0; r < count; r++) out.set(data.subarray((start + r) * perProbe + from, (start + r) * perProbe + from + width), r * width);
      return out;
    },
  };
}

export interface LoadCalibration {
  /** Seconds per value (neuron x sample) to read and standardize a model shaped like this one. */
  readonly standardize: number;
  /** Seconds per value to copy values into fresh memory (what reading a shard set costs at least). */
  readonly copy: number;
}

/**
 * Reads and standardizes a replica of `model` (same samples per neuron and
 * layer proportions, about REPLICA_VALUES values) into fresh memory from
 * `allocate`, as the run reads its inputs.
 */
export function timeLoading(model: Model, conv: ConvMode, allocate: Allocate, loops?: StandardizeLoops): LoadCalibration {
  const spatial = conv === 'channels' ? model.m / model.probes : 1;
  const scale = Math.min(1, REPLICA_VALUES / Math.max(1, model.n * model.m));
  const scratch = { buffer: new Float32Array(0) };
  const layers = model.layers.map((l, k) => replicaLayer(k, model.probes, Math.max(1, Math.round(l.count * scale)), spatial, scratch));
  const raw: RawModel = { path: 'calibration', layers, fingerprint: null };
  const plan = planModel(raw, { conv, probes: null, layers: null, sample: null, ...(loops ? { loops } : {}) });
  const values = plan.n * plan.m;
  let t = performance.now();
  const z = new Float32Array(allocate(values * 4));
  plan.build(z);
  const standardize = (performance.now() - t) / 1000 / values;
  t = performance.now();
  new Float32Array(allocate(values * 4)).set(z);
  return { standardize, copy: (performance.now() - t) / 1000 / values };
}

/** Wall seconds of a fresh Node process that loads the scoring modules and exits: what a `neurocorr score` pays before its first step. */
export function timeProcessStart(): number {
  const modules = [new URL('./score.js', import.meta.url).href, import.meta.resolve('piscina')];
  const t = performance.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', modules.map((u) => `await import(${JSON.stringify(u)});`).join('\n')], {
    stdio: 'ignore',
    timeout: 20_000,
  });
  const seconds = (performance.now() - t) / 1000;
  return r.status === 0 ? seconds : FALLBACK_PROCESS_SECONDS;
}
