/**
 * `neurocorr plan` times the job's kernel work on the job's own pool, with
 * every thread busy (so a tile's time includes the hand-off and what the
 * threads cost each other):
 *
 * - every distinct tile shape of the job (plan-cost.ts), most work first,
 *   within a budget; a shape too big for it is timed at a smaller size that
 *   runs as efficiently and scaled by its pairs; shapes left when the budget
 *   is spent take the time per pair of the nearest shape timed.
 */
import type { EmbeddedPool } from '../worker/pool.js';
import type { ShapeClass } from './plan-cost.js';

/** Wall seconds spent timing tiles, after the first shape of each kind. */
export const TILE_BUDGET_SECONDS = 0.8;
/** One timed tile should take about this long on one thread. */
const TILE_TARGET_SECONDS = 0.006;
/** The shapes with the most work are timed in three rounds, and again after the others. */
const TOP = 4;
/** Operand floats a timed shape may use (16 MiB). */
const MAX_FLOATS = 4 << 20;
/** Whole register panels of either SIMD variant (shared/tiles/blocking.ts). */
const PANEL = 96;

export interface Shape {
  readonly rows: number;
  readonly cols: number;
  readonly m: number;
}

export interface TileCalibration {
  /** Seconds of one tile of each class, on one thread while every thread computes; null where the budget ran out first. */
  readonly seconds: readonly (number | null)[];
  /** Wall seconds spent timing. */
  readonly wall: number;
}

/** Deterministic values in [-1, 1): what they are does not change a tile's time. */
export function fill<T extends Float32Array>(a: T, seed: number): T {
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
export function scaledShape(rows: number, cols: number, m: number, units: number): Shape {
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
 * tiles per thread in flight, as the embedded run does; after a warm-up
 * round the best of two or three counts, and the shapes with the most work
 * are timed a second time after the others (the better of the two counts).
 * Main tiles reuse their packed rows (`fKey`), as consecutive tiles of one F
 * block do; null tiles pack theirs every time.
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
  const timedAs: (Shape | null)[] = [];
  const seen = new Set<string>();
  for (const [k, shape] of classes.entries()) {
    const elapsed = (performance.now() - started) / 1000;
    if (elapsed > budget && seen.has(shape.kind)) {
      seconds.push(null);
      timedAs.push(null);
      continue;
    }
    seen.add(shape.kind);
    const key = shape.kind === 'main' ? k + 1 : 0;
    // A scaled shape is re-scaled while it takes well under the target: the first guess comes from a hand-off-bound tile.
    for (let tries = 0; ; tries++) {
      const s = scaledShape(shape.rows, shape.cols, m, TILE_TARGET_SECONDS / perUnit);
      await round(s.rows, s.cols, s.m, key);
      // The best of two rounds (three for the shapes with the most work), which a neighbour's burst rarely spoils twice.
      let best = Infinity;
      for (let r = k < TOP ? 3 : 2; r > 0; r--) best = Math.min(best, await round(s.rows, s.cols, s.m, key));
      perUnit = best / (s.rows * s.cols * s.m);
      const whole = s.rows === shape.rows && s.cols === shape.cols && s.m === m;
      if (whole || best > TILE_TARGET_SECONDS / 3 || tries === 2) {
        seconds.push(perUnit * shape.rows * shape.cols * m);
        timedAs.push(s);
        break;
      }
    }
  }
  // The shapes with the most work once more, a while later: a neighbour busy for a moment rarely spoils both passes.
  for (const [k, shape] of classes.slice(0, TOP).entries()) {
    const s = timedAs[k];
    if (!s) continue;
    const key = shape.kind === 'main' ? k + 1 : 0;
    await round(s.rows, s.cols, s.m, key);
    const best = Math.min(await round(s.rows, s.cols, s.m, key), await round(s.rows, s.cols, s.m, key));
    seconds[k] = Math.min(seconds[k]!, (best / (s.rows * s.cols * s.m)) * shape.rows * shape.cols * m);
  }
  return { seconds, wall: (performance.now() - started) / 1000 };
}
