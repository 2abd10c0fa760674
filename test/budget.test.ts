/**
 * `--memory` is kept or refused: shardBudget's rule, a budget below it
 * refused before any compute (exit 2, no output), and an accepted tight
 * budget never overrun (peak cached bytes within it), for a pair of shard
 * sets, a shard set against a .npy set, a set against itself and a zoo's
 * several pairs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSources, runEmbedded } from '../dist/coordinator/embedded.js';
import { prepare } from '../dist/prepare/prepare.js';
import { UsageError } from '../dist/shared/errors.js';
import { planPair, planShardSet } from '../dist/shared/formats/index.js';
import { shardBudget, type BudgetModel } from '../dist/shared/job/index.js';
import { genModel, latents, rng, writeNpyDir } from './helpers/models.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'neurocorr.js');
const cli = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
const quiet = { log: () => undefined };

describe('shardBudget', () => {
  const f: BudgetModel = { m: 24, largest: 6 };
  const g: BudgetModel = { m: 24, largest: 5 };

  it('one pair needs the largest shard of each shard set in it', () => {
    expect(shardBudget([f, g], [{ f: 0, g: 1 }], 1000)).toEqual({ need: (6 + 5) * 24 * 4, rule: 'pair', sets: 2, over: [0, 1], shardNeurons: 5 });
    expect(shardBudget([f, null], [{ f: 0, g: 1 }], 1000)).toEqual({ need: 6 * 24 * 4, rule: 'pair', sets: 1, over: [], shardNeurons: 10 });
    expect(shardBudget([null, g], [{ f: 0, g: 1 }], 1000)).toEqual({ need: 5 * 24 * 4, rule: 'pair', sets: 1, over: [], shardNeurons: 10 });
    expect(shardBudget([null, null], [{ f: 0, g: 1 }], 1000).need).toBe(0);
  });

  it('other jobs share the budget: a buffer per shard one tile holds of each set, two for a set paired with itself', () => {
    const all = [
      { f: 0, g: 0 },
      { f: 0, g: 1 },
      { f: 1, g: 0 },
      { f: 1, g: 1 },
    ];
    expect(shardBudget([f, g], all, 3000)).toEqual({ need: 2 * 2 * 576, rule: 'shared', sets: 2, over: [], shardNeurons: 7 });
    // Below it, the set whose buffers exceed its half is over.
    expect(shardBudget([f, g], all, 2000).over).toEqual([0]);
    // A model paired with itself alone runs unscheduled too.
    expect(shardBudget([f], [{ f: 0, g: 0 }], 3000)).toEqual({ need: 2 * 576, rule: 'shared', sets: 1, over: [], shardNeurons: 15 });
    // No set paired with itself: one buffer each; a model held whole takes no share.
    const chain = [
      { f: 0, g: 1 },
      { f: 1, g: 2 },
    ];
    expect(shardBudget([f, null, g], chain, 3000)).toEqual({ need: 2 * 576, rule: 'shared', sets: 2, over: [], shardNeurons: 15 });
  });

  it('shardNeurons is the largest shard size that fits', () => {
    const r = rng(7);
    for (let trial = 0; trial < 300; trial++) {
      const m = 1 + Math.floor(r() * 50);
      const models = Array.from({ length: 1 + Math.floor(r() * 4) }, () => (r() < 0.25 ? null : { m, largest: 1 + Math.floor(r() * 100) }));
      const k = models.length;
      // Every model is in a pair, as in a job; half the two-model jobs are one pair.
      const pairs = k === 2 && r() < 0.5 ? [{ f: 0, g: 1 }] : models.map((_, i) => ({ f: i, g: Math.floor(r() * k) }));
      const memory = Math.floor(r() * 40_000);
      const { shardNeurons, need, sets, over } = shardBudget(models, pairs, memory);
      expect(over.length > 0).toBe(need > memory);
      if (sets === 0) {
        expect(need).toBe(0);
        continue;
      }
      const resized = (n: number) => models.map((x) => (x === null ? null : { m, largest: n }));
      if (shardNeurons > 0) expect(shardBudget(resized(shardNeurons), pairs, memory).need).toBeLessThanOrEqual(memory);
      expect(shardBudget(resized(shardNeurons + 1), pairs, memory).need).toBeGreaterThan(memory);
    }
  });
});

describe('score --memory', () => {
  const latent = latents(9, 24, 3);
  const fDir = writeNpyDir(genModel(31, { m: 24, layers: [[30], [2, 3, 4], [1]], latent, constants: 0.1 }));
  const gDir = writeNpyDir(genModel(32, { m: 24, layers: [[17], [25]], latent }));
  const dir = mkdtempSync(join(tmpdir(), 'nc-budget-'));
  const [F, G] = [join(dir, 'F'), join(dir, 'G')];
  // Largest shards: F 6 x 24 x 4 = 576 bytes, G 5 x 24 x 4 = 480 bytes.
  prepare({ input: fDir, out: F, memory: 64 << 20, conv: 'units', force: false, shardNeurons: 6, ...quiet });
  prepare({ input: gDir, out: G, memory: 64 << 20, conv: 'units', force: false, shardNeurons: 5, ...quiet });
  let outs = 0;
  const score = (f: string, g: string, memory: number) => {
    const out = join(dir, `out-${outs++}.json`);
    return { out, r: cli(['score', f, g, '--memory', String(memory), '--threads', '2', '--tile', '4', '--null', '3', '--out', out, '--no-progress']) };
  };

  for (const [name, f, g, need] of [
    ['two shard sets', F, G, 576 + 480],
    ['a shard set and a .npy set', F, gDir, 576],
    ['a .npy set and a shard set', fDir, G, 480],
    ['a shard set against itself', F, F, 576 + 576],
  ] as const) {
    it(`${name}: refused below the need with nothing written, kept at it`, () => {
      const refused = score(f, g, need - 1);
      expect(refused.r.status, refused.r.stderr).toBe(2);
      expect(existsSync(refused.out)).toBe(false);
      const error = refused.r.stderr;
      expect(error).toContain(`--memory ${need - 1} bytes`);
      expect(error).toContain(`is below what scoring ${f} against ${g} needs: ${need} bytes`);
      // Each shard set too large for the budget is named with its largest shard, decoded.
      if (f === F) expect(error).toContain(`${F}: 6 neurons x 24 values x 4 = 576 bytes`);
      if (g === G) expect(error).toContain(`${G}: 5 neurons x 24 values x 4 = 480 bytes`);
      const sets = [f, g].filter((x) => x === F || x === G).length;
      expect(error).toContain(`Fix: --memory ${Math.ceil(need / 1024)}KiB or more, or re-prepare `);
      expect(error).toContain(`with prepare --shard-neurons ${Math.floor((need - 1) / (sets * 24 * 4))} `);
      expect(error).not.toMatch(/kernel:|tiles/);

      const kept = score(f, g, need);
      expect(kept.r.status, kept.r.stderr).toBe(0);
      const io = JSON.parse(readFileSync(kept.out, 'utf8')).io;
      expect(io.memory).toBe(need);
      expect((io.F?.peakBytes ?? 0) + (io.G?.peakBytes ?? 0)).toBeLessThanOrEqual(need);
    });
  }

  it("the schedule's tail (the null's samples not kept) keeps the budget too, with the same bits", async () => {
    const run = async (f: string, g: string, memory: number, keepBudget?: number) => {
      const planned = planPair(f, g, { conv: 'units', layout: null, spatial: null, layers: null, layersF: null, layersG: null, sample: null, probes: null });
      const pairs = [{ f: 0, g: 1 }];
      const inputs = [
        { path: f, plan: planned.f },
        { path: g, plan: planned.g },
      ];
      const sources = openSources(inputs, pairs, memory);
      const nul = { permutations: 2, sample: 12, seed: 4 };
      const result = await runEmbedded(sources, pairs, {
        kernel: { choice: 'native' },
        threads: 2,
        block: 4,
        memory,
        null: nul,
        ...(keepBudget !== undefined ? { keepBudget } : {}),
      });
      const { reduction, nulls } = result.progress.pairs[0]!;
      return {
        io: result.io!,
        state: JSON.stringify([[...reduction.forward.best], [...reduction.backward.arg], ...nulls!.states.flat().map((d) => [...d.best])]),
      };
    };
    for (const [f, g, need] of [
      [F, G, 576 + 480],
      [F, gDir, 576],
    ] as const) {
      const tail = await run(f, g, need, 0);
      expect((tail.io.F?.peakBytes ?? 0) + (tail.io.G?.peakBytes ?? 0)).toBeLessThanOrEqual(need);
      expect(tail.state).toBe((await run(f, g, 2 ** 31)).state);
    }
  });

  it('zoo: several pairs share the budget, refused below the need, kept at it with the same bits', async () => {
    const zoo = join(dir, 'zoo');
    const refused = cli(['zoo', F, G, '--memory', '2303', '--out', zoo, '--threads', '2', '--no-progress']);
    expect(refused.status, refused.stderr).toBe(2);
    expect(refused.stderr).toContain('--memory 2303 bytes (2.2KiB) is below what scoring these 4 pairs needs: 2304 bytes');
    expect(refused.stderr).toContain('(two for a set paired with itself)');
    expect(existsSync(join(zoo, 'matrix.csv'))).toBe(false);

    const inputs = [F, G].map((path) => ({ path, plan: planShardSet(path, 'units', false) }));
    const pairs = [
      { f: 0, g: 1 },
      { f: 0, g: 0 },
      { f: 1, g: 0 },
      { f: 1, g: 1 },
    ];
    expect(() => openSources(inputs, pairs, 2303)).toThrow(UsageError);
    const run = async (memory: number) => {
      const sources = openSources(inputs, pairs, memory);
      const result = await runEmbedded(sources, pairs, {
        kernel: { choice: 'native' },
        threads: 2,
        block: 4,
        memory,
        null: { permutations: 2, sample: 10, seed: 3 },
      });
      return { sources, states: result.progress.pairs.map((p) => [...p.reduction.forward.best, ...p.reduction.backward.arg]) };
    };
    const tight = await run(2304);
    // Each set's window is its share of the budget, and no more.
    for (const s of tight.sources) expect(s.stats!.peakBytes).toBeLessThanOrEqual(2304 / 2);
    expect((await run(2 ** 31)).states).toEqual(tight.states);
  });
});
