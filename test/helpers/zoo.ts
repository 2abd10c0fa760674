/** A small real model zoo for the output tests: every ordered pair scored by the library, as the zoo command will. */
import { join } from 'node:path';
import { score } from '../../dist/index.js';
import { synthesize } from '../../dist/synth/synth.js';
import type { ZooModel, ZooPair, ZooResult } from '../../dist/zoo/types.js';

const ROOT = join(import.meta.dirname, '..', '..');

export interface ZooFixtureModel {
  readonly name: string;
  readonly path: string;
  readonly tags: readonly string[];
}

/**
 * Four models on the same 64 probes, in an order the clustering must change:
 * the example MLP, a synthetic MLP, the example CNN, and the same synthetic
 * MLP with many more dead units (an obviously related pair: same weights and
 * noise, so its corrected score against the first is far above any other).
 */
export function zooFixtureModels(scratch: string): ZooFixtureModel[] {
  const synth = (dir: string, deadFraction: number) => {
    const path = join(scratch, dir);
    synthesize(path, { arch: 'mlp:48,32,16', probes: 64, resolution: 32, scale: 1, allConvs: false, seed: 11, probeSeed: 5, deadFraction, depth: 'position' });
    return path;
  };
  return [
    { name: 'mlp', path: join(ROOT, 'examples', 'mlp'), tags: ['example'] },
    { name: 'synth-a', path: synth('synth-a', 0.05), tags: ['synth', 'seed 11'] },
    { name: 'cnn', path: join(ROOT, 'examples', 'cnn'), tags: ['example', 'conv'] },
    { name: 'synth-a-dead', path: synth('synth-a-dead', 0.3), tags: ['synth', 'seed 11', 'dead 30%'] },
  ];
}

/** Scores every ordered pair (F-major, diagonal included) and assembles the ZooResult the zoo command will produce. */
export async function buildZooResult(models: readonly ZooFixtureModel[], nullPermutations = 10): Promise<ZooResult> {
  const started = performance.now();
  const pairs: ZooPair[] = [];
  for (const f of models) {
    for (const g of models) {
      const { report } = await score({ f: f.path, g: g.path, threads: 2, progress: false, log: () => undefined, null: { permutations: nullPermutations } });
      pairs.push({ f: f.name, g: g.name, report, reused: false });
    }
  }
  const zooModels: ZooModel[] = models.map((m, i) => {
    const self = pairs[i * models.length + i]!.report;
    return { name: m.name, path: m.path, tags: m.tags, key: `test-key-${m.name}`, probes: self.probes, fingerprint: null, neurons: self.neurons[0] };
  });
  return {
    version: 1,
    models: zooModels,
    pairs,
    match: 'paper',
    options: { conv: 'units', constantMode: 'include', null: { permutations: nullPermutations } },
    computed: pairs.length,
    reused: 0,
    seconds: (performance.now() - started) / 1000,
  };
}

/** The same zoo as `--null 0` would report it: no permutation null anywhere. */
export function withoutNull(result: ZooResult): ZooResult {
  return {
    ...result,
    pairs: result.pairs.map((p) => ({ ...p, report: { ...p.report, null: null, layers: p.report.layers.map((l) => ({ ...l, null: null })) } })),
  };
}
