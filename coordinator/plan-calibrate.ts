/**
 * What `neurocorr plan` measures off the pool, each on this machine and
 * bounded (tiles are timed on the pool: plan-tiles.ts):
 *
 * - loading: a synthetic replica of each model (its layers, with the same
 *   samples per neuron, scaled down to about 2^21 values in all) read and
 *   standardized into fresh memory the way the run reads its inputs; for a
 *   shard set, a shard of it verified, decoded and checked;
 * - the main thread's work for the tiles: folding results into the
 *   reduction (on the job's own plan), and gathering null sample rows (from
 *   the replica);
 * - start-up: a fresh Node process scoring a tiny job on as many threads.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatherSample, planNull, type ConvMode, type Model } from '../shared/core/index.js';
import { JobProgress, operands, type JobPlan } from '../shared/job/index.js';
import { allocTileResult } from '../shared/tiles/index.js';
import {
  checkRows,
  decodeShard,
  encodeNpy,
  encodeShard,
  planModel,
  sha256,
  type Allocate,
  type RawLayer,
  type RawModel,
  type StandardizeLoops,
} from '../shared/formats/index.js';
import type { KernelOptions } from '../worker/kernel-options.js';
import type { ShapeClasses } from './plan-cost.js';
import { fill } from './plan-tiles.js';
import { prepare } from '../prepare/prepare.js';

/** Values in a model's loading replica. */
const REPLICA_VALUES = 1 << 21;
/** What a tiny `neurocorr score` took on the development VM, for when no child process can be started. */
const FALLBACK_START_UP_SECONDS = 0.4;

/**
 * Seconds the main thread spends folding tile results into the reduction
 * (JobProgress.merge), main and null tiles: timed on up to two tiles of each
 * shape of the job's own plan (256 in all), cold as in a run, and counted for
 * every tile.
 */
export function timeMerges(job: JobPlan, shapes: ShapeClasses): { main: number; null: number } {
  const progress = new JobProgress(job);
  const sampled = shapes.classes.map(() => [] as number[]);
  let left = 256;
  job.tiles.forEach((_, id) => {
    const list = sampled[shapes.classOf[id]!]!;
    if (left > 0 && list.length < 2) {
      list.push(id);
      left--;
    }
  });
  const total = { main: 0, null: 0 };
  // Seconds per pair (rows + columns) merged, for the shapes left unsampled.
  let perPair = 0;
  sampled.forEach((ids, k) => {
    const c = shapes.classes[k]!;
    if (ids.length === 0) {
      total[c.kind] += perPair * (c.rows + c.cols) * c.tiles;
      return;
    }
    const { rows, cols } = operands(job, job.tiles[ids[0]!]!);
    const result = allocTileResult(rows.block.count, cols.block.count);
    const constant = new Uint8Array(rows.block.count + cols.block.count);
    const t = performance.now();
    for (const id of ids) progress.accept(job.tiles[id]!, { kind: 'tile', result, constant: job.tiles[id]!.kind === 'main' ? constant : null, seconds: 0 });
    const each = (performance.now() - t) / 1000 / ids.length;
    perPair = each / (c.rows + c.cols);
    total[c.kind] += each * c.tiles;
  });
  return total;
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
  /** The replica, standardized: null samples are gathered from it. */
  readonly replica: Model;
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
  const t = performance.now();
  const replica = plan.build(new Float32Array(allocate(values * 4)));
  const standardize = (performance.now() - t) / 1000 / values;
  return { standardize, replica };
}

/**
 * Seconds per value to read a shard set: a shard of `replica` in memory,
 * verified (sha256), decoded into fresh memory and its rows checked, as a
 * shard set's stream reads each shard (warm: the tiny start-up job pays for
 * loading Arrow and a first decode).
 */
export function timeShardReading(replica: Model, allocate: Allocate): number {
  const { n, m } = replica;
  const bytes = encodeShard(0, n, m, replica.z, {});
  decodeShard(bytes, m, 'calibration');
  const t = performance.now();
  sha256(bytes);
  const { z } = decodeShard(bytes, m, 'calibration', new Float32Array(allocate(n * m * 4)));
  checkRows(z, m, 0, 'calibration', new Uint8Array(n));
  return (performance.now() - t) / 1000 / (n * m);
}

/** One gather of a null sample's rows (`values` of them), as the tile runner does it. */
export interface Gather {
  readonly values: number;
  run(): void;
}

/** Seconds per value of `gather` (one to warm up, then the best of three). */
export function timeGather(gather: Gather): number {
  gather.run();
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    gather.run();
    best = Math.min(best, performance.now() - t);
  }
  return best / 1000 / gather.values;
}

/**
 * A gather of about 2^20 values of a null sample of `replica`, permuted as
 * the tile runner does it: rows read in place from the model and copied
 * into a buffer that is reused (the runner recycles its gather buffers, so
 * fresh memory's page faults are not part of a gather).
 */
export function sampleGather(replica: Model): Gather {
  const { m } = replica;
  const count = Math.min(replica.n, Math.ceil(REPLICA_VALUES / 2 / m));
  const nul = planNull(replica, replica, { permutations: 1, sample: count, seed: 1 }, count, [[], []]);
  const row = (i: number) => replica.z.subarray(i * m, (i + 1) * m);
  const sample = { layer: 0, start: 0, count };
  const out = new Float32Array(new SharedArrayBuffer(count * m * 4));
  return {
    values: count * m,
    run: () => void gatherSample(nul, { k: 0, side: 0, sample }, row, out),
  };
}

/**
 * Wall seconds of a fresh Node process that scores a tiny job (a few
 * neurons, one per block, so that it runs on `threads` threads; a side is a
 * shard set where `shards` says so) with these kernel options, the better of
 * two: what a `neurocorr score` pays whatever
 * its size (starting Node and loading its modules, starting and stopping the
 * kernel threads, the report, exiting).
 */
export function timeStartUp(threads: number, kernel: KernelOptions, shards: readonly [boolean, boolean]): number {
  const dir = mkdtempSync(join(tmpdir(), 'neurocorr-plan-'));
  try {
    const side = Math.ceil(Math.sqrt(threads)) + 1;
    const [f, g] = ['F', 'G'].map((name, k) => {
      mkdirSync(join(dir, name));
      writeFileSync(join(dir, name, 'layer.npy'), encodeNpy(fill(new Float32Array(8 * side), k + 1), [8, side]));
      if (!shards[k]) return join(dir, name);
      prepare({ input: join(dir, name), out: join(dir, `${name}-shards`) });
      return join(dir, `${name}-shards`);
    });
    const options = { f, g, kernel, threads, tile: 1 };
    const code = `await (await import(${JSON.stringify(new URL('./score.js', import.meta.url).href)})).score(${JSON.stringify(options)});`;
    const once = () => {
      const t = performance.now();
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { stdio: 'ignore', timeout: 60_000 });
      return r.status === 0 ? (performance.now() - t) / 1000 : FALLBACK_START_UP_SECONDS;
    };
    return Math.min(once(), once());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
