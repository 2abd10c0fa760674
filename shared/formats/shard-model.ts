/** A shard set as a ModelPlan: `score` reads it like any activation set, with z already standardized. */
import { join } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import type { ConvMode, LayerInfo } from '../core/index.js';
import { decodeShard } from './shard-arrow.js';
import { readManifest, readShardBytes, type Manifest, type ShardEntry } from './shards.js';
import { modelPlan, type ModelBuild, type ModelPlan } from './model-plan.js';

/**
 * One shard's z (count x m), read, checked (size, optionally sha256, neuron
 * column) and decoded, into `into` when given.
 */
export function loadShard(
  dir: string,
  shard: ShardEntry,
  m: number,
  options: { buffer?: { bytes: Uint8Array }; verify?: boolean; into?: Float32Array } = {},
): Float32Array {
  const file = join(dir, shard.file);
  const bytes = readShardBytes(dir, shard, options.buffer, options.verify ?? true);
  const { neurons, z } = decodeShard(bytes, m, file, options.into);
  if (neurons.length !== shard.count || neurons.some((id, r) => id !== shard.first + r)) {
    throw new InputError(
      'E_INPUT_FORMAT',
      file,
      `neuron column is not ${shard.first}..${shard.first + shard.count - 1} in order`,
      'regenerate the set with `neurocorr prepare`',
    );
  }
  return z;
}

/** Flags the all-zero rows of a shard's z as constant (a standardized neuron has norm 1) and counts them. */
export function markConstants(z: Float32Array, m: number, first: number, constant: Uint8Array): number {
  let count = 0;
  for (let r = 0; r < z.length / m; r++) {
    if (z.subarray(r * m, (r + 1) * m).every((v) => v === 0)) {
      constant[first + r] = 1;
      count++;
    }
  }
  return count;
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
        const values = loadShard(dir, shard, m);
        z.set(values, shard.first * m);
        constants += markConstants(values, m, shard.first, constant);
      }
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
