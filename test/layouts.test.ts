/**
 * Channels semantics never guesses a layout: it comes from layers.json,
 * safetensors `layouts` metadata or the `layout` option, else the layer is
 * refused. NHWC is read as such (against the float64 brute force), the report
 * and shard manifests say which layout each layer used, and older manifests
 * stay readable.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepare } from '../dist/prepare/prepare.js';
import { InputError } from '../dist/shared/errors.js';
import { encodeSafetensors, loadActivationSet, planPair } from '../dist/shared/formats/index.js';
import { bruteForce } from './helpers/brute.js';
import { mapModel, pooledBrute, storedLayers, writeMapDir, type MapModel } from './helpers/maps.js';
import { genModel, latents, writeNpyDir } from './helpers/models.js';
import { runPair } from './helpers/run.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'neurocorr.js');
const neurocorr = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });

const m = 7;
const latent = latents(51, m, 3);
/** F: an NHWC layer and an NCHW one (4 x 5 maps); G: NCHW maps and a dense layer left out in channels runs. */
const F = mapModel(52, m, [
  { shape: [3, 4, 5], layout: 'nhwc' },
  { shape: [2, 4, 5], layout: 'nchw' },
]);
const G = mapModel(53, m, [{ shape: [4, 4, 5], layout: 'nchw' }], { latent, constants: 0.2 });
const gDir = writeMapDir(G);

function writeSafetensors(mm: MapModel, metadata: Record<string, string>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'nc-st-')), 'model.safetensors');
  writeFileSync(file, encodeSafetensors(storedLayers(mm), metadata));
  return file;
}

const plain = { layers: null, layersF: null, layersG: null, sample: null, probes: null } as const;
const plan = (f: string, g: string) => planPair(f, g, { conv: 'channels', ...plain });

const layoutError = (fn: () => unknown): InputError => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).code).toBe('E_INPUT_LAYOUT');
    return err as InputError;
  }
  throw new Error('expected an InputError');
};

describe('layouts in channels semantics', () => {
  it('refuses a rank >= 3 layer whose layout is not known, naming the file and the fix (exit 2)', () => {
    const bare = writeMapDir(F, false);
    const r = neurocorr(['score', bare, gDir, '--conv', 'channels', '--no-progress']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${join(bare, 'layer00.npy')}: layer "layer00" has per-probe shape [4, 5, 3] and no layout`);
    expect(r.stderr).toContain(`write ${join(bare, 'layers.json')} giving each layer's layout`);
    expect(r.stderr).toContain('or pass --layout nchw|nhwc');
    // layers.json without a layout for layer01
    const partly = writeMapDir(F, [0]);
    const msg = layoutError(() => plan(partly, gDir)).describe((o) => o);
    expect(msg).toContain(`${join(partly, 'layer01.npy')}: layer "layer01"`);
    expect(msg).toContain(`add "layout": "nchw" or "nhwc" to its entry in ${join(partly, 'layers.json')}`);
    const st = writeSafetensors(F, {});
    expect(layoutError(() => plan(st, gDir)).message).toMatch(/#layer00: .*__metadata__ "layouts"/);
  });

  it('units mode needs no layout, and the report gives each layer the layout its file states', async () => {
    const { report } = await runPair(writeMapDir(F, [0]), writeNpyDir(genModel(54, { m, layers: [[5], [2, 2, 2]] })), { kernel: 'reference' });
    expect(report.layers.map((l) => [l.name, l.layout])).toEqual([
      ['layer00', 'nhwc'],
      ['layer01', null],
      ['layer00', null],
      ['layer01', null],
    ]);
  });

  it('reads NHWC as NHWC: the float64 brute force over channels, with the option filling in only what the files do not say', async () => {
    const expected = bruteForce(pooledBrute(F, 4, 5), pooledBrute(G, 4, 5));
    const sources = [writeMapDir(F), writeMapDir(F, [0]), writeSafetensors(F, { layouts: '["nhwc", null]' })];
    for (const [k, fPath] of sources.entries()) {
      const got = await runPair(fPath, gDir, { kernel: 'native', conv: 'channels', layout: 'nchw', tile: 2 });
      expect(
        got.report.layers.map((l) => l.layout),
        `source ${k}`,
      ).toEqual(['nhwc', 'nchw', 'nchw']);
      expect(got.report.samples).toBe(m * 20);
      for (const dir of ['forward', 'backward', 'symmetric'] as const) {
        expect(got.report.scores.paper[dir]).toBeCloseTo(expected[dir].paper, 6);
        expect(got.report.scores.penalized[dir]).toBeCloseTo(expected[dir].penalized, 6);
      }
    }
  });

  it('checks safetensors `layouts` metadata', () => {
    for (const layouts of ['["nhwc"]', '["NHWC", null]', '"nchw"', '[1, 2]']) {
      const file = writeSafetensors(F, { layouts });
      expect(() => loadActivationSet(file), layouts).toThrow(/__metadata__\.layouts must be a JSON array/);
    }
    const ok = loadActivationSet(writeSafetensors(F, { layers: '["layer01","layer00"]', layouts: '["nchw","nhwc"]' }));
    expect(ok.layers.map((l) => [l.name, l.layout])).toEqual([
      ['layer01', 'nchw'],
      ['layer00', 'nhwc'],
    ]);
  });
});

describe('shard sets', () => {
  it('record each layer layout and the pooling; older manifests (neither) still read', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'nc-prep-')), 'set');
    const fDir = writeMapDir(F, [0]);
    expect(() => prepare({ input: fDir, out, conv: 'channels', memory: 2 ** 24 })).toThrow(/layer "layer01" .* no layout/);
    expect(() => prepare({ input: fDir, out, conv: 'units', spatial: 2 })).toThrow(/needs conv channels/);
    prepare({ input: fDir, out, conv: 'channels', layout: 'nchw', spatial: 3, memory: 2 ** 24 });
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { spatial: unknown; samples: number; layers: { layout: unknown }[] };
    expect(manifest.spatial).toEqual({ height: 3, width: 3 });
    expect(manifest.samples).toBe(m * 9);
    expect(manifest.layers.map((l) => l.layout)).toEqual(['nhwc', 'nchw']);
    const fromNpy = await runPair(fDir, gDir, { kernel: 'native', conv: 'channels', layout: 'nchw', spatial: 3 });
    const fromShards = await runPair(out, gDir, { kernel: 'native', conv: 'channels', spatial: 3 });
    expect(JSON.stringify(fromShards.report.scores)).toBe(JSON.stringify(fromNpy.report.scores));
    expect(fromShards.report.layers.map((l) => l.layout)).toEqual(['nhwc', 'nchw', 'nchw']);
    const unpooled = neurocorr(['score', out, gDir, '--conv', 'channels', '--no-progress']);
    expect(unpooled.status).toBe(2);
    expect(unpooled.stderr).toMatch(/pooled to 3 x 3; score it with --spatial 3/);

    // A set written before layouts and pooling were recorded.
    const old = join(mkdtempSync(join(tmpdir(), 'nc-prep-')), 'set');
    prepare({ input: fDir, out: old, conv: 'channels', layout: 'nchw', memory: 2 ** 24 });
    const json = JSON.parse(readFileSync(join(old, 'manifest.json'), 'utf8')) as Record<string, unknown> & { layers: Record<string, unknown>[] };
    delete json['spatial'];
    for (const layer of json.layers) delete layer['layout'];
    writeFileSync(join(old, 'manifest.json'), JSON.stringify(json));
    const a = await runPair(old, gDir, { kernel: 'native', conv: 'channels' });
    const b = await runPair(fDir, gDir, { kernel: 'native', conv: 'channels', layout: 'nchw' });
    expect(JSON.stringify(a.report.scores)).toBe(JSON.stringify(b.report.scores));
    expect(a.report.layers.map((l) => l.layout)).toEqual([null, null, 'nchw']);
    const repooled = neurocorr(['score', old, gDir, '--conv', 'channels', '--spatial', '2', '--no-progress']);
    expect(repooled.status).toBe(2);
    expect(repooled.stderr).toMatch(/prepared without --spatial/);
  });
});
