/**
 * Channels-mode memory: peak RSS of a whole score (the permutation null on)
 * within the input bytes plus z plus a fixed allowance. Before the null's
 * gathered samples were recycled, the unpooled run peaked at about 470 MiB
 * against its bound of 317 MiB (each gathered block, 128 rows of 50,176
 * samples, was a fresh SharedArrayBuffer, freed only once every thread had
 * collected it); it now peaks at about 210-245 MiB.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'neurocorr.js');
const MiB = 2 ** 20;

/**
 * Node, V8's heaps, the pool's threads and their kernels: a score of the
 * tiny examples peaks at about 80 MB here.
 */
const RUNTIME = 96 * MiB;
/** GATHER_BUDGET in worker/tile-runner.ts: null samples kept beyond the tiles in flight. */
const GATHER_BUDGET = 64 * MiB;

function synth(dir: string, seed: number, layout: string): void {
  const args = ['synth', dir, '--arch', 'resnet18', '--probes', '64', '--scale', '0.5', '--seed', String(seed), '--layout', layout];
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
}

interface Measured {
  readonly maxRss: number;
  readonly block: number;
  readonly samples: number;
  readonly neurons: [number, number];
  readonly nullSample: [number, number];
  readonly threads: number;
}

/** Scores in a fresh process (the library, as `score` runs it) and returns its peak RSS with the run's sizes. */
function measure(options: Record<string, unknown>): Measured {
  const script = `
    import { score } from 'neurocorr';
    const { report } = await score(${JSON.stringify(options)});
    console.log(JSON.stringify({ maxRss: process.resourceUsage().maxRSS * 1024, block: report.block, samples: report.samples,
      neurons: report.neurons, nullSample: report.null.sample, threads: report.threads }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: ROOT });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Measured;
}

/**
 * z of both models, plus RUNTIME, plus the tile working set: per thread a
 * packed row block and a gathered null block in flight (block x samples
 * floats each), and the null samples kept (at most GATHER_BUDGET).
 */
function bound(input: number, run: Measured): { bound: number; z: number } {
  const row = run.samples * 4;
  const z = (run.neurons[0] + run.neurons[1]) * row;
  const tiles = run.threads * 2 * run.block * row;
  const gathered = Math.min(2 * Math.max(...run.nullSample) * row, GATHER_BUDGET);
  return { bound: input + z + RUNTIME + tiles + gathered, z };
}

describe('channels-mode memory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nc-rss-'));
  const [f, g] = [join(dir, 'f'), join(dir, 'g')];

  it('stays within input + z + a fixed allowance, NHWC and NCHW, unpooled and pooled', () => {
    synth(f, 1, 'nhwc');
    synth(g, 2, 'nchw');
    const size = (set: string, files: string[]) => files.reduce((sum, file) => sum + statSync(join(set, file)).size, 0);

    const layer1 = ['001_layer1.0.npy', '002_layer1.1.npy'];
    const plain = measure({ f, g, conv: 'channels', layers: ['layer1.0', 'layer1.1'], threads: 2 });
    const input = size(f, layer1) + size(g, layer1);
    const b = bound(input, plain);
    expect(plain.samples).toBe(64 * 28 * 28);
    expect(plain.maxRss, `peak ${(plain.maxRss / MiB).toFixed(0)} MiB, input ${(input / MiB).toFixed(0)} MiB, z ${(b.z / MiB).toFixed(0)} MiB`).toBeLessThan(
      b.bound,
    );

    const convs = ['000_conv1', '001_layer1.0', '002_layer1.1', '003_layer2.0', '004_layer2.1', '005_layer3.0', '006_layer3.1'];
    const pooled = measure({ f, g, conv: 'channels', spatial: 'min', layers: convs.map((c) => c.slice(4)), threads: 2 });
    const all =
      size(
        f,
        convs.map((c) => `${c}.npy`),
      ) +
      size(
        g,
        convs.map((c) => `${c}.npy`),
      );
    expect(pooled.samples).toBe(64 * 7 * 7);
    expect(pooled.maxRss, `pooled peak ${(pooled.maxRss / MiB).toFixed(0)} MiB`).toBeLessThan(bound(all, pooled).bound);
  });
});
