/**
 * How fast this coordinator folds super-tile results into a job's state: a
 * short calibration of the real merge (JobProgress.accept on parts of the
 * job's size), on a synthetic job with the job's layer counts and a state
 * larger than the caches, as a real job's is (merging into a state the
 * caches hold measured twice as fast). Only the coordinator's warning uses
 * it (job-spec.ts, coordinatorBound): a job's plan never depends on a
 * measurement, since a resumed job and its workers must plan it identically.
 */
import { createRng, type LayerInfo, type Model } from '../../shared/core/index.js';
import { JobProgress, pairNulls, planJob, superEntries, type JobPlan, type SuperTile } from '../../shared/job/index.js';

/** Neurons per model of the synthetic job: about 17 MB of state, allocated once. */
const NEURONS = 1 << 18;
/** Its blocks, and blocks per super-tile side (ranges of about 65,536 neurons, 16 super-tiles). */
const BLOCK = 4096;
const SPAN = 16;
export const CALIBRATION_MS = 40;

export interface MergeRateInput {
  /** Layers of F and of G in the job (a partner is looked up by layer, so more layers cost more). */
  readonly layers: readonly [number, number];
  /** Entries per part of a result, as the job's spec cuts them. */
  readonly partEntries: number;
  /** Milliseconds to merge for. */
  readonly budgetMs?: number;
}

/**
 * Result entries per second JobProgress.accept folds in on this machine, now:
 * the median rate of the parts merged in the second half of the window
 * (the merge is compiled concurrently, on cores shared with other work, so
 * the first parts run slower than a long job's do).
 */
export function measureMergeRate(o: MergeRateInput): number {
  const plan = calibrationPlan(o.layers);
  const tiles = plan.tiles as SuperTile[];
  const template = syntheticValues(Math.min(o.partEntries, Math.max(...tiles.map(superEntries))));
  const progress = new JobProgress(plan);
  const begin = performance.now();
  const end = begin + (o.budgetMs ?? CALIBRATION_MS);
  const late: number[] = [];
  let last = 0;
  for (const tile of tiles) {
    const total = superEntries(tile);
    for (let offset = 0; offset < total && performance.now() < end; offset += template.best.length) {
      const count = Math.min(template.best.length, total - offset);
      const t = performance.now();
      progress.accept(tile, { kind: 'part', part: template.part(offset, count), constant: template.constant.subarray(0, count), seconds: 0 });
      const ms = Math.max(performance.now() - t, 1e-3);
      last = (count * 1000) / ms;
      if (t - begin >= (end - begin) / 2) late.push(last);
    }
  }
  // A part longer than half the window: the last one is all there is.
  return late.length > 0 ? median(late) : last;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Two models of NEURONS neurons cut into the job's layer counts (at most one neuron a layer), in super-tiles. */
function calibrationPlan([f, g]: readonly [number, number]): JobPlan {
  const models = [layout(f), layout(g)];
  const pairs = [{ f: 0, g: 1 }];
  return planJob(models, pairs, { block: BLOCK, span: SPAN, nulls: pairNulls(null, models, pairs) });
}

function layout(layerCount: number): Model {
  const count = Math.max(1, Math.min(layerCount, NEURONS));
  const size = Math.floor(NEURONS / count);
  const layers: LayerInfo[] = Array.from({ length: count }, (_, k) => {
    const n = k === count - 1 ? NEURONS - size * k : size;
    return { name: `l${k}`, source: '', shape: [n], start: size * k, count: n, total: n, depth: k, constant: 0 };
  });
  return { path: '', probes: 1, m: 1, n: NEURONS, layers, z: new Float32Array(0), constant: new Uint8Array(NEURONS), ids: null, fingerprint: null };
}

/** One part's worth of random |rho| and partners anywhere in the other model (a super-tile's ranges cross layers), reused for every part. */
function syntheticValues(size: number) {
  const rng = createRng(0x6d657267);
  const best = new Float64Array(size);
  const arg = new Uint32Array(size);
  for (let k = 0; k < size; k++) {
    best[k] = rng();
    arg[k] = Math.floor(rng() * NEURONS);
  }
  const part = (offset: number, count: number) => {
    const [b, a] = [best.subarray(0, count), arg.subarray(0, count)];
    return { offset, best: b, arg: a, penRho: b, penArg: a };
  };
  return { best, part, constant: new Uint8Array(size) };
}
