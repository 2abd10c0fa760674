/** A shard set as a ModelPlan: `score` reads it like any activation set, with z already standardized. */
import { join } from 'node:path';
import { InputError, UsageError } from './errors.js';
import type { ConvMode, LayerInfo } from './model.js';
import { decodeShard } from './shard-arrow.js';
import { readManifest, readShardBytes, type Manifest } from './shards.js';
import type { ModelBuild, ModelPlan } from './standardize.js';

export interface ShardPlan extends ModelPlan {
  readonly manifest: Manifest;
}

export function planShardSet(dir: string, conv: ConvMode, partial: boolean): ShardPlan {
  const manifest = readManifest(dir);
  if (manifest.conv !== conv) {
    throw new UsageError(`${dir} was prepared with --conv ${manifest.conv}; score it with --conv ${manifest.conv}, or prepare it again with --conv ${conv}`);
  }
  if (partial) {
    throw new UsageError(
      `${dir} is a shard set: partial options (--layers, --sample, --probes) apply to .npy or .safetensors input; score the full set, or prepare a partial one`,
    );
  }
  const { samples: m, layers: declared } = manifest;
  const n = declared.reduce((sum, l) => sum + l.count, 0);
  const start = (z: Float32Array): ModelBuild => {
    if (z.length !== n * m) throw new RangeError(`z holds ${z.length} values; the set needs ${n * m}`);
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
        const file = join(dir, shard.file);
        const { neurons, z: values } = decodeShard(readShardBytes(dir, shard), m, file);
        if (neurons.length !== shard.count || neurons.some((id, r) => id !== shard.first + r)) {
          throw new InputError(
            'E_INPUT_FORMAT',
            file,
            `neuron column is not ${shard.first}..${shard.first + shard.count - 1} in order`,
            'regenerate the set with `neurocorr prepare`',
          );
        }
        z.set(values, shard.first * m);
        // A standardized neuron has norm 1; only a constant one is all zeros.
        for (let r = 0; r < shard.count; r++) {
          const row = values.subarray(r * m, (r + 1) * m);
          if (row.every((v) => v === 0)) {
            constant[shard.first + r] = 1;
            constants++;
          }
        }
      }
      layers[k]!.constant = constants;
    };
    let next = 0;
    return {
      model: { path: dir, probes: manifest.probes, m, n, layers, z, constant, ids: null, fingerprint: manifest.fingerprint },
      step: () => next < layers.length && (standardize(next++), true),
    };
  };
  const build = (z: Float32Array) => {
    const run = start(z);
    while (run.step());
    return run.model;
  };
  return { manifest, n, m, build, start };
}
