/**
 * What `neurocorr plan` predicts from a job's tile plan, with no timing in
 * it: the tiles grouped by shape (so each distinct shape is timed once), and
 * the kernel's wall time from per-shape tile times, scheduled in plan order
 * on the job's threads as the embedded run schedules them. The timing itself
 * is in plan-calibrate.ts.
 */
import { operands, type JobPlan } from '../shared/job/index.js';

/** A distinct tile shape of a job: kernel rows x columns at the job's m, and whether the rows block is reused. */
export interface TileShape {
  readonly kind: 'main' | 'null';
  readonly rows: number;
  readonly cols: number;
}

export interface ShapeClass extends TileShape {
  /** Tiles of this shape in the plan. */
  readonly tiles: number;
}

export interface ShapeClasses {
  /** Most work (tiles x rows x cols) first. */
  readonly classes: readonly ShapeClass[];
  /** Each tile's class, by tile id. */
  readonly classOf: Uint32Array;
}

/** The plan's tiles grouped by kind and kernel shape (rows x cols, as operands() orients them). */
export function shapeClasses(plan: JobPlan): ShapeClasses {
  const index = new Map<string, number>();
  const found: { shape: TileShape; tiles: number }[] = [];
  const first = new Uint32Array(plan.tiles.length);
  plan.tiles.forEach((tile, id) => {
    const { rows, cols } = operands(plan, tile);
    const kind = tile.kind === 'null' ? 'null' : 'main';
    const key = `${kind}:${rows.block.count}x${cols.block.count}`;
    let k = index.get(key);
    if (k === undefined) {
      index.set(key, (k = found.length));
      found.push({ shape: { kind, rows: rows.block.count, cols: cols.block.count }, tiles: 0 });
    }
    found[k]!.tiles++;
    first[id] = k;
  });
  const work = (c: { shape: TileShape; tiles: number }) => c.tiles * c.shape.rows * c.shape.cols;
  const order = found.map((_, k) => k).sort((a, b) => work(found[b]!) - work(found[a]!) || a - b);
  const rank = new Uint32Array(found.length);
  order.forEach((k, r) => (rank[k] = r));
  return {
    classes: order.map((k) => ({ ...found[k]!.shape, tiles: found[k]!.tiles })),
    classOf: first.map((k) => rank[k]!),
  };
}

/**
 * Seconds of every class from the classes that were timed: a class not timed
 * (the timing budget ran out) takes the time per pair of the nearest timed
 * class of its kind (by log rows and log columns), or of any kind.
 */
export function fillUntimed(classes: readonly ShapeClass[], timed: readonly (number | null)[]): number[] {
  const known = classes.map((c, k) => ({ c, s: timed[k] ?? null })).filter((e): e is { c: ShapeClass; s: number } => e.s !== null);
  if (known.length === 0) throw new RangeError('no tile shape was timed');
  const distance = (a: TileShape, b: TileShape) => Math.abs(Math.log(a.rows / b.rows)) + Math.abs(Math.log(a.cols / b.cols)) + (a.kind === b.kind ? 0 : 100);
  return classes.map((c, k) => {
    const own = timed[k];
    if (own !== undefined && own !== null) return own;
    let best = known[0]!;
    for (const e of known) if (distance(c, e.c) < distance(c, best.c)) best = e;
    return (best.s * c.rows * c.cols) / (best.c.rows * best.c.cols);
  });
}

export interface KernelTime {
  /** Wall seconds of the tiles, split between main and null tiles by their share of the work. */
  readonly main: number;
  readonly null: number;
}

/** What the main thread does for the tiles while the kernel threads compute, in seconds: merging results, gathering null samples. */
export interface MainThread {
  readonly main: number;
  readonly null: number;
}

/**
 * The tiles' wall time. Tiles are taken in plan order by whichever thread is
 * free first (list scheduling, as the pool takes them), each costing its
 * class's seconds (one thread's time while every thread computes). The
 * makespan is split between main and null tiles by their share. The main
 * thread's work for them runs while the threads compute: where the threads
 * fill the cores it takes their cores and memory bandwidth and comes on top
 * (measured: a run's tiles take about the threads' makespan plus this work);
 * where a core is left over (`cores` > `threads`, as in a small job) it
 * overlaps them, and each kind takes the longer of the two.
 */
export function kernelTime(
  plan: JobPlan,
  shapes: ShapeClasses,
  seconds: readonly number[],
  threads: number,
  serial: MainThread = { main: 0, null: 0 },
  cores = threads,
): KernelTime {
  const free = new Float64Array(Math.max(1, threads));
  let main = 0;
  let nul = 0;
  plan.tiles.forEach((tile, id) => {
    const s = seconds[shapes.classOf[id]!]!;
    if (tile.kind === 'main') main += s;
    else nul += s;
    // free[0] is the earliest free thread (a binary min-heap).
    free[0] = free[0]! + s;
    siftDown(free);
  });
  const makespan = Math.max(...free);
  const total = main + nul;
  const [a, b] = total === 0 ? [0, 0] : [(makespan * main) / total, (makespan * nul) / total];
  if (cores > threads) return { main: Math.max(a, serial.main), null: Math.max(b, serial.null) };
  return { main: a + serial.main, null: b + serial.null };
}

function siftDown(heap: Float64Array): void {
  for (let i = 0; ;) {
    const [l, r] = [2 * i + 1, 2 * i + 2];
    let least = i;
    if (l < heap.length && heap[l]! < heap[least]!) least = l;
    if (r < heap.length && heap[r]! < heap[least]!) least = r;
    if (least === i) return;
    [heap[i], heap[least]] = [heap[least]!, heap[i]!];
    i = least;
  }
}
