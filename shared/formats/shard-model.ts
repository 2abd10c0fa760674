/** A shard set as a ModelPlan: `score` reads it like any activation set, with z already standardized. */
import { join } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import type { ConvMode, LayerInfo } from '../core/index.js';
import type { Grid } from './channels.js';
import { decodeShard } from './shard-arrow.js';
import { MANIFEST_FIX, readManifest } from './shard-manifest.js';
import { checkShardFile, MANIFEST, readShardBytes, type Manifest, type ShardEntry } from './shards.js';
import { modelPlan, type ModelBuild, type ModelPlan } from './model-plan.js';

export interface LoadedShard {
  /** count x m, neuron-major. */
  readonly z: Float32Array;
  /** Constant (all-zero) rows, flagged in `constant`; null when the rows were not checked on this load. */
  readonly constants: number | null;
}

/**
 * One shard's z (count x m), read, checked (size, neuron column and, with
 * `verify` (the default), sha256 and every row) and decoded. `into` gives
 * the buffer to decode into once the bytes are read and checked.
 */
export function loadShard(
  dir: string,
  shard: ShardEntry,
  m: number,
  constant: Uint8Array,
  options: { buffer?: { bytes: Uint8Array }; verify?: boolean; into?: () => Float32Array } = {},
): LoadedShard {
  const file = join(dir, shard.file);
  const verify = options.verify ?? true;
  const bytes = readShardBytes(dir, shard, options.buffer, verify);
  const { neurons, z } = decodeShard(bytes, m, file, options.into?.());
  if (neurons.length !== shard.count || neurons.some((id, r) => id !== shard.first + r)) {
    throw new InputError(
      'E_INPUT_FORMAT',
      file,
      `neuron column is not ${shard.first}..${shard.first + shard.count - 1} in order`,
      'regenerate the set with `neurocorr prepare`',
    );
  }
  return { z, constants: verify ? checkRows(z, m, shard.first, file, constant) : null };
}

/**
 * How far a row's squared norm may be from 1. prepare standardizes in
 * float64 and rounds each value to float32 (relative error <= 2^-24), so a
 * row's squared norm is within about 2^-23 (1.2e-7) of 1 whatever M; 1e-4
 * also admits writers that standardize in float32, and nothing that is not
 * a standardized row.
 */
export const NORM_TOLERANCE = 1e-4;

/**
 * How far a row's sum may be from 0, as a share of sqrt(M), the largest sum
 * a row of norm 1 can have (all its values equal). prepare's rows sum to 0 in
 * float64; rounding each value to float32 moves the sum by at most
 * 2^-24 * sum|z| <= 2^-24 * sqrt(M), so 6e-8 of the bound whatever M; 1e-4, as
 * NORM_TOLERANCE, also admits float32 writers. A row scaled to norm 1 but not
 * centred (what a standardized row is not) sums to mean/rms * sqrt(M), far
 * past it for any activation with an offset.
 */
export const MEAN_TOLERANCE = 1e-4;

/**
 * Checks a shard's rows: every value finite, each row either all zeros (a
 * constant neuron, flagged in `constant`) or of norm 1 and mean 0. Returns
 * the number of constant rows. One pass over values just decoded.
 */
export function checkRows(z: Float32Array, m: number, first: number, file: string, constant: Uint8Array): number {
  let count = 0;
  const rows = z.length / m;
  const sumBound = MEAN_TOLERANCE * Math.sqrt(m);
  for (let r = 0, at = 0; r < rows; r++) {
    let sq = 0;
    let sum = 0;
    for (const end = at + m; at < end; at++) {
      sq += z[at]! * z[at]!;
      sum += z[at]!;
    }
    // NaN and Inf make sq NaN or Inf, which fail the test below; every zero row sums to exactly 0.
    if (sq === 0) {
      constant[first + r] = 1;
      count++;
    } else if (!(Math.abs(sq - 1) <= NORM_TOLERANCE)) {
      throw badRow(z.subarray(r * m, (r + 1) * m), sq, first + r, file);
    } else if (!(Math.abs(sum) <= sumBound)) {
      const problem = `neuron ${first + r} has mean ${sum / m} (its values sum to ${sum}); a standardized neuron has mean 0 (its sum within ${MEAN_TOLERANCE} x sqrt(M) of 0)`;
      throw new InputError('E_INPUT_VALUES', file, problem, 'the shard does not hold standardized values; regenerate the set with `neurocorr prepare`');
    }
  }
  return count;
}

function badRow(row: Float32Array, sq: number, neuron: number, file: string): InputError {
  const t = row.findIndex((v) => !Number.isFinite(v));
  const problem =
    t >= 0
      ? `neuron ${neuron} holds a non-finite value (${row[t]} at sample ${t})`
      : `neuron ${neuron} has squared norm ${sq}; a standardized neuron has norm 1 (within ${NORM_TOLERANCE}) or is all zeros (constant)`;
  return new InputError('E_INPUT_VALUES', file, problem, 'the shard does not hold standardized values; regenerate the set with `neurocorr prepare`');
}

/** Throws unless the constant rows found in layer `k`'s shards are what the manifest declares. */
export function checkConstantCount(dir: string, manifest: Manifest, k: number, found: number): void {
  const layer = manifest.layers[k]!;
  if (found !== layer.constant) {
    const problem = `layers[${k}] ("${layer.name}") declares ${layer.constant} constant neurons, its shards hold ${found} (all-zero rows)`;
    throw new InputError('E_INPUT_VALUES', join(dir, MANIFEST), problem, MANIFEST_FIX);
  }
}

/** Refuses a shard set whose pooling (fixed at prepare time) is not the run's `grid`. */
export function checkShardGrid(dir: string, manifest: Manifest, grid: Grid | null): void {
  const was = manifest.spatial;
  if (was?.height === grid?.height && was?.width === grid?.width) return;
  const size = (g: Grid): string => `${g.height} x ${g.width}`;
  throw new UsageError((o) =>
    was === null
      ? `${dir} was prepared without ${o('spatial')}, so its maps are not pooled to ${size(grid!)}; prepare it again with ${o('spatial')}`
      : `${dir} was prepared with its maps pooled to ${size(was)}; score it with ${o('spatial')} ${was.height === was.width ? was.height : 'min'}${grid === null ? '' : ` (this run pools to ${size(grid)})`}, or prepare it again`,
  );
}

export interface ShardPlan extends ModelPlan {
  readonly manifest: Manifest;
}

export const isShardPlan = (plan: ModelPlan): plan is ShardPlan => 'manifest' in plan;

export function planShardSet(dir: string, conv: ConvMode, partial: boolean): ShardPlan {
  const manifest = readManifest(dir);
  if (manifest.conv !== conv) {
    throw new UsageError(
      (o) =>
        `${dir} was prepared with ${o('conv')} ${manifest.conv}; score it with ${o('conv')} ${manifest.conv}, or prepare it again with ${o('conv')} ${conv}`,
    );
  }
  if (partial) {
    throw new UsageError(
      (o) =>
        `${dir} is a shard set: partial options (${o('layers')}, ${o('sample')}, ${o('probes')}) apply to .npy or .safetensors input; score the full set, or prepare a partial one`,
    );
  }
  // Every shard is there, whole, before anything is sized from the manifest.
  for (const shard of manifest.shards) checkShardFile(dir, shard);
  const { samples: m, layers: declared } = manifest;
  const n = declared.reduce((sum, l) => sum + l.count, 0);
  const layout = (z: Float32Array): ModelBuild => {
    const constant = new Uint8Array(n);
    const layers: { -readonly [K in keyof LayerInfo]: LayerInfo[K] }[] = declared.map((l) => ({
      ...l,
      shape: [...l.shape],
      source: `${dir}#${l.name}`,
      constant: 0,
    }));
    const standardize = (k: number): void => {
      let constants = 0;
      for (const shard of manifest.shards.filter((s) => s.layer === k)) {
        const target = z.subarray(shard.first * m, (shard.first + shard.count) * m);
        constants += loadShard(dir, shard, m, constant, { into: () => target }).constants!;
      }
      checkConstantCount(dir, manifest, k, constants);
      layers[k]!.constant = constants;
    };
    let next = 0;
    return {
      model: { path: dir, probes: manifest.probes, m, n, layers, z, constant, ids: null, fingerprint: manifest.fingerprint },
      step: () => next < layers.length && (standardize(next++), true),
    };
  };
  return modelPlan(n, m, layout, { manifest });
}
